"""OCR: scanned PDF pages (a mixed PDF keeps its text pages) and images, with the real Tesseract.

The scans are made here from real text PDFs: a page is rendered to an image (pdftoppm) and wrapped
in a PDF without a text layer, so what OCR must give back is known. Each test reads 1-2 pages
(about a second each).
"""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.loaders import load_document
from neoc_assistant.ingest.ocr import OcrOptions

from ingest.documents import FLOOD_PAGE, SHELTER_PAGE, image_pdf, join_pdfs, rasterise, text_pdf

pytestmark = pytest.mark.skipif(shutil.which("tesseract") is None or shutil.which("pdftoppm") is None,
                                reason="needs Debian's tesseract-ocr and poppler-utils (.ci/run installs them)")


@pytest.fixture(scope="module")
def flood_scan_png() -> bytes:
    return rasterise(text_pdf([FLOOD_PAGE]), 1)


def words(text: str) -> list[str]:
    return text.replace(",", " ").replace(".", " ").split()


def test_a_mixed_pdf_keeps_its_text_page_and_reads_its_scanned_page_by_ocr(tmp_path, flood_scan_png):
    typed = text_pdf(["Typed page. " + SHELTER_PAGE])
    mixed = join_pdfs((image_pdf([flood_scan_png]), 1), (typed, 1))
    seen = []
    doc = load_document(tmp_path / "sop.pdf", mixed, ocr=OcrOptions(), progress=lambda *p: seen.append(p))
    scanned, kept = doc.pages
    assert (scanned.number, kept.number) == (1, 2)
    assert kept.ocr_confidence is None and kept.text.startswith("Typed page.")  # text stays text, not OCR'd
    assert scanned.ocr_confidence is not None and scanned.ocr_confidence >= 85
    got, expected = words(scanned.text), words(FLOOD_PAGE)
    assert sum(w in got for w in expected) >= 0.95 * len(expected), scanned.text
    assert seen == [(0, 1), (1, 1)]  # only the scanned page was read, and progress said so
    assert any("1 page(s) read by OCR at" in n and "pages/s" in n for n in doc.notes), doc.notes


def test_a_scan_read_in_the_capped_worker_reports_its_pages_to_the_parent(tmp_path, flood_scan_png):
    """The ingest's path: the parse worker (spawned, memory-capped) runs OCR and sends progress back."""
    from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits
    from neoc_assistant.ingest.packages import DEFAULT_LIMITS

    parser = IsolatedParser(ParseLimits(5_000_000, DEFAULT_LIMITS, 512, 120.0))
    seen: list[tuple[int, int]] = []
    try:
        doc = parser.load(tmp_path / "flood-scan.pdf", image_pdf([flood_scan_png]), lambda *p: seen.append(p))
        photo = parser.load(tmp_path / "notice-board.png", flood_scan_png, lambda *p: seen.append(p))
    finally:
        parser.close()
    assert [(p.number, p.ocr_confidence is not None) for p in doc.pages] == [(1, True)]
    assert [(p.number, p.ocr_confidence is not None) for p in photo.pages] == [(None, True)]
    assert "Flood" in doc.pages[0].text and "Flood" in photo.pages[0].text
    assert seen == [(0, 1), (1, 1), (0, 1), (1, 1)]
    assert parser.started == 1  # both files in one worker


def test_a_scan_and_a_photo_go_through_ingest_search_and_ask(container, flood_scan_png):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True, exist_ok=True)
    (kb / "shelter-scan.pdf").write_bytes(image_pdf([rasterise(text_pdf([SHELTER_PAGE]), 1)]))
    (kb / "notice-board.png").write_bytes(flood_scan_png)
    summary = container.assistant.ingest([kb])
    assert summary.ok, summary.to_dict()["failures"]
    outcomes = {o.source: o for o in summary.outcomes}
    assert "read by OCR" in outcomes["shelter-scan.pdf"].reason and outcomes["shelter-scan.pdf"].pages == 1

    hit = container.assistant.search("how soon is a family registered at the evacuation shelter", k=1)[0]
    assert hit.source == "shelter-scan.pdf" and hit.page == 1 and "24 hours" in hit.text
    assert hit.ocr_confidence is not None and hit.ocr_confidence >= 85
    assert hit.to_json(1)["ocr_confidence"] == hit.ocr_confidence
    stored = container.manifest.chunks_by_id([hit.chunk_id])[hit.chunk_id]
    assert stored.ocr_confidence == hit.ocr_confidence

    answer = container.assistant.ask("When are sandbags released from the Banepa store?", use_cache=False)
    assert answer.mode != "not-found" and "two hours" in answer.answer, answer.answer
    assert answer.sources[0]["source"] == "notice-board.png"


def test_a_page_below_the_confidence_floor_is_reported_and_not_ingested(tmp_path, flood_scan_png):
    mixed = join_pdfs((image_pdf([flood_scan_png]), 1), (text_pdf([SHELTER_PAGE]), 1))
    strict = OcrOptions(min_confidence=99.5)  # a clean scan reads at about 96: under this floor
    doc = load_document(tmp_path / "sop.pdf", mixed, ocr=strict)
    assert doc.pages[0].text == "" and doc.pages[1].text.startswith("Shelter management")
    assert any("below the floor of 99.5" in n and "page 1 (" in n for n in doc.notes), doc.notes
    with pytest.raises(InputError, match=r"no page of this scanned PDF could be read reliably.*below the floor"):
        load_document(tmp_path / "scan.pdf", image_pdf([flood_scan_png]), ocr=strict)


def test_an_image_without_writing_is_refused_not_ingested_as_garbage(tmp_path):
    import numpy as np
    from PIL import Image

    noise = io.BytesIO()
    Image.fromarray((np.random.default_rng(7).random((500, 700)) * 255).astype("uint8")).save(noise, "PNG")
    with pytest.raises(InputError, match="no text|reliably"):
        load_document(tmp_path / "photo.png", noise.getvalue(), ocr=OcrOptions())


def test_a_page_over_the_time_limit_is_reported(tmp_path, flood_scan_png):
    with pytest.raises(InputError, match=r"took longer than 0.01 s \(ocr.page_timeout_seconds\)"):
        load_document(tmp_path / "notice.png", flood_scan_png, ocr=OcrOptions(page_timeout_seconds=0.01))


def test_too_many_pages_to_read_fails_before_reading_any(tmp_path, flood_scan_png):
    scan = image_pdf([flood_scan_png, flood_scan_png])
    with pytest.raises(InputError, match=r"2 pages to read by OCR, more than 1 \(ocr.max_pages_per_file"):
        load_document(tmp_path / "scan.pdf", scan, ocr=OcrOptions(max_pages=1))


def test_without_tesseract_a_scan_fails_saying_what_to_install_and_the_rest_is_ingested(
        make_container, monkeypatch, tmp_path, flood_scan_png):
    empty = tmp_path / "no-programs"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # the parse worker is started after this: no tesseract, no pdftoppm
    container = make_container()
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True, exist_ok=True)
    (kb / "scan.pdf").write_bytes(image_pdf([flood_scan_png]))
    (kb / "notice.jpg").write_bytes(flood_scan_png)  # a PNG under a .jpg name: Pillow reads what it is
    (kb / "radio.md").write_text("# Radio\n\nVHF check-in at 07:30.\n", encoding="utf-8")
    summary = container.assistant.ingest([kb])
    failed = {o.source: o.reason for o in summary.failed}
    assert set(failed) == {"scan.pdf", "notice.jpg"} and summary.count("added") == 1
    for reason in failed.values():
        assert "Tesseract is not installed" in reason
        assert "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-nep poppler-utils" in reason


def test_ocr_off_or_a_missing_language_says_which_setting(tmp_path, flood_scan_png):
    with pytest.raises(InputError, match=r"OCR is switched off \(ocr.enabled"):
        load_document(tmp_path / "n.png", flood_scan_png, ocr=OcrOptions(enabled=False))
    with pytest.raises(InputError, match=r"language data for xyz.*apt-get install tesseract-ocr-xyz"):
        load_document(tmp_path / "n.png", flood_scan_png, ocr=OcrOptions(languages="eng+xyz"))


def test_ocr_settings_reach_the_parse_worker(monkeypatch):
    from neoc_assistant.ingest.isolation import ParseLimits
    from neoc_assistant.settings import Settings

    monkeypatch.setenv("NEOC_OCR__MIN_CONFIDENCE", "72.5")
    monkeypatch.setenv("NEOC_OCR__LANGUAGES", "eng+nep")
    settings = Settings()
    limits = ParseLimits.from_settings(settings.store, settings.ocr)
    assert limits.ocr == OcrOptions(languages="eng+nep", min_confidence=72.5)
    with pytest.raises(ValueError):
        Settings(ocr={"languages": "eng; rm -rf /"})


def test_a_manifest_from_before_ocr_gains_the_column_and_a_read_only_one_is_still_read(tmp_path, monkeypatch):
    from neoc_assistant.store import database
    from neoc_assistant.store.manifest import SCHEMA, Manifest

    path = tmp_path / "manifest.sqlite"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace(",\n    ocr_confidence REAL", "").replace(
        "               -- 0-100 when the chunk's page was read by OCR, else NULL", ""))
    assert "ocr_confidence" not in {r[1] for r in old.execute("PRAGMA table_info(chunks)")}
    old.execute("INSERT INTO documents VALUES ('d', 't', 'md', 1, 1, 0)")
    old.execute("INSERT INTO chunks(chunk_id, doc_hash, chunk_index, page, section, text, content_hash) "
                "VALUES ('c1', 'd', 0, NULL, 's', 'text', 'h')")
    old.commit()
    old.close()
    with monkeypatch.context() as patch:
        patch.setattr(database, "writable", lambda _path: False)  # (chmod would not stop root)
        read_only = Manifest(path)
        assert read_only.read_only and read_only.chunks_by_id(["c1"])["c1"].ocr_confidence is None
        read_only.close()
    assert "ocr_confidence" not in {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(chunks)")}
    manifest = Manifest(path)
    assert manifest.chunks_by_id(["c1"])["c1"].ocr_confidence is None
    assert "ocr_confidence" in {r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(chunks)")}


def test_the_progress_bar_shows_pages_and_pages_per_second():
    from neoc_assistant.ingest.progress import page_progress

    class Bar:
        said = ""

        def set_postfix_str(self, text):
            self.said = text

    bar = Bar()
    report = page_progress(bar, "sops/flood-scan.pdf")
    report(0, 3)
    assert bar.said == "sops/flood-scan.pdf OCR 0/3 pages"
    report(2, 3)
    assert bar.said.startswith("sops/flood-scan.pdf OCR 2/3 pages, ") and bar.said.endswith(" pages/s")
