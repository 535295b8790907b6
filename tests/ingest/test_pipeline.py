"""Ingest: every loader, incremental behaviour, bad files, atomicity, and `search --json`.

All against a real Chroma store, the real manifest and the real embedding model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from neoc_assistant.ingest.loaders import decode_text, load_document
from neoc_assistant.errors import InputError

from conftest import REPO_ROOT
from ingest_fixtures import run_cli, write_docx, write_pdf


# -- fixture documents ---------------------------------------------------------------

def encrypt_pdf(src: Path, dst: Path, user_password: str) -> Path:
    reader = PdfReader(str(src))
    writer = PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with open(dst, "wb") as fh:
        writer.write(fh)
    return dst


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    root.mkdir()
    (root / "generator.md").write_text(
        "# Generator fuel\n\n## Refuelling\n\nThe Banepa relay station generator must be refuelled every "
        "18 hours with 40 litres of diesel; the fuel log is checked by the logistics duty officer.\n",
        encoding="utf-8",
    )
    (root / "notes.txt").write_text("Radio check-in with district EOCs happens at 07:30 and 19:30 daily.\n", encoding="utf-8")
    return root


def sources_in_store(container) -> set[str]:
    return {s for d in container.manifest.documents() for s in d.sources}


# -- loaders --------------------------------------------------------------------------

def test_pdf_loader_keeps_page_numbers(tmp_path):
    path = write_pdf(tmp_path / "two.pdf", ["Page one talks about sandbags.", "Page two covers boats and life jackets."])
    doc = load_document(path, path.read_bytes())
    assert doc.doc_type == "pdf"
    assert [p.number for p in doc.pages] == [1, 2]
    assert "life jackets" in doc.pages[1].text


def test_aes_encrypted_pdf_with_empty_password_opens(tmp_path):
    plain = write_pdf(tmp_path / "plain.pdf", ["Encrypted evacuation order text for ward 9."])
    enc = encrypt_pdf(plain, tmp_path / "enc.pdf", user_password="")
    assert PdfReader(str(enc)).is_encrypted
    doc = load_document(enc, enc.read_bytes())
    assert "ward 9" in doc.pages[0].text


def test_password_protected_pdf_fails_with_instructions(tmp_path):
    plain = write_pdf(tmp_path / "plain.pdf", ["Secret."])
    enc = encrypt_pdf(plain, tmp_path / "locked.pdf", user_password="hunter2")
    with pytest.raises(InputError, match="password-protected"):
        load_document(enc, enc.read_bytes())


def test_corrupt_pdf_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\nthis is not a pdf body\n")
    with pytest.raises(InputError, match="PDF"):
        load_document(path, path.read_bytes())


def test_docx_headings_become_sections(tmp_path):
    path = write_docx(tmp_path / "sitrep.docx", "Situation report schedule", ["Sitreps are issued at 08:00 and 18:00."])
    doc = load_document(path, path.read_bytes())
    assert doc.doc_type == "docx"
    assert doc.pages[0].text.startswith("# Situation report schedule")
    assert "18:00" in doc.pages[0].text


def test_html_loader_strips_scripts_and_keeps_headings(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Shelter rules</title><script>var x=1;</script></head>"
        "<body><h2>Registration</h2><p>Register every family on arrival.</p></body></html>",
        encoding="utf-8",
    )
    doc = load_document(path, path.read_bytes())
    assert doc.title == "Shelter rules"
    assert "## Registration" in doc.pages[0].text
    assert "var x" not in doc.pages[0].text


def test_csv_rows_become_readable_lines(tmp_path):
    path = tmp_path / "warehouses.csv"
    path.write_text("district,warehouse,tarpaulins\nKaski,Pokhara depot,1200\nGorkha,Gorkha bazaar,450\n", encoding="utf-8")
    doc = load_document(path, path.read_bytes())
    assert "district: Kaski; warehouse: Pokhara depot; tarpaulins: 1200" in doc.pages[0].text


def test_non_utf8_text_is_decoded_not_dropped(tmp_path):
    path = tmp_path / "legacy.txt"
    path.write_bytes("Café meeting point – ward office, 5 km north.".encode("cp1252"))
    doc = load_document(path, path.read_bytes())
    assert "Café" in doc.pages[0].text
    assert doc.notes and "not UTF-8" in doc.notes[0]


def test_utf16_with_bom_is_decoded():
    text, note = decode_text("Flood gauge".encode("utf-16"))
    assert text == "Flood gauge" and "UTF-16" in note


def test_empty_file_is_rejected(tmp_path):
    path = tmp_path / "empty.md"
    path.write_bytes(b"  \n")
    with pytest.raises(InputError, match="empty"):
        load_document(path, path.read_bytes())


# -- pipeline ---------------------------------------------------------------------------

def test_ingest_every_format_and_metadata(container, kb, tmp_path):
    write_pdf(kb / "boats.pdf", ["Rescue boats are stored at the Chitwan depot.", "Each boat carries 8 life jackets."])
    write_docx(kb / "sitrep.docx", "Sitrep", ["Sitrep deadline is 18:00 every day."])
    (kb / "page.html").write_text("<h1>Tents</h1><p>Family tents are 16 square metres.</p>", encoding="utf-8")
    (kb / "stock.csv").write_text("item,qty\nblankets,900\n", encoding="utf-8")
    (kb / "drawing.svg").write_bytes(b"<svg></svg>")  # images are read by OCR now (tests/ingest/test_ocr.py)
    summary = container.assistant.ingest([kb])
    data = summary.to_dict()
    assert data["added"] == 6 and data["failed"] == 0
    assert data["skipped_files"] == [{"source": "drawing.svg", "reason": "unsupported file type '.svg'"}]
    assert summary.ok

    manifest = container.manifest
    docs = {d.sources[0]: d for d in manifest.documents()}
    assert docs["boats.pdf"].n_pages == 2 and docs["boats.pdf"].doc_type == "pdf"
    # every chunk carries its metadata, and Chroma holds exactly the manifest's chunks
    assert container.vectors.count() == manifest.counts()["chunks"]
    pdf_hits = container.assistant.search("how many life jackets per boat", k=3)
    assert pdf_hits[0].source == "boats.pdf" and pdf_hits[0].page == 2
    chunk = manifest.chunks_by_id([pdf_hits[0].chunk_id])[pdf_hits[0].chunk_id]
    assert chunk.content_hash and chunk.chunk_index >= 0
    md_hit = container.assistant.search("diesel refuelling interval for the relay generator", k=1)[0]
    assert md_hit.source == "generator.md"
    assert md_hit.section == "Generator fuel > Refuelling"
    assert md_hit.text.startswith("Generator fuel > Refuelling\n")


def test_chunks_never_exceed_what_the_embedder_reads(container, tmp_path):
    root = tmp_path / "long"
    root.mkdir()
    words = " ".join(f"word{i} sandbag levee pump" for i in range(3000))
    (root / "long.md").write_text("# A very long section heading about flood defence\n\n" + words, encoding="utf-8")
    container.assistant.ingest([root])
    embedder = container.embedder
    texts = [c.text for c in container.manifest.chunks_by_id(
        [f"{d.doc_hash[:16]}-{i:05d}" for d in container.manifest.documents() for i in range(d.n_chunks)]
    ).values()]
    assert len(texts) > 10
    limit = embedder.max_tokens - 2
    assert max(embedder.count_tokens(t) for t in texts) <= limit


def test_reingest_unchanged_tree_does_no_embedding_work(container, kb, monkeypatch):
    container.assistant.ingest([kb])
    version = container.assistant.kb_version()
    calls = []
    original = container.embedder.encode
    monkeypatch.setattr(container.embedder, "encode", lambda texts, **kw: calls.append(len(texts)) or original(texts, **kw))
    summary = container.assistant.ingest([kb])
    assert summary.count("unchanged") == 2 and summary.count("added") == 0
    assert calls == []
    assert container.assistant.kb_version() == version
    # touching a file (new mtime, same bytes) is still no embedding work and no version change
    os.utime(kb / "notes.txt", ns=(1, 1))
    summary = container.assistant.ingest([kb])
    assert summary.count("unchanged") == 2 and calls == []
    assert container.assistant.kb_version() == version


def test_changed_file_replaces_all_its_old_chunks(container, kb):
    container.assistant.ingest([kb])
    old_ids = {h.chunk_id for h in container.assistant.search("generator refuelled diesel", k=5) if h.source == "generator.md"}
    before = container.assistant.kb_version()
    (kb / "generator.md").write_text("# Generator fuel\n\nRefuel the generator every 12 hours with 25 litres.\n", encoding="utf-8")
    summary = container.assistant.ingest([kb])
    assert summary.count("updated") == 1
    assert container.assistant.kb_version() != before
    assert not container.manifest.chunks_by_id(old_ids)
    assert not container.vectors.vectors(list(old_ids))
    hit = container.assistant.search("how often is the generator refuelled", k=1)[0]
    assert "12 hours" in hit.text and "18 hours" not in hit.text
    assert container.vectors.count() == container.manifest.counts()["chunks"]


def test_deleted_file_is_purged(container, kb):
    container.assistant.ingest([kb])
    (kb / "notes.txt").unlink()
    summary = container.assistant.ingest([kb])
    assert [o.source for o in summary.outcomes if o.status == "purged"] == ["notes.txt"]
    assert sources_in_store(container) == {"generator.md"}
    assert container.vectors.count() == container.manifest.counts()["chunks"]
    # --no-prune keeps documents whose files disappeared
    (kb / "generator.md").unlink()
    summary = container.assistant.ingest([kb], prune=False)
    assert summary.count("purged") == 0 and sources_in_store(container) == {"generator.md"}


def test_same_content_under_two_names_is_stored_once(container, kb):
    (kb / "copy-of-notes.txt").write_bytes((kb / "notes.txt").read_bytes())
    summary = container.assistant.ingest([kb])
    assert summary.count("added") == 3
    docs = container.manifest.documents()
    assert len(docs) == 2
    notes = next(d for d in docs if "notes.txt" in d.sources)
    assert set(notes.sources) == {"copy-of-notes.txt", "notes.txt"}
    hits = container.assistant.search("radio check-in time with district EOCs", k=5)
    assert len({h.chunk_id for h in hits}) == len(hits)
    assert set(hits[0].sources) == {"copy-of-notes.txt", "notes.txt"}
    # removing one name keeps the content for the other
    (kb / "notes.txt").unlink()
    container.assistant.ingest([kb])
    assert "copy-of-notes.txt" in sources_in_store(container)
    assert container.assistant.search("radio check-in", k=1)[0].source == "copy-of-notes.txt"


def test_bad_files_are_reported_and_do_not_abort_the_run(container, kb, tmp_path):
    (kb / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    (kb / "empty.txt").write_bytes(b"")
    plain = write_pdf(tmp_path / "p.pdf", ["x"])
    encrypt_pdf(plain, kb / "locked.pdf", user_password="pw")
    summary = container.assistant.ingest([kb])
    failures = {f["source"]: f["reason"] for f in summary.to_dict()["failures"]}
    assert set(failures) == {"broken.pdf", "empty.txt", "locked.pdf"}
    assert "password" in failures["locked.pdf"] and "empty" in failures["empty.txt"]
    assert summary.count("added") == 2 and not summary.ok


def test_file_is_all_or_nothing_when_interrupted(container, kb, monkeypatch):
    """Vectors written before a crash are never served and are cleaned up by the next run."""
    container.assistant.ingest([kb])
    (kb / "new.md").write_text("# Boats\n\nThe inflatable boat inventory is 14 boats at Sunsari.\n", encoding="utf-8")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed after the vectors were written")

    monkeypatch.setattr(container.manifest, "commit_file", crash)
    with pytest.raises(KeyboardInterrupt):
        container.assistant.ingest([kb])
    monkeypatch.undo()
    assert container.vectors.count() > container.manifest.counts()["chunks"]  # orphans exist in Chroma...
    assert all(h.source != "new.md" for h in container.assistant.search("inflatable boat inventory Sunsari", k=5))
    summary = container.assistant.ingest([kb])  # ...and the next run removes them and ingests the file
    assert summary.count("added") == 1
    assert container.vectors.count() == container.manifest.counts()["chunks"]
    assert container.assistant.search("inflatable boat inventory Sunsari", k=1)[0].source == "new.md"


def test_process_killed_mid_file_leaves_store_consistent(kb, tmp_path):
    """A real SIGKILL-style exit (os._exit) right after Chroma was written."""
    data_dir = tmp_path / "killdata"
    (kb / "big.md").write_text("# Convoys\n\nRelief convoys leave Hetauda at 05:00 with police escort.\n", encoding="utf-8")
    script = textwrap.dedent(
        f"""
        import os
        from neoc_assistant.container import Container
        from neoc_assistant.settings import Settings
        c = Container(Settings(data_dir={str(data_dir)!r}))
        real = c.vectors.upsert
        def upsert_then_die(*a, **k):
            real(*a, **k)
            os._exit(9)  # killed after the first file's vectors reached Chroma
        c.vectors.upsert = upsert_then_die
        c.assistant.ingest([{str(kb)!r}])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, timeout=300)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    from neoc_assistant.container import Container
    from neoc_assistant.settings import Settings

    c = Container(Settings(data_dir=data_dir))
    assert c.manifest.counts()["files"] == 0  # the first file was never committed
    summary = c.assistant.ingest([kb])
    assert summary.count("added") == 3 and summary.ok
    assert c.vectors.count() == c.manifest.counts()["chunks"]


def test_second_ingest_while_one_runs_is_refused(container, kb):
    from filelock import FileLock

    from neoc_assistant.errors import StoreError

    lock = FileLock(str(container.settings.paths.data_dir / "ingest.lock"))
    container.settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    with lock:
        with pytest.raises(StoreError, match="Another ingest is running"):
            container.assistant.ingest([kb])


def test_corrupt_manifest_gives_actionable_error(tmp_path):
    from neoc_assistant.errors import StoreError
    from neoc_assistant.store.manifest import Manifest

    path = tmp_path / "manifest.sqlite3"
    path.write_bytes(b"this is not an sqlite database at all" * 100)
    with pytest.raises(StoreError, match="corrupt"):
        Manifest(path)


# -- CLI ----------------------------------------------------------------------------------
def test_cli_ingest_and_search_json(kb, tmp_path):
    data_dir = tmp_path / "cli-data"
    (kb / "broken.pdf").write_bytes(b"%PDF garbage")
    proc = run_cli(["ingest", str(kb), "--json"], data_dir, NEOC_KB_DIR=str(kb))
    assert proc.returncode == 1, proc.stderr  # one file failed -> non-zero exit
    summary = json.loads(proc.stdout)
    assert summary["added"] == 2 and summary["failures"][0]["source"] == "broken.pdf"

    proc = run_cli(["search", "how often must the relay generator get diesel", "--k", "2", "--json"], data_dir,
                   NEOC_KB_DIR=str(kb))
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert [h["rank"] for h in hits] == [1, 2]
    assert set(hits[0]) == {"rank", "score", "source", "page", "chunk_id", "text"}
    assert hits[0]["source"] == "generator.md" and "18 hours" in hits[0]["text"]


def test_cli_rejects_empty_question_with_one_line(tmp_path):
    proc = run_cli(["search", "   "], tmp_path / "d")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: The question is empty") and "Traceback" not in proc.stderr


def test_text_with_stray_nul_bytes_is_kept_but_binary_is_refused(tmp_path):
    manual = tmp_path / "manual.txt"
    manual.write_bytes(b"Unit 1\n\x00 Roles and responsibilities\n\x00 Hazards\n" + b"Community preparedness. " * 50)
    doc = load_document(manual, manual.read_bytes())
    assert "• Roles and responsibilities" in doc.pages[0].text
    blob = tmp_path / "blob.txt"
    blob.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(InputError, match="binary"):
        load_document(blob, blob.read_bytes())
