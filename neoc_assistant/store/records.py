"""The rows of the manifest as values: what a file, a chunk and a document are to the rest of the code."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileRecord:
    source: str
    root: str
    abs_path: str
    size: int
    mtime_ns: int
    doc_hash: str
    ingested_at: float


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: str
    doc_hash: str
    chunk_index: int
    page: int | None
    section: str
    text: str
    content_hash: str
    ocr_confidence: float | None = None  # 0-100 when its page was read by OCR (ingest/ocr.py)


@dataclass(frozen=True)
class DocumentInfo:
    doc_hash: str
    title: str
    doc_type: str
    n_pages: int
    n_chunks: int
    ingested_at: float
    sources: tuple[str, ...]
    version: str = ""  # "current (Rev. 2, 2024-03-15)" | "superseded by new.md (...)" | "" (no revisions known)
