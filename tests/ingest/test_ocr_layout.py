"""A scanned page reads like its text layer: turned pages, words broken at a line's end, list bullets, titles.

Found on scanned copies of FEMA PDFs (``scripts/eval_scanned.py``): Tesseract reads a sideways page
as it is and an upside-down one after orientation detection; it leaves "evacua-" / "tion" apart
and reads bullets as "e" or "=", where the PDF's text layer has whole words and bullets.
"""

from __future__ import annotations

import io
import shutil

import pytest

from neoc_assistant.ingest.loaders import load_document
from neoc_assistant.ingest.ocr import OcrOptions, tidy

from ingest.documents import FLOOD_PAGE, SHELTER_PAGE, image_pdf, rasterise, text_pdf

needs_ocr = pytest.mark.skipif(shutil.which("tesseract") is None or shutil.which("pdftoppm") is None,
                               reason="needs Debian's tesseract-ocr and poppler-utils (.ci/run installs them)")
BROKEN = ("Sandbag distribution. Sandbags are handed out at every evacua-\n"
          "tion shelter within two hours of a red alert, and the ward office keeps a register of the\n"
          "bags given to each shelter.")


def turned(png: bytes, degrees: int) -> bytes:
    """The page fed into the scanner ``degrees`` clockwise."""
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(png)).rotate(-degrees, expand=True).save(out, "PNG")
    return out.getvalue()


@needs_ocr
@pytest.mark.parametrize("degrees", [90, 180])
def test_a_page_scanned_sideways_or_upside_down_is_read_upright(tmp_path, degrees):
    page = rasterise(text_pdf([FLOOD_PAGE + " " + SHELTER_PAGE]), 1)
    doc = load_document(tmp_path / "scan.pdf", image_pdf([turned(page, degrees)]), ocr=OcrOptions())
    text = " ".join(doc.pages[0].text.split())
    assert "registered within 24 hours" in text and "within two hours of a red alert" in text, text
    assert doc.pages[0].ocr_confidence is not None and doc.pages[0].ocr_confidence >= 85
    if degrees == 180:  # Tesseract's layout analysis reads a sideways page as it is; upside down needs turning
        assert any("turned upright before reading: page 1 (180°)" in n for n in doc.notes), doc.notes


@needs_ocr
def test_a_word_broken_at_a_line_end_is_whole_again_as_in_a_text_layer(tmp_path):
    page = rasterise(text_pdf([BROKEN]), 1)
    doc = load_document(tmp_path / "scan.png", page, ocr=OcrOptions())
    assert "every evacuation shelter" in " ".join(doc.pages[0].text.split()), doc.pages[0].text


def test_misread_bullets_become_bullets_and_words_are_left_alone():
    ocr = ("Notes:\n\ne Also available as 11 x 17 chart.\n= Geographic area involved = Values at risk\n"
           "o Check-in at Staging Areas\n© Reverse side for remarks")
    assert tidy(ocr) == ("Notes:\n\n• Also available as 11 x 17 chart.\n• Geographic area involved = Values at "
                         "risk\n• Check-in at Staging Areas\n• Reverse side for remarks")
    kept = "e-mail the duty officer\ne.g. Staging\nBe alert\nsmall x\no the river\nself-\nService desk"
    assert tidy(kept) == kept  # a word, a lower-case continuation, a hyphen before a capital: untouched
    assert tidy("the evacua-\ntion shelter\n\nwell-\n\nknown") == "the evacuation shelter\n\nwell-\n\nknown"


def test_a_heading_read_as_two_blocks_is_one_title():
    from pathlib import Path

    from neoc_assistant.ingest.scans import scan_title

    sheet = "BE PREPARED FOR A\n\nTORNADO\n\nTornadoes can\ndestroy buildings"
    assert scan_title(sheet, Path("tornado-p1.png")) == "BE PREPARED FOR A TORNADO"
    assert scan_title("ICS 213\nGeneral Message", Path("213.pdf")) == "ICS 213"  # a whole heading stays as it is
    assert scan_title("Notes for\n" + "x" * 90, Path("notes_2024.png")) == "Notes for"  # too long to join
