"""A small real store, and the damage a disk does to one (shared by the store and UI tests)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest


@pytest.fixture
def ingested(container):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True)
    (kb / "water.md").write_text("# Water\n\nEach person needs at least 15 litres of water per day.\n")
    (kb / "radio.md").write_text("# Radio\n\nDistrict EOCs check in by VHF radio at 07:30 and 19:30 daily.\n")
    (kb / "boats.md").write_text("# Boats\n\nFourteen inflatable rescue boats are stored at Sunsari depot.\n")
    assert container.assistant.ingest().ok
    return container


def corrupt_middle(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 3)
        fh.write(os.urandom(size // 2))
