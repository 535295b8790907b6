"""Text from page images: scanned PDF pages and photos, read with Debian's Tesseract.

Why these tools: ``pdftoppm`` (poppler-utils) renders a page exactly as a
viewer shows it, whatever mix of images and vector art it holds, and
Tesseract's TSV output gives the words, their lines and a confidence per word
in one run, so a page costs one render and one recognition. ``ocrmypdf`` does
the same work and more (it writes a new PDF), measured slower per page for
the same text (README, "OCR"; ``scripts/bench_ocr.py``).

What a page yields: its text (lines and paragraphs as Tesseract found them)
and a confidence, the mean of its words' confidences weighted by their
length (0-100). A page below ``ocr.min_confidence`` (70) is reported and left
out. Measured (a typed page degraded by blur, low resolution and noise; share
of its words read right): confidence 88-96 -> 95-100 % of the words, 76-79 ->
81-85 %, 64-68 -> 60-63 %, 48-52 -> 35-40 %, 37 and below -> none; clean FEMA
pages at 75-300 dpi read at 87-96. So at 70 a page kept has at least about
four words in five right, and one with two in five wrong is reported instead
of indexed. Noise and photos without writing yield no words at all.
A page read upside down or sideways has a low confidence too: it is turned
the way Tesseract's orientation detection says and read once more.

Both programs run as child processes of the (memory-capped) parse worker, so
they inherit its memory ceiling, and each is killed after
``ocr.page_timeout_seconds``. Nothing here touches the network.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neoc_assistant.errors import InputError

APT_PACKAGES = "tesseract-ocr tesseract-ocr-eng tesseract-ocr-nep poppler-utils"
INSTALL_HINT = f"install it with `apt-get install {APT_PACKAGES}` (as root; `make setup` does it), then ingest again"
# Orientation detection is trusted only this sure of itself (Tesseract's own scale; 2 is its usual cut-off).
MIN_ORIENTATION_CONFIDENCE = 2.0
# Pillow refuses images over this many pixels: 13,000 x 13,000, an A0 poster at 300 dpi. A photo is 12-50 Mpx.
MAX_IMAGE_PIXELS = 170_000_000

Progress = Callable[[int, int], None]  # (pages done, pages to do)
# Tesseract reads a list's bullet as a lone "e" (212 lines on 97 scanned FEMA pages, scripts/eval_scanned.py),
# a square one as "=" (66), a hollow one as "o" (9), or as "©", "«", "°", "¢": a line starting with one of
# these alone and then an item's first word is a list item (English has no such word there).
_MISREAD_BULLET = re.compile(r"(?m)^(?:e|=|o|©|«|°|¢)[ ]+(?=[A-Z0-9\"'(])")
# A word broken at a line's end, re-joined as a PDF's text layer is (loaders._clean_pdf_text's rule).
_BROKEN_WORD = re.compile(r"-\n(?=[a-z])")


@dataclass(frozen=True)
class OcrOptions:
    """What the ``ocr`` settings section gives the parse worker (plain values: it crosses a process)."""

    enabled: bool = True
    languages: str = "eng"
    dpi: int = 200
    min_confidence: float = 70.0
    page_timeout_seconds: float = 60.0
    max_pages: int = 500


DEFAULT_OCR = OcrOptions()


@dataclass(frozen=True)
class OcrPage:
    text: str
    confidence: float  # 0-100, length-weighted mean over words; 0 when no word was found
    words: int
    rotated: int = 0  # degrees the image was turned before it was read


def check_tools(options: OcrOptions, *, pdf: bool) -> None:
    """Fail the file at once, saying what to install, when OCR cannot run here."""
    if not options.enabled:
        raise InputError("its pages are images and OCR is switched off (ocr.enabled, env NEOC_OCR__ENABLED); "
                         "switch it on to read them")
    if shutil.which("tesseract") is None:
        raise InputError(f"its pages are images, so it needs OCR, but Tesseract is not installed: {INSTALL_HINT}")
    if pdf and shutil.which("pdftoppm") is None:
        raise InputError(f"its pages are images and rendering them needs pdftoppm (poppler-utils), which is not "
                         f"installed: {INSTALL_HINT}")
    missing = [lang for lang in options.languages.split("+") if lang and lang not in installed_languages()]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        raise InputError(f"OCR language data for {', '.join(missing)} (ocr.languages) is not installed: install "
                         f"it with `apt-get install {packages}`, or set ocr.languages to installed ones "
                         f"({'+'.join(sorted(installed_languages())) or 'none'})")


_languages: frozenset[str] | None = None


def installed_languages() -> frozenset[str]:
    global _languages
    if _languages is None:
        try:
            out = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        _languages = frozenset(line.strip() for line in out.splitlines()[1:] if line.strip())
    return _languages


def render_pdf_page(source: bytes | Path, number: int, options: OcrOptions):
    """Page ``number`` (1-based) of a PDF (its bytes, or a file: a long scan is written once, not piped
    whole for every page) as a grayscale Pillow image at ``options.dpi``."""
    from PIL import Image

    stdin = None if isinstance(source, Path) else source
    args = ["pdftoppm", "-f", str(number), "-l", str(number), "-r", str(options.dpi), "-gray",
            "-" if stdin is not None else str(source)]
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, timeout=options.page_timeout_seconds)
    except subprocess.TimeoutExpired:
        raise _page_timeout(number, "rendering", options) from None
    if done.returncode != 0 or not done.stdout:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no image"]
        raise InputError(f"page {number} could not be rendered for OCR (pdftoppm: {said[0][:200]})")
    return Image.open(io.BytesIO(done.stdout))


def read_image(image, options: OcrOptions, number: int | None = None) -> OcrPage:
    """OCR one page image; a low-confidence page is turned as orientation detection says and read again."""
    page = _recognise(image, options, number)
    if page.confidence >= options.min_confidence or page.words == 0:  # no word at all: a blank page or a drawing
        return page
    angle = _orientation(image, options, number)
    if angle:
        turned = _recognise(image.rotate(-angle, expand=True), options, number)
        if turned.confidence > page.confidence:
            return OcrPage(turned.text, turned.confidence, turned.words, angle)
    return page


def _recognise(image, options: OcrOptions, number: int | None) -> OcrPage:
    import pytesseract

    try:
        data = pytesseract.image_to_data(image, lang=options.languages, config="--psm 3", timeout=options.page_timeout_seconds,
                                         output_type=pytesseract.Output.DICT)
    except RuntimeError as exc:  # pytesseract's way of saying its timeout killed tesseract
        if "timeout" in str(exc).lower():
            raise _page_timeout(number, "OCR", options) from None
        raise InputError(f"{_where(number)}: Tesseract failed ({str(exc)[:200]})") from exc
    except pytesseract.TesseractNotFoundError:
        raise InputError(f"it needs OCR, but Tesseract is not installed: {INSTALL_HINT}") from None
    except pytesseract.TesseractError as exc:
        raise InputError(f"{_where(number)}: Tesseract failed ({str(exc.message)[:200]})") from exc
    return _page_from_tsv(data)


def _page_from_tsv(data: dict) -> OcrPage:
    """Text rebuilt from Tesseract's words: words of a line joined by spaces, paragraphs by a blank line."""
    # Each paragraph: its (block, paragraph) numbers and its lines, each line a list of words.
    paragraphs: list[tuple[tuple[int, int], list[list[str]]]] = []
    lines: dict[tuple[int, int, int], list[str]] = {}
    weight = score = 0.0
    words = 0
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        if key not in lines:
            if not paragraphs or key[:2] != paragraphs[-1][0]:
                paragraphs.append((key[:2], []))
            lines[key] = []
            paragraphs[-1][1].append(lines[key])
        lines[key].append(word)
        words += 1
        weight += len(word)
        score += conf * len(word)
    text = "\n\n".join("\n".join(" ".join(line) for line in par_lines) for _, par_lines in paragraphs)
    return OcrPage(tidy(text), round(score / weight, 1) if weight else 0.0, words)


def tidy(text: str) -> str:
    """OCR text written as a text layer would be: bullets as bullets, broken words whole, so a scanned
    page and its PDF give the same words to search (a "e" per list item, "evacua- tion" for evacuation)."""
    return _BROKEN_WORD.sub("", _MISREAD_BULLET.sub("• ", text))


def _orientation(image, options: OcrOptions, number: int | None) -> int:
    """Degrees clockwise the page is turned (0, 90, 180, 270) when Tesseract is sure, else 0."""
    import pytesseract

    if "osd" not in installed_languages():
        return 0
    try:
        osd = pytesseract.image_to_osd(image, timeout=options.page_timeout_seconds, output_type=pytesseract.Output.DICT)
    except (RuntimeError, pytesseract.TesseractError):
        return 0  # too little text to tell: the page keeps its first reading
    if float(osd.get("orientation_conf", 0)) < MIN_ORIENTATION_CONFIDENCE:
        return 0
    return int(osd.get("rotate", 0)) % 360


def open_image_frames(data: bytes):
    """The frames of an image file (a TIFF may hold many pages), each upright as its camera meant it."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        frames = getattr(image, "n_frames", 1)
        for index in range(frames):
            image.seek(index)
            frame = ImageOps.exif_transpose(image.copy())
            yield frame.convert("L") if frame.mode not in ("L", "RGB") else frame
    except Image.DecompressionBombError as exc:
        raise InputError(f"the image is larger than {MAX_IMAGE_PIXELS:,} pixels ({exc}); scale it down or "
                         "scan it at 300 dpi, and ingest that") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"not a readable image (corrupt, or another format under this name?): {exc}") from None


def _where(number: int | None) -> str:
    return f"page {number}" if number is not None else "the image"


def _page_timeout(number: int | None, step: str, options: OcrOptions) -> InputError:
    return InputError(f"{step} {_where(number)} took longer than {options.page_timeout_seconds:g} s (the limit "
                      "ocr.page_timeout_seconds, env NEOC_OCR__PAGE_TIMEOUT_SECONDS): the page is damaged or far "
                      "larger than a scan; re-scan it at 300 dpi, or raise the limit")

