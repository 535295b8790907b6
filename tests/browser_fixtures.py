"""The browser tests' session fixtures: Chromium, a data dir with the default knowledge base ingested,
and the one Playwright driver (a second sync instance cannot run alongside it). Registered in
``conftest.py`` so that every browser test module shares the same instances.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser_support import REPO_ROOT, SetupError, clean_environ, ensure_chromium, server_env

KB_DIR = REPO_ROOT / "knowledge_base"


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        return ensure_chromium()
    except SetupError as exc:
        pytest.fail(f"cannot run the browser tests: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def ingested(tmp_path_factory) -> Path:
    """A data dir with the default knowledge base ingested (by the real CLI, in its own process).

    ``NEOC_TEST_INGESTED_DIR`` (a dir this fixture made earlier, holding ``data/`` and ``kb/``)
    skips the ~1-2 minute ingest when iterating on the tests.
    """
    reuse = os.environ.get("NEOC_TEST_INGESTED_DIR")
    if reuse and (Path(reuse) / "data").is_dir() and (Path(reuse) / "kb").is_dir():
        return Path(reuse)
    root = tmp_path_factory.mktemp("ui-kb")
    shutil.copytree(KB_DIR, root / "kb")
    (root / "models").mkdir()
    env = server_env(root / "data", root / "kb", root / "models")
    proc = subprocess.run([sys.executable, "-m", "neoc_assistant", "ingest", "--json", "--no-progress"],
                          cwd=REPO_ROOT, env={**clean_environ(), **env}, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["added"] == len([p for p in KB_DIR.iterdir() if p.is_file()]) and summary["failed"] == 0
    return root


@pytest.fixture(scope="session")
def playwright(chromium):
    """One Playwright driver for the session (a second sync instance cannot run alongside it)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()
