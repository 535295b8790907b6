"""What a loader makes of a file: a title, a type and its text page by page (``loaders.py`` and the
format modules beside it fill these; ``chunking.py`` reads them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Page:
    number: int | None  # 1-based page (PDF, TIFF) or slide (PPTX); None for formats without pages
    text: str
    ocr_confidence: float | None = None  # 0-100 when the text was read by OCR (ocr.py), else None


@dataclass
class LoadedDocument:
    title: str
    doc_type: str  # "pdf", "docx", "html", "md", "txt", "csv", "image", "xlsx", "ods", "pptx"
    pages: list[Page]
    notes: list[str] = field(default_factory=list)  # e.g. "decoded as cp1252"


def title_from_text(text: str, path: Path) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return path.stem
