"""Persistent cache of sentence embeddings (query and chunk vectors).

Implements the ``VectorCache`` protocol of ``store/embeddings.py``: the
``Embedder`` asks ``get_many(model_id, texts)`` before encoding and hands new
vectors to ``set_many``. Keys are ``<model_id>:<sha256(text)>`` - the model id
already fingerprints the weights, so a different model never reads another's
vectors, and the text itself is not stored. Values are raw float32 bytes.

Two tiers: a small in-process LRU (hot query vectors: no disk read at all) and a
``diskcache`` store under ``settings.cache_dir/embeddings`` shared by all
processes, with no expiry (a vector never goes stale) and least-recently-
stored culling at ``cache_embedding_size_limit_mb``. Disk errors degrade to a
miss; the Embedder then simply computes the vector.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Sequence

import numpy as np
from cachetools import LRUCache

log = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, settings, *, memory_items: int = 4096):
        self._mem: LRUCache = LRUCache(maxsize=max(1, memory_items))
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._disk = None
        try:
            import diskcache

            directory = settings.cache_dir / "embeddings"
            directory.mkdir(parents=True, exist_ok=True)
            limit_mb = int(getattr(settings, "cache_embedding_size_limit_mb", 256))
            self._disk = diskcache.Cache(
                str(directory), size_limit=limit_mb * (1 << 20), eviction_policy="least-recently-stored", timeout=30
            )
        except Exception as exc:  # noqa: BLE001 - memory-only is still useful
            log.warning("embedding cache: disk store unavailable (%s); using memory only", exc)

    @staticmethod
    def key(model_id: str, text: str) -> str:
        return f"{model_id}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"

    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        for text in texts:
            key = self.key(model_id, text)
            with self._lock:
                vec = self._mem.get(key)
            if vec is None and self._disk is not None:
                try:
                    raw = self._disk.get(key, default=None)
                except Exception as exc:  # noqa: BLE001
                    self._error(exc)
                    raw = None
                if raw is not None:
                    vec = np.frombuffer(raw, dtype=np.float32).copy()
                    with self._lock:
                        self._mem[key] = vec
            if vec is None:
                self.misses += 1
            else:
                self.hits += 1
            out.append(vec.copy() if vec is not None else None)
        return out

    def set_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        items = [(self.key(model_id, t), vectors[i]) for i, t in enumerate(texts)]
        with self._lock:
            for key, vec in items:
                self._mem[key] = vec.copy()
        if self._disk is None:
            return
        try:
            with self._disk.transact():
                for key, vec in items:
                    self._disk.set(key, vec.tobytes())
        except Exception as exc:  # noqa: BLE001
            self._error(exc)

    def _error(self, exc: Exception) -> None:
        self.errors += 1
        log.warning("embedding cache: disk error: %s", exc)

    def stats(self) -> dict:
        data = {"hits": self.hits, "misses": self.misses, "errors": self.errors, "memory_items": len(self._mem)}
        if self._disk is not None:
            try:
                data["disk_items"] = len(self._disk)
                data["disk_bytes"] = int(self._disk.volume())
            except Exception as exc:  # noqa: BLE001
                self._error(exc)
        return data

    def clear(self) -> None:
        with self._lock:
            self._mem.clear()
        if self._disk is not None:
            try:
                self._disk.clear()
            except Exception as exc:  # noqa: BLE001
                self._error(exc)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
