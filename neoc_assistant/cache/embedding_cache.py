"""Persistent cache of sentence embeddings (query and chunk vectors).

Implements the ``VectorCache`` protocol of ``store/embeddings.py``: the
``Embedder`` asks ``get_many(model_id, texts)`` before encoding and hands new
vectors to ``set_many``. Keys are ``<model_id>:<sha256(text)>`` - the model id
already fingerprints the weights, so a different model never reads another's
vectors, and the text itself is not stored. Values are raw float32 bytes.

Two tiers: a small in-process LRU (hot query vectors: no disk read at all) and a
shared store, opened on first use so building the cache touches nothing: by
default a ``diskcache`` store (``<cache_dir>/embeddings``) shared by this
machine's processes, with no expiry (a vector never goes stale) and
least-recently-stored culling at ``cache.embedding_size_limit_mb``; with
``cache.l2_backend = "redis"`` Redis (``redis_tier.RedisBlobStore``), shared
by every instance. Store errors degrade to a miss; the Embedder then simply
computes the vector.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from cachetools import LRUCache

from neoc_assistant.cache.counters import Counters
from neoc_assistant.cache.shared_tier import TierUnavailable

log = logging.getLogger(__name__)


class DiskBlobStore:
    """The ``diskcache`` store, with the ``set_many`` the cache writes through."""

    def __init__(self, directory: Path, size_limit_mb: int):
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        self.cache = diskcache.Cache(str(directory), size_limit=size_limit_mb * (1 << 20),
                                     eviction_policy="least-recently-stored", timeout=30)
        self.get, self.volume, self.clear, self.close = self.cache.get, self.cache.volume, self.cache.clear, self.cache.close

    def set_many(self, items: list[tuple[str, bytes]]) -> None:
        with self.cache.transact():
            for key, raw in items:
                self.cache.set(key, raw)

    def __len__(self) -> int:
        return len(self.cache)


class EmbeddingCache:
    def __init__(self, directory: Path, size_limit_mb: int = 256, *, memory_items: int = 4096,
                 open_store: Callable[[], Any] | None = None):
        """``open_store``: the shared store to use instead of the disk one under ``directory``."""
        self._mem: LRUCache = LRUCache(maxsize=max(1, memory_items))
        self._lock = threading.Lock()
        self.counts = Counters()
        self._directory = Path(directory)
        self._size_limit_mb = int(size_limit_mb)
        self._disk_store = None
        self._disk_opened = False
        self._open_store = open_store

    @property
    def hits(self) -> int:
        return self.counts["hits"]

    @property
    def misses(self) -> int:
        return self.counts["misses"]

    @property
    def errors(self) -> int:
        return self.counts["errors"]

    @property
    def _disk(self):
        if not self._disk_opened:
            with self._lock:
                if not self._disk_opened:
                    self._disk_store = self._open_disk()
                    self._disk_opened = True
        return self._disk_store

    def _open_disk(self):
        try:
            if self._open_store is not None:
                return self._open_store()
            return DiskBlobStore(self._directory, self._size_limit_mb)
        except Exception as exc:  # noqa: BLE001 - memory-only is still useful
            log.warning("embedding cache: disk store unavailable (%s); using memory only", exc)
            return None

    @staticmethod
    def key(model_id: str, text: str) -> str:
        return f"{model_id}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        disk = self._disk
        for text in texts:
            key = self.key(model_id, text)
            with self._lock:
                vec = self._mem.get(key)
            if vec is None and disk is not None:
                try:
                    raw = disk.get(key, default=None)
                except Exception as exc:  # noqa: BLE001
                    self._error(exc)
                    raw = None
                if raw is not None:
                    vec = np.frombuffer(raw, dtype=np.float32).copy()
                    with self._lock:
                        self._mem[key] = vec
            self.counts.add("misses" if vec is None else "hits", shared=False)
            out.append(vec.copy() if vec is not None else None)
        return out

    def set_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        items = [(self.key(model_id, t), vectors[i]) for i, t in enumerate(texts)]
        with self._lock:
            for key, vec in items:
                self._mem[key] = vec.copy()
        disk = self._disk
        if disk is None:
            return
        try:
            disk.set_many([(key, vec.tobytes()) for key, vec in items])
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def _error(self, exc: Exception) -> None:
        self.counts.add("errors", shared=False)
        (log.debug if isinstance(exc, TierUnavailable) else log.warning)("embedding cache: store error: %s", exc)

    def stats(self) -> dict:
        data = {"hits": self.hits, "misses": self.misses, "errors": self.errors, "memory_items": len(self._mem)}
        disk = self._disk
        if disk is not None:
            try:
                data["disk_items"] = len(disk)
                data["disk_bytes"] = int(disk.volume())
            except Exception as exc:  # noqa: BLE001
                self._error(exc)
        return data

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()
        disk = self._disk
        if disk is not None:
            try:
                disk.clear()
            except Exception as exc:  # noqa: BLE001
                self._error(exc)

    def close(self) -> None:
        if self._disk_store is not None:
            self._disk_store.close()
