"""Turn one file into text pages, whatever its format.

Headings found in DOCX and HTML are rewritten as Markdown ``#`` lines so that
one heading-aware splitter (``chunking.py``) serves every format. Each loader
raises ``InputError`` with a message that says how to fix the file; the
ingest pipeline records it and moves on to the next file. Each loader counts
the text it extracts against the file's ``TextBudget`` and stops at the cap;
junk lines (base64, hex) are dropped before chunking (``limits.py``). A
zip-based file is measured unpacked before its loader runs (``packages.py``).
The ingest runs all of this in a child process with a memory ceiling
(``isolation.py``); nothing here assumes it.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Callable, Protocol

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.document import LoadedDocument, Page, title_from_text
from neoc_assistant.ingest.limits import BYTES_PER_CHAR_MAX, MARKUP_PER_CHAR, UNFILTERED_TYPES, TextBudget, drop_junk
from neoc_assistant.ingest.ocr import OcrOptions, Progress
from neoc_assistant.ingest.packages import DEFAULT_LIMITS, PackageLimits, check_package
from neoc_assistant.ingest.slides import load_pptx
from neoc_assistant.ingest.tables import load_ods, load_xlsx
from neoc_assistant.ingest.scans import NO_WORDS, load_image, scan_title, ocr_pdf_pages, render_dpi, scanned_pages


def load_document(path: Path, data: bytes, max_chars: int | None = None,
                  package: PackageLimits = DEFAULT_LIMITS, *, ocr: OcrOptions | None = None,
                  progress: Progress | None = None) -> LoadedDocument:
    """Load ``data`` (the bytes of ``path``) with the loader for its suffix; more than ``max_chars``
    characters of text fail the file as soon as the loader has extracted them, a zip-based file
    whose parts unpack beyond ``package`` fails before it is parsed. Scanned pages are read by OCR
    only when ``ocr`` is given (the ingest's parse worker does; OCR is slow and runs programs), with
    ``progress(pages done, pages to do)`` after each page."""
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise InputError(f"unsupported file type '{suffix or '(none)'}'")
    if not data.strip():
        raise InputError("file is empty")
    if suffix in PACKAGE_SUFFIXES:
        check_package(data, package, PACKAGE_SUFFIXES[suffix])
    ocr_loader = OCR_LOADERS.get(suffix)
    if ocr_loader is not None:
        doc = ocr_loader(path, data, TextBudget(max_chars), ocr=ocr, progress=progress)
    else:
        doc = loader(path, data, TextBudget(max_chars))
    if not any(p.text.strip() for p in doc.pages):
        raise InputError("no text could be extracted")
    if doc.doc_type not in UNFILTERED_TYPES:
        dropped = 0
        for page in doc.pages:
            page.text, n = drop_junk(page.text)
            dropped += n
        if dropped:
            doc.notes.append(f"{dropped} line(s) of encoded data (base64, hex or unbroken runs) skipped")
        if not any(p.text.strip() for p in doc.pages):
            raise InputError("the file holds only encoded data (base64, hex or unbroken runs), no readable text")
    return doc


def _decode_within(data: bytes, budget: TextBudget) -> tuple[str, str | None]:
    """``decode_text``, refusing bytes that cannot fit the budget before decoding them."""
    budget.check_raw(len(data), "the file", BYTES_PER_CHAR_MAX)
    text, note = decode_text(data)
    return budget.take(text), note


# -- text decoding --------------------------------------------------------------

def decode_text(data: bytes) -> tuple[str, str | None]:
    """Decode bytes of unknown encoding; returns (text, note or None when UTF-8)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "decoded as UTF-16"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is not None and best.encoding and not _single_byte_western_guess(best.encoding):
        return str(best), f"not UTF-8; decoded as {best.encoding}"
    # Short legacy texts fool detectors among the 8-bit code pages; Windows-1252 is by far the
    # most common of them, so it wins whenever it decodes cleanly.
    try:
        return data.decode("cp1252"), "not UTF-8; decoded as cp1252"
    except UnicodeDecodeError:
        pass
    if best is not None and best.encoding:
        return str(best), f"not UTF-8; decoded as {best.encoding}"
    return data.decode("cp1252", errors="replace"), "not UTF-8; decoded as cp1252 with replacements"


def _single_byte_western_guess(encoding: str) -> bool:
    name = encoding.lower().replace("-", "_")
    return name.startswith(("cp125", "windows_125", "latin", "iso8859", "mac_")) or name in {"cp850", "cp437"}


_title_from_text = title_from_text


# -- loaders -----------------------------------------------------------------

def load_pdf(path: Path, data: bytes, budget: TextBudget, *, ocr: OcrOptions | None = None,
             progress: Progress | None = None) -> LoadedDocument:
    """Text pages as text; pages that are images read by OCR when ``ocr`` is given (``scans.py``)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (NotImplementedError, ImportError) as exc:
                raise InputError(f"encrypted PDF needs the 'cryptography' package ({exc})") from exc
            if not ok:
                raise InputError(
                    "PDF is password-protected; save an unprotected copy (e.g. `qpdf --decrypt in.pdf out.pdf`) and ingest that"
                )
        pages, unreadable = [], []
        for number, page in enumerate(reader.pages, start=1):
            try:
                text = page.extract_text() or ""
            except Exception as exc:  # noqa: BLE001 - one bad page must not lose the rest
                text = ""
                unreadable.append((number, exc))
            pages.append(Page(number, budget.take(_clean_pdf_text(text))))
        notes: list[str] = []
        scanned = scanned_pages(reader, pages, {n for n, _ in unreadable}) if ocr is not None else []
        if scanned:
            dpis = {n: render_dpi(reader.pages[n - 1], ocr) for n in scanned}
            read, notes = ocr_pdf_pages(data, scanned, dpis, ocr, budget, progress)
            pages = [read.get(p.number, p) for p in pages]
        meta_title = ""
        try:
            meta_title = (reader.metadata.title or "") if reader.metadata else ""
        except Exception:  # noqa: BLE001
            meta_title = ""
    except InputError:
        raise
    except FileNotDecryptedError as exc:
        raise InputError(f"PDF could not be decrypted: {exc}") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InputError(f"not a readable PDF (corrupt or truncated?): {exc}") from exc
    if not any(p.text.strip() for p in pages):
        if scanned and all(NO_WORDS in n for n in notes):
            raise InputError(f"PDF has no text layer and OCR found no words on its {len(scanned)} page(s): blank, "
                             "or drawings only")
        if scanned:
            raise InputError("no page of this scanned PDF could be read reliably by OCR: " + "; ".join(notes))
        if unreadable:
            raise InputError(f"no text could be read from this PDF: {_unreadable_pages(unreadable, len(pages))}. "
                             "It is damaged or built to exhaust readers, not a scan; re-create it from its "
                             "source, or rewrite it (`qpdf in.pdf out.pdf`) and ingest that")
        raise InputError("PDF has no extractable text (a scan?); `ingest` reads scanned pages by OCR")
    first = next((p for p in pages if p.text.strip()), Page(None, ""))
    title = meta_title.strip() or (scan_title(first.text, path) if first.ocr_confidence is not None
                                   else _title_from_text(first.text, path))
    if unreadable:
        notes.insert(0, f"{_unreadable_pages(unreadable, len(pages))}; the rest was ingested")
    return LoadedDocument(title=title, doc_type="pdf", pages=pages, notes=notes)


def _unreadable_pages(unreadable: list[tuple[int, Exception]], total: int) -> str:
    """What went wrong on the pages the reader gave up on, first page first."""
    number, exc = unreadable[0]
    pages = "every page" if len(unreadable) == total else f"{len(unreadable)} of {total} pages"
    return f"the PDF reader gave up on {pages} (page {number}: {_pdf_failure(exc).rstrip('. ')})"


def _pdf_failure(exc: Exception) -> str:
    from pypdf.errors import LimitReachedError

    if isinstance(exc, RecursionError):
        return "its content nests arrays or dictionaries too deeply to be read"
    if isinstance(exc, LimitReachedError):
        return f"pypdf's safety limit was reached: {exc}"
    if isinstance(exc, MemoryError):
        return "it needs more memory than reading one file may take"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _clean_pdf_text(text: str) -> str:
    text = text.replace("\x00", "")
    text = re.sub(r"-\n(?=[a-z])", "", text)  # re-join hyphenated line breaks
    text = re.sub(r"[ \t]+", " ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_docx(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    budget.check_member(data, "word/document.xml")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise InputError(f"not a readable DOCX (corrupt, or an old .doc renamed?): {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - zipfile.BadZipFile and friends
        raise InputError(f"not a readable DOCX: {exc}") from exc
    lines: list[str] = []
    title = (document.core_properties.title or "").strip()
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(block, document)
            text = para.text.strip()
            if not text:
                continue
            style = (para.style.name if para.style is not None else "") or ""
            level = _heading_level(style)
            if level:
                lines.append(budget.take("#" * level + " " + text))
                title = title or text
            else:
                lines.append(budget.take(text))
        elif tag == "tbl":
            table = Table(block, document)
            for row in table.rows:
                cells = [c.text.strip() for c in row.cells]
                lines.append(budget.take(" | ".join(cells)))
    text = "\n\n".join(lines)
    return LoadedDocument(title=title or _title_from_text(text, path), doc_type="docx", pages=[Page(None, text)])


def _heading_level(style_name: str) -> int:
    if style_name == "Title":
        return 1
    match = re.match(r"Heading (\d)", style_name)
    return min(int(match.group(1)), 6) if match else 0


def load_html(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    from bs4 import BeautifulSoup

    budget.check_raw(len(data), "the page", MARKUP_PER_CHAR)
    text, note = decode_text(data)
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "nav", "footer", "header"]):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for item in soup.find_all("li"):
        item.insert_before("\n- ")
    for block in soup.find_all(["p", "div", "br", "tr", "table", "section", "article"]):
        block.insert_after("\n")
    body = budget.take(re.sub(r"\n\s*\n+", "\n\n", soup.get_text()).strip())
    title = soup.title.get_text(strip=True) if soup.title else ""
    return LoadedDocument(
        title=title or _title_from_text(body, path), doc_type="html", pages=[Page(None, body)], notes=[note] if note else []
    )


def load_markdown(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    text, note = _decode_within(data, budget)
    return LoadedDocument(
        title=_title_from_text(text, path), doc_type="md", pages=[Page(None, text)], notes=[note] if note else []
    )


def load_text(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    text, note = _decode_within(data, budget)
    notes = [note] if note else []
    # A few stray NULs (seen as bullet characters in exported manuals) are noise;
    # many control characters mean this is not a text file at all.
    controls = sum(1 for ch in text if ch < " " and ch not in "\t\n\r\f\v")
    if controls > 0.01 * len(text):
        raise InputError("looks like a binary file, not text (many control bytes)")
    nuls = text.count("\x00")
    if nuls:
        text = text.replace("\x00", "•")
        notes.append(f"{nuls} NUL bytes read as bullets")
    return LoadedDocument(title=_title_from_text(text, path), doc_type="txt", pages=[Page(None, text)], notes=notes)


def load_csv(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    """One line per row, ``column: value`` pairs, so each row reads as a sentence."""
    text, note = _decode_within(data, budget)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError("CSV has no rows")
    header, body = rows[0], rows[1:]
    lines = [f"# {path.stem.replace('_', ' ')}", "Columns: " + ", ".join(header)]
    for row in body:
        pairs = [f"{h.strip()}: {v.strip()}" for h, v in zip(header, row) if v.strip()]
        lines.append("; ".join(pairs))
    return LoadedDocument(
        title=path.stem.replace("_", " "), doc_type="csv", pages=[Page(None, "\n".join(lines))], notes=[note] if note else []
    )


# Zip-based formats, by suffix, with the name a message calls them: measured unpacked first (packages.py).
PACKAGE_SUFFIXES: dict[str, str] = {".docx": "DOCX", ".xlsx": "XLSX", ".ods": "ODS", ".pptx": "PPTX"}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})

Loader = Callable[[Path, bytes, TextBudget], LoadedDocument]


class OcrLoader(Protocol):
    """A loader that may read pages by OCR: it also takes the ``ocr`` options and a progress callback."""

    def __call__(self, path: Path, data: bytes, budget: TextBudget, *, ocr: OcrOptions | None = None,
                 progress: Progress | None = None) -> LoadedDocument: ...


# Formats whose loader may read pages by OCR, called with the ``ocr`` options and ``progress``.
OCR_LOADERS: dict[str, OcrLoader] = {".pdf": load_pdf, **{suffix: load_image for suffix in IMAGE_SUFFIXES}}
OCR_SUFFIXES = frozenset(OCR_LOADERS)

LOADERS: dict[str, Loader] = {
    **OCR_LOADERS,
    ".docx": load_docx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".csv": load_csv,
    ".xlsx": load_xlsx,
    ".ods": load_ods,
    ".pptx": load_pptx,
}

SUPPORTED_SUFFIXES = frozenset(LOADERS)
