"""Documents written the way a centre's staff write them, and the CLI run as an officer runs it.

Shared by the ingest, store, CLI and UI tests (a test module never imports another one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def write_pdf(path: Path, pages: list[str]) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))
    return path


def write_docx(path: Path, heading: str, paragraphs: list[str]) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(heading, level=1)
    for text in paragraphs:
        document.add_paragraph(text)
    document.save(str(path))
    return path


def run_cli(args: list[str], data_dir: Path, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "NEOC_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "neoc_assistant", *args], cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=600
    )
