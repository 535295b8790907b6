"""Chunk vectors in an embedded, persistent Chroma collection (cosine HNSW, parameters from settings).

The ``VectorStore`` of ``store.vector_backend = "chroma"``. Only vectors and
the minimum metadata for filtering live here; texts and the authoritative
list of live chunks live in the manifest (``manifest.py``). Chroma is never
given an embedding function: vectors always come from ``Embedder``, so Chroma
never tries to download its default model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from neoc_assistant import runtime
from neoc_assistant.errors import StoreError
from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.vector_store import VectorHit


class ChromaVectorStore:
    """Opens the collection on first use, so building one touches no disk."""

    def __init__(self, settings: StoreSettings, directory: Path):
        self._settings = settings
        self._directory = Path(directory)
        self._client = None
        self._collection = None
        self._lock = threading.Lock()

    @property
    def collection(self):
        if self._collection is None:
            with self._lock:
                if self._collection is None:
                    self._collection = self._open()
        return self._collection

    def _make_client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self._directory.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(self._directory),
                                         settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))

    def _open(self):
        runtime.configure_process()
        s = self._settings
        try:
            self._client = self._make_client()
            collection = self._client.get_or_create_collection(
                name=s.collection_name,
                embedding_function=None,
                configuration={
                    "hnsw": {
                        "space": "cosine",
                        "max_neighbors": s.hnsw_m,
                        "ef_construction": s.hnsw_ef_construction,
                        "ef_search": s.hnsw_ef_search,
                    }
                },
            )
        except OSError as exc:
            raise StoreError(f"Cannot open the vector store at {self._directory}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - chromadb raises assorted internal errors
            raise StoreError(
                f"The vector store at {self._directory} could not be opened ({type(exc).__name__}: {exc}). "
                "If it is corrupt, move the data directory aside and re-run `ingest`."
            ) from exc
        return collection

    def hnsw_configuration(self) -> dict:
        config = self.collection.configuration
        hnsw = config.get("hnsw") if isinstance(config, dict) else None
        return dict(hnsw or {})

    def count(self) -> int:
        return self.collection.count()

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, doc_hash: str, pages: Sequence[int | None]) -> None:
        if not ids:
            return
        batch = max(1, self._client.get_max_batch_size() if self._client else 1000)
        metadatas = [{"doc_hash": doc_hash, "page": -1 if p is None else int(p)} for p in pages]
        for start in range(0, len(ids), batch):
            stop = start + batch
            self.collection.upsert(
                ids=list(ids[start:stop]), embeddings=vectors[start:stop], metadatas=metadatas[start:stop]
            )

    def delete_documents(self, doc_hashes: Sequence[str]) -> None:
        for doc_hash in doc_hashes:
            self.collection.delete(where={"doc_hash": doc_hash})

    def query(self, vector: np.ndarray, n: int, doc_hashes: Sequence[str] | None = None) -> list[VectorHit]:
        """Approximate nearest chunks; ``doc_hashes`` restricts to those documents."""
        total = self.count()
        if total == 0 or n <= 0:
            return []
        where = None
        if doc_hashes is not None:
            if not doc_hashes:
                return []
            where = {"doc_hash": {"$in": list(doc_hashes)}}
        result = self.collection.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(n, total),
            where=where,
            include=["distances"],
        )
        ids = result["ids"][0]
        distances = result["distances"][0]
        return [VectorHit(cid, 1.0 - float(d)) for cid, d in zip(ids, distances)]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        got = self.collection.get(ids=list(ids), include=["embeddings"])
        return {cid: np.asarray(vec, dtype=np.float32) for cid, vec in zip(got["ids"], got["embeddings"])}
