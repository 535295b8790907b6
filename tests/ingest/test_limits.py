"""Issue 12.11: one file can no longer hold the ingest for minutes - caps on text and chunks, junk skipped.

Real manifest, Chroma and embedding model; the caps are lowered through settings
so each over-sized file stays small enough for a quick test.
"""

from __future__ import annotations

import base64
import os
import textwrap

import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.limits import is_junk
from neoc_assistant.ingest.loaders import load_document

from ingest_fixtures import write_docx, write_pdf

SENTENCE = "Sandbags for the Koshi embankment are stacked at the Biratnagar warehouse, gate 3. "


def _kb_with(container, files: dict[str, str]):
    """The container's knowledge-base folder holding ``files`` (name -> text), plus a short boats.md."""
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True)
    files = {**files, "boats.md": "# Boats\n\nFourteen inflatable rescue boats are stored at Sunsari depot.\n"}
    for name, text in files.items():
        (kb / name).write_text(text)
    return kb


def _store_is_consistent(container) -> None:
    """Nothing half-written: every stored vector belongs to a manifest chunk and the other way round."""
    manifest = container.manifest
    assert container.vectors.ids() == set(manifest.chunk_ids_of([d.doc_hash for d in manifest.documents()]))


def test_a_base64_paragraph_in_html_or_docx_is_skipped_not_chunked(container):
    """A base64 image pasted into an HTML paragraph became 2,397 chunks; now it is dropped before chunking."""
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True)
    blob = base64.b64encode(os.urandom(90_000)).decode()  # one 120,000-character token
    wrapped = "\n".join(textwrap.wrap(base64.b64encode(os.urandom(30_000)).decode(), 76))  # MIME style
    (kb / "depot.html").write_text(f"<html><body><h1>Depot</h1><p>{SENTENCE}</p><p>{blob}</p></body></html>")
    write_docx(kb / "stock.docx", "Stock", ["Two hundred tarpaulins are held at Itahari.", wrapped])
    summary = container.assistant.ingest()
    assert summary.ok and summary.count("added") == 2, summary.to_dict()
    assert summary.chunks_added <= 3, summary.to_dict()["files"]
    assert all("encoded data" in o.reason and "skipped" in o.reason for o in summary.outcomes), summary.outcomes
    chunks = [c.text for d in container.manifest.documents()
              for c in container.manifest.chunks_by_id(container.manifest.chunk_ids_of([d.doc_hash])).values()]
    assert not any(blob[:40] in text or wrapped[:40] in text for text in chunks)
    assert container.assistant.search("where are the sandbags stacked", k=1)[0].source == "depot.html"


def test_ordinary_lines_with_a_link_or_checksum_are_not_junk():
    assert not is_junk("Download the form from https://example.org/forms/relief-distribution-2024.pdf "
                       "and check it against sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 "
                       "before you print the registration sheets for each ward office.")
    assert not is_junk("Pneumonoultramicroscopicsilicovolcanoconiosis is a lung disease from fine ash.")
    assert is_junk("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def test_a_text_file_over_the_character_cap_fails_with_the_reason_and_the_rest_is_ingested(make_container):
    """A 30 MB text file would have held the ingest lock for ~50 minutes; now it fails at once."""
    container = make_container(max_chars_per_file=20_000)
    _kb_with(container, {"a-radio.md": "# Radio\n\nDistrict EOCs check in by VHF radio at 07:30 and 19:30 daily.\n",
                         "b-huge-log.txt": SENTENCE * 400})  # ~34,000 characters
    summary = container.assistant.ingest()
    assert summary.count("added") == 2 and [o.source for o in summary.failed] == ["b-huge-log.txt"]
    reason = summary.failed[0].reason
    assert "max_chars_per_file" in reason and "NEOC_STORE__MAX_CHARS_PER_FILE" in reason and "20,000" in reason
    assert container.manifest.file("b-huge-log.txt") is None
    assert {d.title for d in container.manifest.documents()} == {"Radio", "Boats"}
    _store_is_consistent(container)


def test_a_file_over_the_chunk_cap_fails_and_nothing_of_it_is_stored(make_container):
    container = make_container(max_chunks_per_file=3)
    sections = "".join(f"## Ward {n}\n\n{SENTENCE * 3}\n\n" for n in range(10))
    _kb_with(container, {"wards.md": "# Wards\n\n" + sections})
    summary = container.assistant.ingest()
    assert [o.source for o in summary.failed] == ["wards.md"] and summary.count("added") == 1
    assert "max_chunks_per_file" in summary.failed[0].reason
    assert container.manifest.counts()["documents"] == 1
    _store_is_consistent(container)


def test_pdf_extraction_stops_at_the_cap_instead_of_reading_every_page(tmp_path, monkeypatch):
    from pypdf import PageObject

    path = write_pdf(tmp_path / "long.pdf", [SENTENCE * 8] * 6)  # ~700 characters a page
    calls = []
    real = PageObject.extract_text
    monkeypatch.setattr(PageObject, "extract_text", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    with pytest.raises(InputError, match="max_chars_per_file"):
        load_document(path, path.read_bytes(), max_chars=1000)
    assert len(calls) == 2


def test_a_docx_whose_xml_cannot_fit_the_cap_is_refused_before_parsing(tmp_path, monkeypatch):
    """A 660 KB DOCX held 199 MB of XML that python-docx parsed for minutes."""
    import docx

    path = write_docx(tmp_path / "bomb.docx", "Bomb", [SENTENCE] * 400)
    monkeypatch.setattr(docx, "Document", lambda *a, **k: pytest.fail("the XML must not be parsed"))
    with pytest.raises(InputError, match="word/document.xml.*max_chars_per_file"):
        load_document(path, path.read_bytes(), max_chars=1000)
