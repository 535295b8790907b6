"""The knowledge base on a Chroma server (``store.vector_backend = "chroma-server"``), shared by every instance.

Two collections on the server (``chroma run``), reached with ``chromadb.HttpClient``:

* ``<collection_name>`` - the chunk vectors, exactly as the embedded store
  keeps them (``ChromaServerStore``: the same class over an HTTP client);
* ``<collection_name>_catalog`` - the **catalog**: what the local manifest
  holds, so every instance can rebuild its manifest and BM25 index from it
  (``replica.py``). Records (each with a 1-d placeholder embedding, as Chroma
  needs one): ``file:<source>`` (the file registry row), ``doc:<hash>`` (the
  document row), ``chunk:<id>`` (text, section, page...), ``pipeline`` (the
  chunking/embedding fingerprint every instance must share) and ``state``,
  whose random ``token`` changes after every change.

Write order makes each file all-or-nothing for readers: chunk records, then
the document record, then the file record, then a new token. A reader only
takes documents that a file record points to, so a writer that dies half-way
leaves records nobody reads (and the vectors, as before, are ignored because
no manifest lists their ids). A token is random, not a counter: two writers
can never produce the same value, so a reader that saw token T and then read
the catalog will notice any change made after it read T.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import numpy as np

from neoc_assistant.errors import StoreError, StoreUnavailableError
from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.chroma_store import ChromaVectorStore
from neoc_assistant.store.records import ChunkRecord, FileRecord

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
_PLACEHOLDER = [0.0]


def http_client(url: str):
    """A ``chromadb.HttpClient`` for ``url`` (telemetry off, like the embedded client)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StoreError(f"NEOC_CHROMA_URL {url!r} is not an http://host:port URL")
    return chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                               ssl=parts.scheme == "https", settings=ChromaSettings(anonymized_telemetry=False))


def unreachable(url: str, exc: Exception) -> StoreUnavailableError:
    return StoreUnavailableError(
        f"The Chroma server at {url} cannot be reached ({type(exc).__name__}: {exc}). Start it "
        "(`chroma run --path DIR --port PORT`) or check NEOC_CHROMA_URL; cached answers are still served.")


class ChromaServerStore(ChromaVectorStore):
    """The chunk vectors on the server; every failure is a ``StoreUnavailableError`` naming it."""

    def __init__(self, settings: StoreSettings, url: str):
        super().__init__(settings, Path("."))
        self.url = url

    def _make_client(self):
        return http_client(self.url)

    def _open(self):
        try:
            return super()._open()
        except StoreError as exc:
            raise unreachable(self.url, exc.__cause__ or exc) from exc

    def _call(self, name: str, *args):
        try:
            return getattr(super(), name)(*args)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - httpx/chromadb errors: the server is gone or broken
            self._collection = None  # reconnect next time
            raise unreachable(self.url, exc) from exc

    def count(self) -> int:
        return self._call("count")

    def upsert(self, ids, vectors, doc_hash, pages) -> None:
        self._call("upsert", ids, vectors, doc_hash, pages)

    def delete_documents(self, doc_hashes) -> None:
        self._call("delete_documents", doc_hashes)

    def query(self, vector, n, doc_hashes=None):
        return self._call("query", vector, n, doc_hashes)

    def vectors(self, ids):
        return self._call("vectors", ids)


class ChromaCatalog:
    """The manifest's content on the server (see the module docstring for the layout)."""

    def __init__(self, settings: StoreSettings, url: str):
        self.url = url
        self.name = f"{settings.collection_name}_catalog"
        self._collection = None

    @property
    def collection(self):
        if self._collection is None:
            try:
                self._collection = http_client(self.url).get_or_create_collection(
                    name=self.name, embedding_function=None, configuration={"hnsw": {"space": "l2"}})
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise unreachable(self.url, exc) from exc
        return self._collection

    def _do(self, fn):
        try:
            return fn(self.collection)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._collection = None
            raise unreachable(self.url, exc) from exc

    def _upsert(self, ids: list[str], metadatas: list[dict], documents: list[str] | None = None) -> None:
        for i in range(0, len(ids), PAGE_SIZE):
            part = slice(i, i + PAGE_SIZE)
            self._do(lambda c: c.upsert(ids=ids[part], metadatas=metadatas[part],
                                        embeddings=np.zeros((len(ids[part]), 1), dtype=np.float32),
                                        documents=documents[part] if documents is not None else None))

    def _all(self, where: dict, include: list[str]) -> Iterator[tuple[str, dict, str | None]]:
        offset = 0
        while True:
            got = self._do(lambda c: c.get(where=where, include=include, limit=PAGE_SIZE, offset=offset))
            docs = got.get("documents") or [None] * len(got["ids"])
            yield from zip(got["ids"], got["metadatas"], docs)
            if len(got["ids"]) < PAGE_SIZE:
                return
            offset += PAGE_SIZE

    # -- reads ----------------------------------------------------------------------------------------
    def token(self) -> str:
        got = self._do(lambda c: c.get(ids=["state"], include=["metadatas"]))
        return str(got["metadatas"][0]["token"]) if got["ids"] else ""

    def pipeline(self) -> str | None:
        got = self._do(lambda c: c.get(ids=["pipeline"], include=["metadatas"]))
        return str(got["metadatas"][0]["value"]) if got["ids"] else None

    def files(self) -> list[FileRecord]:
        return [FileRecord(m["source"], m["root"], m["abs_path"], int(m["size"]), int(m["mtime_ns"]),
                           m["doc_hash"], float(m["ingested_at"]))
                for _, m, _ in self._all({"kind": "file"}, ["metadatas"])]

    def documents(self, doc_hashes: list[str]) -> dict[str, dict]:
        out = {}
        for i in range(0, len(doc_hashes), PAGE_SIZE):
            ids = [f"doc:{h}" for h in doc_hashes[i:i + PAGE_SIZE]]
            got = self._do(lambda c: c.get(ids=ids, include=["metadatas"]))
            for meta in got["metadatas"]:
                out[meta["doc_hash"]] = {k: meta[k] for k in ("doc_hash", "title", "doc_type", "n_pages",
                                                              "n_chunks", "ingested_at")}
        return out

    def chunks(self, doc_hash: str) -> list[ChunkRecord]:
        rows = [ChunkRecord(cid[len("chunk:"):], doc_hash, int(m["chunk_index"]),
                            None if int(m["page"]) < 0 else int(m["page"]), m["section"], text or "",
                            m["content_hash"], m.get("ocr_confidence"))
                for cid, m, text in self._all({"$and": [{"kind": "chunk"}, {"doc_hash": doc_hash}]},
                                              ["metadatas", "documents"])]
        return sorted(rows, key=lambda c: c.chunk_index)

    # -- writes (each ends with a new token) -----------------------------------------------------------
    def _bump(self) -> None:
        self._upsert(["state"], [{"token": uuid.uuid4().hex}])

    def set_pipeline(self, pipeline: str) -> None:
        self._upsert(["pipeline"], [{"value": pipeline}])
        self._bump()

    def publish_file(self, record: FileRecord, document: dict | None, chunks: list[ChunkRecord]) -> None:
        """Chunks, then the document, then the file (a reader never sees a file with half a document)."""
        if document is not None:
            self._upsert([f"chunk:{c.chunk_id}" for c in chunks],
                         [{"kind": "chunk", "doc_hash": c.doc_hash, "chunk_index": c.chunk_index,
                           "page": -1 if c.page is None else int(c.page), "section": c.section,
                           "content_hash": c.content_hash,
                           **({} if c.ocr_confidence is None else {"ocr_confidence": c.ocr_confidence})}
                          for c in chunks],
                         [c.text for c in chunks])
            self._upsert([f"doc:{document['doc_hash']}"], [{"kind": "doc", **document}])
        self._upsert([f"file:{record.source}"],
                     [{"kind": "file", "source": record.source, "root": record.root, "abs_path": record.abs_path,
                       "size": int(record.size), "mtime_ns": int(record.mtime_ns), "doc_hash": record.doc_hash,
                       "ingested_at": float(record.ingested_at)}])
        self._bump()

    def remove_files(self, sources: list[str]) -> None:
        if sources:
            self._do(lambda c: c.delete(ids=[f"file:{s}" for s in sources]))
            self._bump()

    def forget_documents(self, doc_hashes: list[str]) -> None:
        """Documents no file points to any more (after the file records moved on)."""
        for doc_hash in doc_hashes:
            self._do(lambda c: c.delete(where={"$and": [{"doc_hash": doc_hash},
                                                        {"kind": {"$in": ["doc", "chunk"]}}]}))
