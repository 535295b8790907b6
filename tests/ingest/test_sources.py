"""What an ingest covers and what each file is called: source identity, its migration, symbolic links.

Real manifest, real Chroma, real embedding model.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from neoc_assistant.store.manifest import Manifest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sources(container) -> set[str]:
    return {s for d in container.manifest.documents() for s in d.sources}


# -- item 5: names that cannot collide -------------------------------------------------------------
def test_two_folders_holding_the_same_file_name_keep_both_documents(container, tmp_path):
    """Issue 12.5: `ingest coll/X` then `ingest coll/Y`, both with notes.md -> X's document was replaced."""
    x = write(tmp_path / "coll" / "X" / "notes.md", "# District X\n\nDistrict X has 4200 displaced families.\n")
    y = write(tmp_path / "coll" / "Y" / "notes.md", "# District Y\n\nDistrict Y has 310 displaced families.\n")
    container.assistant.ingest([x.parent])
    summary = container.assistant.ingest([y.parent])
    assert summary.count("added") == 1 and summary.count("updated") == 0
    assert sources(container) == {str(x), str(y)}  # outside the KB folder: the full path
    texts = {h.text for h in container.assistant.search("displaced families", k=5)}
    assert any("4200" in t for t in texts) and any("310" in t for t in texts)


def test_two_files_named_alike_in_one_run_are_both_kept(container, tmp_path):
    a = write(tmp_path / "coll" / "Z1" / "report.md", "# Z1\n\nZone one shelters hold 900 people.\n")
    b = write(tmp_path / "coll" / "Z2" / "report.md", "# Z2\n\nZone two shelters hold 120 people.\n")
    summary = container.assistant.ingest([a, b])
    assert summary.count("added") == 2
    assert sources(container) == {str(a), str(b)}


def test_sources_inside_the_kb_folder_are_named_from_its_root_whatever_folder_was_given(container):
    kb = container.settings.paths.kb_dir
    write(kb / "plans" / "flood.md", "# Flood plan\n\nSandbag depots open at water level 4.5 m.\n")
    write(kb / "top.md", "# Top\n\nThe EOC phone is 1149.\n")
    container.assistant.ingest([kb / "plans"])
    assert sources(container) == {"plans/flood.md"}
    summary = container.assistant.ingest([kb])  # the same file is not added twice
    assert summary.count("added") == 1 and summary.count("unchanged") == 1
    assert sources(container) == {"plans/flood.md", "top.md"}
    # pruning a sub-folder only touches files under it
    (kb / "plans" / "flood.md").unlink()
    summary = container.assistant.ingest([kb / "plans"])
    assert [o.source for o in summary.outcomes if o.status == "purged"] == ["plans/flood.md"]
    assert sources(container) == {"top.md"}


def test_an_existing_manifest_is_migrated_to_the_new_names_without_re_embedding(container, tmp_path, monkeypatch):
    kb = container.settings.paths.kb_dir
    write(kb / "plans" / "flood.md", "# Flood plan\n\nSandbag depots open at water level 4.5 m.\n")
    outside = write(tmp_path / "district" / "notes.md", "# District\n\nThe district EOC opens at 06:00.\n")
    container.assistant.ingest([kb / "plans"])
    container.assistant.ingest([outside.parent])
    # What a manifest written before the fix holds: names relative to whatever folder was ingested.
    with sqlite3.connect(container.settings.paths.manifest_path) as db:
        db.execute("UPDATE files SET source = 'flood.md' WHERE source = 'plans/flood.md'")
        db.execute("UPDATE files SET source = 'notes.md' WHERE source = ?", (str(outside),))
        db.execute("DELETE FROM meta WHERE key = 'source_names'")
        Manifest._bump_version(db)  # the version those names had
    container.manifest.close()
    before = container.assistant.kb_version()
    calls = []
    monkeypatch.setattr(container.embedder, "encode", lambda texts, **kw: calls.append(texts))
    summary = container.assistant.ingest([kb])
    assert calls == [] and summary.count("added") == 0
    assert sources(container) == {"plans/flood.md", str(outside)}
    assert container.assistant.kb_version() != before  # names are part of the version: cached answers drop
    assert container.vectors.count() == container.manifest.counts()["chunks"]



def test_a_copied_installation_keeps_its_names(container, make_container, tmp_path):
    """Data and KB folders copied elsewhere together (a backup restored, a laptop image): the names
    stay relative to the KB folder, they do not turn into the old absolute paths."""
    import shutil

    paths = container.settings.paths
    write(paths.kb_dir / "plans" / "flood.md", "# Flood plan\n\nSandbag depots open at water level 4.5 m.\n")
    container.assistant.ingest()
    container.vectors.close()
    moved = tmp_path / "moved"
    shutil.copytree(paths.data_dir, moved / "data")
    shutil.copytree(paths.kb_dir, moved / "kb")
    shutil.rmtree(paths.kb_dir)
    copy = make_container(data_dir=moved / "data", kb_dir=moved / "kb")
    summary = copy.assistant.ingest()
    assert summary.count("added") == 0 and sources(copy) == {"plans/flood.md"}, summary.outcomes

# -- item 3: symbolic links ---------------------------------------------------------------------------------
@pytest.fixture
def linked_kb(container, tmp_path):
    kb = container.settings.paths.kb_dir
    write(kb / "real.md", "# Real\n\nThe generator at ward 3 runs on diesel.\n")
    secret = write(tmp_path / "private" / "passwords.md", "# Secrets\n\nThe admin password is hunter2.\n")
    write(tmp_path / "private" / "more.md", "# More\n\nThe safe is behind the painting.\n")
    (kb / "innocent.md").symlink_to(secret)
    (kb / "alias.md").symlink_to(kb / "real.md")
    (kb / "folder-link").symlink_to(tmp_path / "private", target_is_directory=True)
    return kb


def test_links_that_leave_the_kb_folder_are_not_followed(container, linked_kb):
    """Issue 12.3: a file symlink in the KB folder pulled any file on disk into the KB."""
    summary = container.assistant.ingest([linked_kb])
    skipped = {o.source: o.reason for o in summary.outcomes if o.status == "skipped"}
    assert "outside" in skipped["innocent.md"] and "not followed" in skipped["innocent.md"]
    assert "folder" in skipped["folder-link"]
    assert sources(container) == {"real.md", "alias.md"}  # a link inside the folder is just another name
    assert not any("hunter2" in h.text for h in container.assistant.search("admin password", k=5))


def test_following_links_out_of_the_folder_is_an_explicit_setting(make_container, linked_kb):
    container = make_container(follow_external_symlinks=True)
    container.assistant.ingest([linked_kb])
    assert "innocent.md" in sources(container)
    assert not any(s.startswith("folder-link") for s in sources(container))  # folder links: never
