"""What ingest and retrieval need from a vector store (the implementation is picked in ``factory.py``).

``store.vector_backend`` names the implementation (PrivateGPT-style):
``"chroma"`` (an embedded store under ``paths.data_dir``, the laptop default)
or ``"chroma-server"`` (a Chroma server shared by several instances,
``chroma_server.py``; the manifest then follows it, ``replica.py``). Another
database is added by writing a class with these methods and one more
``case`` in ``factory.open_vector_store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


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
