"""Scanned pages into text pages: the image-only pages of a PDF, and image files (PNG, JPEG, TIFF).

Each page is read by OCR (``ocr.py``) and keeps its number. What cannot be
trusted is reported in the file's notes, never indexed: a page below the
confidence floor (``ocr.min_confidence``), a page over the time limit
(``ocr.page_timeout_seconds``; after ``MAX_TIMED_OUT_PAGES`` of them the
file fails, since it is damaged or hostile rather than slow). A PDF's text
pages are kept as text: only pages with (almost) no text layer and an image
on them are read by OCR, so a mixed PDF costs OCR only where it needs it.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.document import LoadedDocument, Page, title_from_text
from neoc_assistant.ingest.limits import TextBudget
from neoc_assistant.ingest.ocr import OcrOptions, Progress, check_tools, open_image_frames, read_image, render_pdf_page

# A page whose text layer has fewer non-space characters than this, and an image, is a scan (a
# scanner's stamp or a page number can sit in a text layer over the image).
MIN_TEXT_CHARS = 20
# Pixels a PDF page is rendered to at most: an A3 page at 300 dpi is 17 Mpx; larger sheets get fewer dpi.
MAX_RENDER_PIXELS = 40_000_000
MAX_TIMED_OUT_PAGES = 3
MAX_TITLE_CHARS = 80
NO_WORDS = "where OCR found no words"
# Words a heading does not end with: an article, a preposition, a conjunction (English; OCR's default language).
OPEN_ENDED = frozenset("a an the for of to and or in on at with by from your".split())


def scanned_pages(reader, pages: list[Page], unreadable: set[int]) -> list[int]:
    """Numbers of the PDF pages to read by OCR; all of them when no page has any text layer at all.
    A page the PDF reader gave up on (``unreadable``) is damaged, not scanned: it is never rendered."""
    if not any(p.text.strip() for p in pages):
        return [p.number for p in pages if p.number is not None and p.number not in unreadable]
    return [p.number for p, raw in zip(pages, reader.pages) if p.number is not None and p.number not in unreadable
            and len("".join(p.text.split())) < MIN_TEXT_CHARS and _has_image(raw)]


def _has_image(page) -> bool:
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else {}
        objects = resources.get("/XObject")
        objects = objects.get_object() if objects is not None else {}
        return any(o.get_object().get("/Subtype") in ("/Image", "/Form") for o in objects.values())
    except Exception:  # noqa: BLE001 - a page we cannot inspect is not read twice
        return False


def render_dpi(page, options: OcrOptions) -> int:
    """``options.dpi``, less for a sheet so large that it would render past ``MAX_RENDER_PIXELS``."""
    try:
        box = page.mediabox
        square_inches = abs(float(box.width) * float(box.height)) / (72 * 72)
    except Exception:  # noqa: BLE001
        return options.dpi
    if square_inches <= 0:
        return options.dpi
    return max(72, min(options.dpi, int(math.sqrt(MAX_RENDER_PIXELS / square_inches))))


def ocr_pdf_pages(data: bytes, numbers: list[int], dpis: dict[int, int], options: OcrOptions, budget: TextBudget,
                  progress: Progress | None) -> tuple[dict[int, Page], list[str]]:
    """The pages ``numbers`` of a PDF read by OCR (those that passed the floor), and notes on the rest."""
    check_tools(options, pdf=True)
    _check_page_count(len(numbers), options)
    with tempfile.TemporaryDirectory(prefix="neoc-ocr-") as folder:
        pdf = Path(folder) / "scan.pdf"
        pdf.write_bytes(data)

        def image(number: int):
            return lambda: render_pdf_page(pdf, number, _with_dpi(options, dpis.get(number, options.dpi)))

        pages, notes = read_pages([(n, image(n)) for n in numbers], len(numbers), options, budget, progress)
    return {p.number: p for p in pages if p.number is not None}, notes  # a PDF's pages all have numbers


def load_image(path: Path, data: bytes, budget: TextBudget, *, ocr: OcrOptions | None = None,
               progress: Progress | None = None) -> LoadedDocument:
    """A photo or scan (a TIFF may hold many pages, numbered from 1; a single image has no page number)."""
    if ocr is None:
        raise InputError("an image is read by OCR, which runs in `ingest` (a file read outside it cannot be)")
    check_tools(ocr, pdf=False)
    frames = list(open_image_frames(data))
    _check_page_count(len(frames), ocr)
    numbered = len(frames) > 1
    items = [(i + 1 if numbered else None, (lambda f=frame: f)) for i, frame in enumerate(frames)]
    pages, notes = read_pages(items, len(items), ocr, budget, progress)
    if not pages and all(NO_WORDS in n for n in notes):
        raise InputError("OCR found no text in the image (a photo without writing, or blank)")
    if not pages:
        raise InputError("no text could be read reliably from the image by OCR: " + "; ".join(notes))
    return LoadedDocument(title=scan_title(pages[0].text, path), doc_type="image", pages=pages, notes=notes)


def scan_title(text: str, path: Path) -> str:
    """The first line OCR read when it is short enough to be a heading, else the file's name: the title
    heads every chunk, and a scan's first line is as often a line of prose as a heading. A heading that
    OCR read as two blocks ("BE PREPARED FOR A", then "TORNADO" in larger type) is read on while its
    line ends in a word that cannot end one."""
    first = title_from_text(text, path)
    if len(first) > MAX_TITLE_CHARS:
        return path.stem.replace("_", " ")
    following = [line.strip() for line in text.splitlines() if line.strip()][1:]
    while following and first.split()[-1].lower() in OPEN_ENDED and len(first) + len(following[0]) < MAX_TITLE_CHARS:
        first = f"{first} {following.pop(0)}"
    return first


def read_pages(items: Iterable[tuple[int | None, Callable]], total: int, options: OcrOptions, budget: TextBudget,
               progress: Progress | None) -> tuple[list[Page], list[str]]:
    """OCR each (page number, image maker); the pages worth indexing, and notes on what was not."""
    started = time.perf_counter()
    kept: list[Page] = []
    confidences: list[float] = []  # of the kept pages
    low: list[str] = []
    timed_out: list[str] = []
    turned: list[str] = []
    blank = 0
    if progress:
        progress(0, total)
    for done, (number, make_image) in enumerate(items, start=1):
        label = str(number) if number is not None else "the image"
        try:
            page = read_image(make_image(), options, number)
        except InputError as exc:
            if "took longer than" not in str(exc):
                raise
            timed_out.append(label)
            if len(timed_out) > MAX_TIMED_OUT_PAGES:
                raise InputError(f"{len(timed_out)} pages each took longer than {options.page_timeout_seconds:g} s "
                                 "to read (ocr.page_timeout_seconds, env NEOC_OCR__PAGE_TIMEOUT_SECONDS): the file "
                                 "is damaged or built to exhaust readers; re-scan it, or raise the limit") from None
            continue
        finally:
            if progress:
                progress(done, total)
        if page.words == 0:
            blank += 1
        elif page.confidence < options.min_confidence:
            low.append(f"{label} ({page.confidence:.0f})")
        else:
            if page.rotated:
                turned.append(f"{label} ({page.rotated}°)")
            kept.append(Page(number, budget.take(page.text), page.confidence))
            confidences.append(page.confidence)
    seconds = time.perf_counter() - started
    notes = []
    if kept:
        what = "the image" if total == 1 and kept[0].number is None else f"{len(kept)} page(s)"
        notes.append(f"{what} read by OCR at {total / max(seconds, 1e-6):.2f} pages/s (confidence mean "
                     f"{sum(confidences) / len(confidences):.0f}, lowest {min(confidences):.0f} of 100)")
    if low:
        notes.append(f"not ingested, OCR confidence below the floor of {options.min_confidence:g} "
                     f"(ocr.min_confidence): {_pages(low)}; re-scan at 300 dpi, straight and well lit, or type it in")
    if timed_out:
        notes.append(f"not ingested, reading took longer than {options.page_timeout_seconds:g} s "
                     f"(ocr.page_timeout_seconds): {_pages(timed_out)}")
    if turned:
        notes.append(f"turned upright before reading: {_pages(turned)}")
    if blank:
        notes.append(f"{blank} page(s) {NO_WORDS} (blank, a picture, or too noisy to read)")
    return kept, notes


def _pages(labels: list[str]) -> str:
    shown = ", ".join(labels[:12]) + (f" and {len(labels) - 12} more" if len(labels) > 12 else "")
    return ("page " if len(labels) == 1 and labels[0][0].isdigit() else "pages " if labels[0][0].isdigit() else "") + shown


def _check_page_count(count: int, options: OcrOptions) -> None:
    if count > options.max_pages:
        raise InputError(f"it has {count:,} pages to read by OCR, more than {options.max_pages:,} (ocr.max_pages_per_file, "
                         "env NEOC_OCR__MAX_PAGES_PER_FILE); split it, or raise the limit (OCR reads about one page a second)")


def _with_dpi(options: OcrOptions, dpi: int) -> OcrOptions:
    from dataclasses import replace

    return options if dpi == options.dpi else replace(options, dpi=dpi)
