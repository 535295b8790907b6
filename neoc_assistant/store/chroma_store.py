"""Chunk vectors in an embedded, persistent Chroma collection (cosine HNSW, parameters from settings).

The ``VectorStore`` of ``store.vector_backend = "chroma"``. Only vectors and
the minimum metadata for filtering live here; texts and the authoritative
list of live chunks live in the manifest (``manifest.py``). Chroma is never
given an embedding function: vectors always come from ``Embedder``, so Chroma
never tries to download its default model.

**Several processes.** An embedded Chroma client keeps its vector index in
memory and never notices another process's writes: a server would miss
documents a CLI ``ingest`` added, and fail with "Error finding id" when asked
for their vectors. So the store is told the knowledge-base version its
caller reads (``refresh``, before every search and every ingest): when it
moved, the client is closed and the collection reopened from disk. Calls in
flight hold a read lock, so a reopen waits for them and never pulls the
client from under a query. Should a version still slip between a refresh and
a read, the read reopens once and retries; if that fails too it returns
nothing rather than an error (the search then rests on BM25 for that request).

**Read-only data directory.** Chroma cannot open a store it may not write
(it writes to its SQLite file on open, whatever its settings), yet a
read-only data directory must still answer questions. So when this process
cannot write the store, the client opens a private copy in a temporary
folder, removed when the client closes (and copied afresh when the
knowledge-base version moves); every write is refused with the read-only
message.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import fasteners
import numpy as np

from neoc_assistant import runtime
from neoc_assistant.errors import StoreError
from neoc_assistant.lazy import build_once
from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.database import read_only_message, writable
from neoc_assistant.store.vector_store import VectorHit

log = logging.getLogger(__name__)


class ChromaVectorStore:
    """Opens the collection on first use, so building one touches no disk."""

    def __init__(self, settings: StoreSettings, directory: Path):
        self._settings = settings
        self._directory = Path(directory)
        self._client = None
        self._collection = None
        self._lock = threading.Lock()
        self._gate = fasteners.ReaderWriterLock()  # readers: calls in flight; writer: a reopen
        self._version: str | None = None  # knowledge-base version the open collection is known to hold
        self._snapshot: Path | None = None  # the private copy opened instead of a read-only store

    @property
    def collection(self):
        return build_once(self, "_collection", self._lock, self._open)

    @contextmanager
    def _using(self) -> Iterator:
        with self._gate.read_lock():
            yield self.collection

    def refresh(self, kb_version: str) -> None:
        """Make reads see every write up to ``kb_version`` (reopen if another process wrote since)."""
        if kb_version == self._version:
            return
        with self._gate.write_lock():
            if kb_version == self._version:
                return
            if self._collection is not None:
                log.info("knowledge base changed to %s: reopening the vector store", kb_version)
                self._close()
            self._version = kb_version

    def note_written(self, kb_version: str) -> None:
        """This process made ``kb_version`` through this client: its index already holds it."""
        self._version = kb_version

    def close(self) -> None:
        """Release the client (Chroma shares one system per path inside a process until the last close)."""
        with self._gate.write_lock():
            self._close()

    def _close(self) -> None:
        client, self._client, self._collection = self._client, None, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing a stale client must not fail a request
                log.warning("closing the vector store client failed: %s", exc)
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)

    def _retrying(self, call, fallback):
        """``call(collection)``; on a Chroma error (a write landed after the last refresh) reopen once
        and retry; then give up quietly with ``fallback``."""
        for attempt in (1, 2):
            try:
                with self._using() as collection:
                    return call(collection)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - chromadb InternalError and friends
                if attempt == 2:
                    log.warning("vector store read failed after a reopen (%s); continuing without it", exc)
                    return fallback
                with self._gate.write_lock():
                    self._close()
        return fallback  # pragma: no cover

    def _make_client(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        path = self._directory
        if path.exists() and not writable(path / "chroma.sqlite3"):
            path = self._snapshot = _private_copy(path)
            log.warning("the vector store %s is read-only for this user: searching a private copy in %s",
                        self._directory, path)
        else:
            path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path),
                                         settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False))

    def _writing(self):
        """The collection, for a write; a read-only store refuses it (its copy is thrown away on close)."""
        if self.collection is not None and self._snapshot is not None:
            raise StoreError(read_only_message(self._directory.parent, "the vector store is not writable"))
        return self._using()

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
        with self._using() as collection:
            config = collection.configuration
        hnsw = config.get("hnsw") if isinstance(config, dict) else None
        return dict(hnsw or {})

    def count(self) -> int:
        with self._using() as collection:
            return collection.count()

    def ids(self) -> set[str]:
        """Every chunk id stored (the drift check compares them with the manifest's)."""
        out: set[str] = set()
        with self._using() as collection:
            total, page = collection.count(), 5000
            for offset in range(0, total, page):
                out.update(collection.get(include=[], limit=page, offset=offset)["ids"])
        return out

    def upsert(self, ids: Sequence[str], vectors: np.ndarray, doc_hash: str, pages: Sequence[int | None]) -> None:
        if not ids:
            return
        metadatas = [{"doc_hash": doc_hash, "page": -1 if p is None else int(p)} for p in pages]
        with self._writing() as collection:
            batch = max(1, self._client.get_max_batch_size() if self._client else 1000)
            for start in range(0, len(ids), batch):
                stop = start + batch
                collection.upsert(
                    ids=list(ids[start:stop]), embeddings=vectors[start:stop], metadatas=metadatas[start:stop]
                )

    def delete_documents(self, doc_hashes: Sequence[str]) -> None:
        with self._writing() as collection:
            for doc_hash in doc_hashes:
                collection.delete(where={"doc_hash": doc_hash})

    def delete_ids(self, ids: Sequence[str]) -> None:
        with self._writing() as collection:
            for start in range(0, len(ids), 5000):
                collection.delete(ids=list(ids[start:start + 5000]))

    def query(self, vector: np.ndarray, n: int, doc_hashes: Sequence[str] | None = None) -> list[VectorHit]:
        """Approximate nearest chunks; ``doc_hashes`` restricts to those documents."""
        if n <= 0 or (doc_hashes is not None and not doc_hashes):
            return []
        where = {"doc_hash": {"$in": list(doc_hashes)}} if doc_hashes is not None else None

        def run(collection) -> list[VectorHit]:
            total = collection.count()
            if total == 0:
                return []
            result = collection.query(query_embeddings=[np.asarray(vector, dtype=np.float32)],
                                      n_results=min(n, total), where=where, include=["distances"])
            return [VectorHit(cid, 1.0 - float(d)) for cid, d in zip(result["ids"][0], result["distances"][0])]

        return self._retrying(run, [])

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}

        def run(collection) -> dict[str, np.ndarray]:
            got = collection.get(ids=list(ids), include=["embeddings"])
            return {cid: np.asarray(vec, dtype=np.float32) for cid, vec in zip(got["ids"], got["embeddings"])}

        return self._retrying(run, {})


def _private_copy(directory: Path) -> Path:
    """A writable copy of a Chroma folder in a temporary folder (removed at close, or at exit at the latest)."""
    target = Path(tempfile.mkdtemp(prefix="neoc-chroma-readonly-"))
    atexit.register(shutil.rmtree, target, True)
    shutil.copytree(directory, target, dirs_exist_ok=True, copy_function=shutil.copyfile)
    for folder, _, files in os.walk(target):  # copytree copies the folders' read-only modes too
        os.chmod(folder, 0o700)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o600)
    return target
