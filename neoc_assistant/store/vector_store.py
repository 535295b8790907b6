"""What ingest and retrieval need from a vector store, and the one place that picks the implementation.

``store.vector_backend`` names the implementation (PrivateGPT-style):
``"chroma"`` (an embedded store under ``paths.data_dir``, the laptop default)
or ``"chroma-server"`` (a Chroma server shared by several instances,
``chroma_server.py``; the manifest then follows it, ``replica.py``). Another
database is added by writing a class with these methods and one more
``case`` in ``open_vector_store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from neoc_assistant.settings import StoreSettings


@dataclass(frozen=True)
class VectorHit:
    chunk_id: str
    similarity: float  # cosine similarity, 1 = identical direction


class VectorStore(Protocol):
    def count(self) -> int: ...

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, doc_hash: str, pages: Sequence[int | None]) -> None: ...

    def delete_documents(self, doc_hashes: Sequence[str]) -> None: ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def close(self) -> None: ...

    def query(self, vector: np.ndarray, n: int, doc_hashes: Sequence[str] | None = None) -> list[VectorHit]:
        """Approximate nearest chunks, best first; ``doc_hashes`` restricts to those documents."""
        ...

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...

    def ids(self) -> set[str]:
        """Every stored chunk id (drift check against the manifest)."""
        ...

    def refresh(self, kb_version: str) -> None:
        """Called before every search and ingest with the knowledge-base version the caller reads:
        from then on reads must include every write up to it, whichever process made them
        (a store that other processes share live, e.g. a server, can do nothing)."""
        ...

    def note_written(self, kb_version: str) -> None:
        """This process's own writes produced ``kb_version`` (no reload needed to see them)."""
        ...


def open_vector_store(settings: StoreSettings, chroma_dir: Path) -> VectorStore:
    """The store ``settings.vector_backend`` names (opened lazily: building it touches no disk)."""
    match settings.vector_backend:
        case "chroma":
            from neoc_assistant.store.chroma_store import ChromaVectorStore

            return ChromaVectorStore(settings, chroma_dir)
        case "chroma-server":
            from neoc_assistant.store.chroma_server import ChromaServerStore

            return ChromaServerStore(settings, settings.chroma_url)
    raise ValueError(f"unknown store.vector_backend {settings.vector_backend!r}")  # pragma: no cover - Literal
