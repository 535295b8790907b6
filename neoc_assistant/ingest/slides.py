"""Slide decks (PPTX): one page per slide, numbered, each under its own title.

Why a page per slide: a briefing deck's slides are separate topics, and the
officer is pointed to "slide 7" the way a PDF answer points to a page. The
slide's title becomes its heading, so every chunk of it starts with the title
(a body of bullets means little without it); a slide without a title is
headed "Slide N". Bullets keep their nesting as list items, tables are read
row by row with their column names (``tables.SEPARATOR``), grouped shapes are
read inside, and the speaker notes follow under "Notes:". Pictures are not
read (a deck's photos are rarely its text).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.document import LoadedDocument, Page
from neoc_assistant.ingest.limits import MARKUP_PER_CHAR, TextBudget
from neoc_assistant.ingest.tables import SEPARATOR

# Shapes nested in groups deeper than this are not read (real decks nest two or three).
MAX_GROUP_DEPTH = 8


def load_pptx(path: Path, data: bytes, budget: TextBudget) -> LoadedDocument:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError

    _check_slides_size(data, budget)
    try:
        deck = Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InputError(f"not a readable PPTX (corrupt, or an old .ppt renamed? save it as .pptx): {exc}") from exc
    pages = []
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and title_shape.has_text_frame else ""
        title_id = title_shape.shape_id if title_shape is not None else None  # (each lookup is a new proxy)
        lines = [line for shape in slide.shapes if shape.shape_id != title_id for line in _shape_lines(shape, 0)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = " ".join(slide.notes_slide.notes_text_frame.text.split())
            if notes:
                lines.append(f"Notes: {notes}")
        if not title and not lines:
            continue
        heading = (title or f"Slide {number}").lstrip("#").strip()
        body = "\n".join(budget.take(line) for line in lines)
        pages.append(Page(number, f"# {heading}\n\n{body}".strip()))
    if not pages:
        raise InputError("the PPTX has no text on its slides (pictures only?)")
    deck_title = (deck.core_properties.title or "").strip()
    first = pages[0].text.splitlines()[0].lstrip("# ").strip()
    return LoadedDocument(title=deck_title or first or path.stem, doc_type="pptx", pages=pages)


def _shape_lines(shape, depth: int) -> list[str]:
    if depth > MAX_GROUP_DEPTH:
        return []
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        return [line for inner in shape.shapes for line in _shape_lines(inner, depth + 1)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return _table_lines(shape.table)
    if not getattr(shape, "has_text_frame", False) or not shape.has_text_frame:
        return []
    lines = []
    for paragraph in shape.text_frame.paragraphs:
        text = " ".join(paragraph.text.split())
        if text:
            marker = "  " * min(paragraph.level, 4) + "- " if len(shape.text_frame.paragraphs) > 1 else ""
            lines.append(marker + text.lstrip("#"))
    return lines


def _table_lines(table) -> list[str]:
    rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
    rows = [r for r in rows if any(r)]
    if len(rows) < 2:
        return [SEPARATOR.join(c for c in r if c) for r in rows]
    header = rows[0]
    out = [""]
    for row in rows[1:]:
        out.append(SEPARATOR.join(f"{h}: {v}" if h else v for h, v in zip(header, row) if v))
        out.append("")
    return out


def _check_slides_size(data: bytes, budget: TextBudget) -> None:
    """python-pptx parses each slide's XML whole: slides far larger than any text they could hold are refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            size = sum(m.file_size for m in package.infolist() if m.filename.startswith("ppt/slides/"))
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    budget.check_raw(size, "its slides' XML", MARKUP_PER_CHAR)
