"""This instance's manifest as a replica of the shared knowledge base on a Chroma server.

With ``store.vector_backend = "chroma-server"`` every instance keeps its own
SQLite manifest - the chunk texts, the FTS5 (BM25) index, the file registry
and ``kb_version`` - because lexical search, the answerability check and the
cache guard read it on every question and must stay local-fast. The catalog
on the server (``chroma_server.ChromaCatalog``) is the source of truth:

* **writes** (this instance ingests): each file is published to the catalog
  first, then committed locally in one transaction, so a network failure
  leaves the local manifest untouched and the file "failed"; the catalog's
  write order keeps a half-published file invisible to everyone.
* **reads**: ``kb_version()`` - the first thing every question asks - first
  checks the catalog's token, at most every ``store.sync_interval_seconds``
  or at once after a Redis announcement (``request_sync``). A new token means
  a pull: the file registry is replaced by the catalog's, missing documents
  are fetched with their chunks, forgotten ones dropped, all in one SQLite
  transaction. ``kb_version`` is then computed exactly as on a laptop - a
  digest of (source, document) pairs and the pipeline - so every instance
  that has synced the same catalog has the same version, and they share
  cached answers keyed on it.
* **failure**: catalog unreachable → the last synced replica keeps answering
  (one warning per outage, ``sync_state`` for health); ingest refuses to
  start (``refresh(strict=True)``).

Instances must chunk and embed alike: an ingest whose pipeline fingerprint
differs from the catalog's is refused instead of resetting everyone's
knowledge base.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

from neoc_assistant.errors import StoreError
from neoc_assistant.store.chroma_server import ChromaCatalog
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import ChunkRecord, FileRecord

log = logging.getLogger(__name__)


class ReplicatedManifest(Manifest):
    def __init__(self, path: Path, catalog: ChromaCatalog, *, interval_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(path)
        self.catalog = catalog
        self.interval = float(interval_seconds)
        self._clock = clock
        self._next_check = 0.0
        self._due = True
        self._sync_lock = threading.Lock()
        self.sync_state: dict = {"synced_at": None, "token": None, "error": None, "pulls": 0}

    # -- reads that follow the shared knowledge base ----------------------------------------------
    def kb_version(self) -> str:
        self.refresh()
        return super().kb_version()

    def documents(self):
        self.refresh()
        return super().documents()

    def request_sync(self, _announced_version: str | None = None) -> None:
        """Another instance changed the knowledge base: check at the next read."""
        self._due = True

    def refresh(self, *, strict: bool = False) -> None:
        if not (strict or self._due or self._clock() >= self._next_check):
            return
        with self._sync_lock:  # concurrent questions wait for one pull, then read its result
            if not (strict or self._due or self._clock() >= self._next_check):
                return
            self._due = False
            self._next_check = self._clock() + self.interval
            try:
                token = self.catalog.token()  # before the catalog: a change after this read moves it again
                if token != self.get_meta("catalog_token"):
                    self._pull(token)
            except StoreError as exc:
                if self.sync_state["error"] is None:
                    log.warning("knowledge base: cannot sync with the Chroma server (%s); answering from "
                                "this instance's last copy", exc)
                self.sync_state["error"] = str(exc)
                if strict:
                    raise
                return
            if self.sync_state["error"] is not None:
                log.warning("knowledge base: the Chroma server is reachable again")
            self.sync_state.update(error=None, synced_at=time.time(), token=token)

    def _pull(self, token: str) -> None:
        files = self.catalog.files()
        pipeline = self.catalog.pipeline()
        local = {r[0] for r in self._conn().execute("SELECT doc_hash FROM documents")}
        wanted = {f.doc_hash for f in files}
        missing = sorted(wanted - local)
        documents = self.catalog.documents(missing)
        chunks = {h: self.catalog.chunks(h) for h in documents}
        files = [f for f in files if f.doc_hash in local or f.doc_hash in documents]  # never half a file
        with self._tx() as conn:
            for doc_hash, document in documents.items():
                self._insert_document(conn, document, chunks[doc_hash])
            conn.execute("DELETE FROM files")
            conn.executemany("INSERT INTO files(source, root, abs_path, size, mtime_ns, doc_hash, ingested_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(f.source, f.root, f.abs_path, f.size, f.mtime_ns, f.doc_hash, f.ingested_at)
                              for f in files])
            dropped = self._drop_unreferenced(conn, sorted(local - wanted))
            # their vectors are the writer's to delete (it knows no other file took them meanwhile)
            conn.executemany("DELETE FROM chroma_pending WHERE doc_hash=? AND reason='unreferenced'",
                             [(h,) for h in dropped])
            if pipeline is not None:
                conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pipeline', ?)", (pipeline,))
            self._bump_version(conn)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('catalog_token', ?)", (token,))
        self.sync_state["pulls"] += 1
        log.info("knowledge base synced from the Chroma server: %d files, %d documents fetched, %d dropped",
                 len(files), len(documents), len(dropped))

    # -- writes: the catalog first, then this replica ---------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        if key == "pipeline":
            self.catalog.set_pipeline(value)
        super().set_meta(key, value)

    def record_pipeline(self, pipeline: str) -> None:
        self.catalog.set_pipeline(pipeline)  # a re-embed: every instance must use the new model
        super().record_pipeline(pipeline)

    def commit_file(self, record: FileRecord, *, document: dict | None = None,
                    chunks: Sequence[ChunkRecord] = ()) -> list[str]:
        self.catalog.publish_file(record, document, list(chunks))
        orphaned = super().commit_file(record, document=document, chunks=chunks)
        self.catalog.forget_documents(orphaned)
        self._due = True  # others may have written meanwhile
        return orphaned

    def remove_files(self, sources: Iterable[str]) -> list[str]:
        sources = list(sources)
        self.catalog.remove_files(sources)
        orphaned = super().remove_files(sources)
        self.catalog.forget_documents(orphaned)
        self._due = True
        return orphaned

    def reset(self, pipeline: str) -> list[str]:
        shared = self.catalog.pipeline()
        if self.catalog.files():
            raise StoreError(
                f"this instance chunks and embeds differently ({pipeline}) from the shared knowledge base "
                f"({shared}); give every instance the same embedding model and chunk settings")
        self.catalog.set_pipeline(pipeline)
        return super().reset(pipeline)
