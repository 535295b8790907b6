"""Document names: NFC, look-alikes refused, unusable names refused in one line, names escaped on screens.

Adversarial findings: ``café-plan.md`` in NFC and NFD were two sources whose
contradicting figures were quoted side by side under identical-looking names;
a file name that is not UTF-8 failed with ``UnicodeEncodeError`` and a full
traceback; ``documents`` printed control characters and ESC sequences raw;
upload names lost their extension past 150 characters and non-ASCII letters
(``ünits.md`` and ``änits.md`` were "uploaded twice"). Real manifest, Chroma,
embedder and CLI.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import unicodedata

from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers, safe_filename

from ingest_fixtures import run_cli

NFC = unicodedata.normalize("NFC", "café-plan.md")
NFD = unicodedata.normalize("NFD", "café-plan.md")


def sources(container) -> set[str]:
    return {s for d in container.manifest.documents() for s in d.sources}


def write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = os.path.join(os.fsencode(folder), name if isinstance(name, bytes) else os.fsencode(name))
    with open(path, "wb") as fh:
        fh.write(text.encode())
    return path


def _rename_in_manifest(container, old: str, new: str) -> None:
    """What a manifest written before names were normalised holds (the row renamed behind its back)."""
    with sqlite3.connect(container.settings.paths.manifest_path) as conn:
        conn.execute("UPDATE files SET source=? WHERE source=?", (new, old))
        conn.execute("DELETE FROM meta WHERE key='source_form'")


# -- NFC and look-alikes -------------------------------------------------------------------------
def test_nfc_and_nfd_spellings_of_one_name_are_not_two_documents(container):
    kb = container.settings.paths.kb_dir
    write(kb, NFC, "# Café plan\n\nShelter A at the café holds 400 people.\n")
    write(kb, NFD, "# Café plan\n\nShelter A at the café holds 90 people.\n")
    summary = container.assistant.ingest()
    assert summary.count("added") == 1 and len(summary.failed) == 1, summary.to_dict()
    assert sources(container) == {NFC}
    reason = summary.failed[0].reason
    assert "looks the same" in reason and "cafe\\u0301-plan.md" in reason and "NFC/NFD" in reason
    texts = [h.text for h in container.assistant.search("how many people does shelter A hold", k=5)]
    assert any("400" in t for t in texts) and not any("90 people" in t for t in texts)


def test_a_name_with_an_invisible_character_is_a_lookalike_of_the_plain_one(container):
    kb = container.settings.paths.kb_dir
    write(kb, "depot.md", "# Depot\n\nThe depot holds 12 generators.\n")
    write(kb, "dep\u200bot.md", "# Depot\n\nThe depot holds 3 generators.\n")
    summary = container.assistant.ingest()
    assert sources(container) == {"depot.md"}
    assert [o.source for o in summary.failed] == ["dep\\u200bot.md"]


def test_an_nfd_file_alone_is_stored_under_its_nfc_name_and_deleted_by_either(container):
    kb = container.settings.paths.kb_dir
    write(kb, NFD, "# Café plan\n\nShelter A holds 90 people.\n")
    assert container.assistant.ingest().count("added") == 1
    assert sources(container) == {NFC}
    assert container.assistant.ingest().count("unchanged") == 1  # found again by its stat
    assert container.assistant.delete_documents([NFD]).count("purged") == 1
    assert sources(container) == set()


def test_a_lookalike_of_an_ingested_file_is_refused_when_named_alone(container):
    kb = container.settings.paths.kb_dir
    write(kb, NFC, "# Café plan\n\nShelter A holds 400 people.\n")
    container.assistant.ingest()
    write(kb, NFD, "# Café plan\n\nShelter A holds 90 people.\n")
    summary = container.assistant.ingest([kb / NFD])
    assert len(summary.failed) == 1 and "looks the same" in summary.failed[0].reason
    assert container.manifest.documents()[0].title == "Café plan" and sources(container) == {NFC}
    assert any("400" in h.text for h in container.assistant.search("shelter A people", k=3))


def test_a_store_written_with_nfd_names_is_renamed_once_without_re_embedding(container):
    """Existing knowledge bases keep working: the next write renames NFD rows to NFC (no file read,
    nothing embedded again); look-alike rows stored side by side become one."""
    kb = container.settings.paths.kb_dir
    write(kb, NFC, "# Café plan\n\nShelter A holds 400 people.\n")
    write(kb, "boats.md", "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n")
    container.assistant.ingest()
    _rename_in_manifest(container, NFC, NFD)
    chunks = container.manifest.counts()["chunks"]
    summary = container.assistant.ingest()
    assert summary.count("unchanged") == 2 and summary.chunks_added == 0, summary.to_dict()
    assert any("NFD" in note and "NFC" in note for note in summary.notes), summary.notes
    assert sources(container) == {NFC, "boats.md"} and container.manifest.counts()["chunks"] == chunks
    assert container.assistant.search("shelter A people", k=1)[0].source == NFC


def test_lookalike_rows_already_in_a_store_are_merged_and_said(container):
    kb = container.settings.paths.kb_dir
    write(kb / "a", "plan.md", "# Plan A\n\nShelter A holds 400 people.\n")
    write(kb / "b", "plan.md", "# Plan B\n\nShelter A holds 90 people.\n")
    container.assistant.ingest()
    # as two files named café-plan.md (NFC, NFD) were stored before this release
    _rename_in_manifest(container, "a/plan.md", NFC)
    _rename_in_manifest(container, "b/plan.md", NFD)
    summary = container.assistant.delete_documents(["nothing-by-this-name.md"])  # any write migrates
    assert any("stored twice" in note and "cafe\\u0301-plan.md" in note for note in summary.notes), summary.notes
    assert sources(container) == {NFC} and len(container.manifest.documents()) == 1
    assert container.vectors.ids() == set(container.manifest.all_chunk_ids())


# -- names that cannot be stored or shown ------------------------------------------------------------
def test_a_name_that_is_not_utf8_is_refused_in_one_line_and_the_rest_is_ingested(container, caplog):
    kb = container.settings.paths.kb_dir
    write(kb, b"caf\xe9-plan.md", "# Plan\n\nShelter opens at 6.\n")
    write(kb, b"boats.md", "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n")
    with caplog.at_level(logging.WARNING):
        summary = container.assistant.ingest()
    assert summary.count("added") == 1 and [o.source for o in summary.failed] == ["caf\\xe9-plan.md"]
    reason = summary.failed[0].reason
    assert "not valid UTF-8" in reason and "rename" in reason and "UnicodeEncodeError" not in reason
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_control_characters_and_direction_overrides_in_names_are_refused(container):
    kb = container.settings.paths.kb_dir
    write(kb, "red\x1b[31malert.md", "# Alert\n\nRed alert at 9.\n")
    write(kb, "report\u202efdp.md", "# Report\n\nReport due at 10.\n")
    summary = container.assistant.ingest()
    failed = {o.source: o.reason for o in summary.failed}
    assert set(failed) == {"red\\x1b[31malert.md", "report\\u202efdp.md"}
    assert "control characters" in failed["red\\x1b[31malert.md"]
    assert "reverse" in failed["report\\u202efdp.md"]
    assert sources(container) == set()


def test_documents_escapes_names_stored_before_the_rules(tmp_path):
    """A name with ESC sequences printed raw could clear or rewrite the officer's terminal; a folder
    named ``a[`` holding ``]x.md`` made rich's markup fail with a traceback."""
    kb, data = tmp_path / "kb", tmp_path / "data"
    write(kb, "clear.md", "# Clear\n\nThe clear plan.\n")
    write(kb / "a[", "]x.md", "# Bracket\n\nThe bracket plan.\n")
    env = {"NEOC_KB_DIR": str(kb)}
    assert run_cli(["ingest", "--no-progress"], data, **env).returncode == 0
    with sqlite3.connect(data / "manifest.sqlite3") as conn:  # as an older release stored it
        conn.execute("UPDATE files SET source=? WHERE source='clear.md'", ("cl\x1b[2Jear.md",))
    proc = run_cli(["documents"], data, **env, COLUMNS="200")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "\x1b" not in proc.stdout and "cl\\x1b[2Jear.md" in proc.stdout
    assert "a[/]x.md" in proc.stdout


def test_the_ingest_summary_on_the_terminal_shows_a_bad_name_escaped(tmp_path):
    kb, data = tmp_path / "kb", tmp_path / "data"
    write(kb, b"caf\xe9\x1b[2J.md", "# Plan\n\nShelter opens at 6.\n")
    proc = run_cli(["ingest", "--no-progress"], data, NEOC_KB_DIR=str(kb), COLUMNS="200")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "\x1b" not in proc.stdout and "caf\\xe9\\x1b[2J.md" in proc.stdout


# -- uploads ------------------------------------------------------------------------------------------
def test_a_long_upload_name_keeps_its_extension():
    name = safe_filename("Situation report " * 18 + "final.md")  # 311 characters
    assert name.endswith(".md") and len(name.encode()) <= 150
    assert safe_filename("ü" * 300 + ".docx").endswith("ü.docx")


def test_uploads_keep_non_ascii_letters_in_nfc(container, gradio_uploads):
    kb = KnowledgeBaseHandlers(container.assistant)
    files = []
    for name, text in [("ünits.md", "Unit one has 12 boats."), ("änits.md", "Unit two has 4 boats."),
                       (NFD, "Shelter A holds 400 people.")]:
        folder = gradio_uploads / str(len(files))
        folder.mkdir()
        files.append(folder / name)
        files[-1].write_text(f"# {name}\n\n{text}\n")
    summary, rows, dropdown, _ = kb.upload([str(f) for f in files])
    assert "added 3" in summary and "twice" not in summary, summary
    assert {"uploads/ünits.md", "uploads/änits.md", "uploads/" + NFC} <= set(dropdown["choices"])
    assert sorted(p.name for p in (container.settings.paths.kb_dir / "uploads").iterdir()) == sorted(
        ["ünits.md", "änits.md", NFC])
