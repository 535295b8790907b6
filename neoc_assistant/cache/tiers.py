"""Storage tiers of the response cache.

* ``MemoryTier`` (L1): a ``cachetools.TTLCache`` - least-recently-used eviction
  at ``cache.l1_max_items`` and a ``cache.l1_ttl_seconds`` lifetime - behind a
  lock (cachetools is not thread-safe). ``shed(fraction)`` drops the oldest
  entries when the memory guard asks.
* ``DiskTier`` (L2, ``cache.l2_backend = "disk"``): a ``diskcache.Cache``
  (SQLite, WAL) under ``<cache_dir>/responses``; entries expire after
  ``cache.l2_ttl_seconds`` and the whole store is culled least-recently-stored
  beyond ``cache.l2_size_limit_mb``. It survives restarts and is shared by
  every process on the machine. ``factory.open_l2_tier`` picks the L2 by the
  setting: ``"redis"`` is ``RedisTier`` (``redis_tier.py``), the same methods
  (``shared_tier.SharedTier``) shared by every instance; ``CacheTiers`` opens it on first use, so building
  a cache touches no disk.
* ``SemanticIndex``: per cache context, a float32 matrix of cached-question
  vectors plus their guard features, searched with one matrix-vector product
  (single-threaded on purpose: see ``search``).

Cross-process coherence
-----------------------
Every write to L2 also appends to a per-context **journal** in the same SQLite
transaction: ``g:<ctx>`` is a counter (``Cache.incr``, atomic across processes)
and ``j:<ctx>:<n>`` holds the n-th event (``add`` with vector and features, or
``del``). Before each lookup a process reads the counter (one indexed SELECT)
and, if it moved, replays only the new journal records into its in-memory
index - so entries written by another process become searchable, and an entry
removed elsewhere (thumbs-down) also leaves this process's L1. ``clear`` bumps
an ``epoch`` key so every process drops its L1 and indexes.

Entries, journal records and per-version bookkeeping are tagged with their
knowledge-base version, so a re-ingest can ``evict`` all of an old version
with one indexed DELETE.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from cachetools import TTLCache

from neoc_assistant.cache.shared_tier import SharedTier

log = logging.getLogger(__name__)


# -- L1 -------------------------------------------------------------------------------------------

class MemoryTier:
    def __init__(self, max_items: int, ttl_seconds: float, timer: Callable[[], float] = time.monotonic):
        self._cache: TTLCache = TTLCache(maxsize=max_items, ttl=ttl_seconds, timer=timer)
        self._lock = threading.Lock()
        self.evictions = 0

    def get(self, key) -> Any | None:
        with self._lock:
            return self._cache.get(key)

    def set(self, key, value) -> None:
        with self._lock:
            before = len(self._cache)
            full = before >= self._cache.maxsize and key not in self._cache
            self._cache[key] = value
            if full:
                self.evictions += 1

    def pop(self, key) -> Any | None:
        with self._lock:
            return self._cache.pop(key, None)

    def drop_where(self, predicate: Callable[[Any], bool]) -> int:
        with self._lock:
            doomed = [k for k in list(self._cache.keys()) if predicate(k)]
            for k in doomed:
                self._cache.pop(k, None)
            return len(doomed)

    def shed(self, fraction: float) -> int:
        """Drop the least-recently-used ``fraction`` of the entries; returns how many."""
        with self._lock:
            self._cache.expire()
            n = int(len(self._cache) * max(0.0, min(1.0, fraction)))
            for _ in range(n):
                try:
                    self._cache.popitem()  # LRU order
                except KeyError:
                    break
            return n

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def __len__(self) -> int:
        with self._lock:
            self._cache.expire()
            return len(self._cache)


# -- L2 -------------------------------------------------------------------------------------------

class DiskTier:
    """diskcache wrapper: entries, the per-context journal, kb-version bookkeeping, persisted counters."""

    def __init__(self, directory: Path, *, size_limit_bytes: int, ttl_seconds: float):
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl_seconds
        self.cache = diskcache.Cache(
            str(directory),
            size_limit=size_limit_bytes,
            eviction_policy="least-recently-stored",
            tag_index=True,
            timeout=30,
            statistics=False,
        )

    # entries ---------------------------------------------------------------------------------------
    @staticmethod
    def entry_key(ctx_hash: str, key_hash: str) -> str:
        return f"e:{ctx_hash}:{key_hash}"

    def get(self, key: str) -> Any | None:
        return self.cache.get(key, default=None)

    def put_entry(self, ctx_hash: str, key: str, value: dict, journal: dict, tag: str) -> int:
        """Write the entry and its journal record atomically; returns the journal sequence number."""
        with self.cache.transact():
            self.cache.set(key, value, expire=self.ttl, tag=tag)
            seq = self.cache.incr(f"g:{ctx_hash}", 1, default=0)
            self.cache.set(f"j:{ctx_hash}:{seq}", journal, expire=self.ttl, tag=tag)
        return seq

    def delete_entry(self, ctx_hash: str, key: str, tag: str) -> bool:
        with self.cache.transact():
            existed = self.cache.delete(key)
            seq = self.cache.incr(f"g:{ctx_hash}", 1, default=0)
            self.cache.set(f"j:{ctx_hash}:{seq}", {"op": "del", "key": key}, expire=self.ttl, tag=tag)
        return bool(existed)

    # journal ---------------------------------------------------------------------------------------
    def generation(self, ctx_hash: str) -> int:
        return int(self.cache.get(f"g:{ctx_hash}", default=0) or 0)

    def journal(self, ctx_hash: str, start: int, stop: int) -> Iterator[tuple[int, dict | None]]:
        for seq in range(start, stop + 1):
            yield seq, self.cache.get(f"j:{ctx_hash}:{seq}", default=None)

    # epoch / kb versions ---------------------------------------------------------------------------
    def epoch(self) -> int:
        return int(self.cache.get("meta:epoch", default=0) or 0)

    def bump_epoch(self) -> int:
        return int(self.cache.incr("meta:epoch", 1, default=0))

    def kb_versions(self) -> dict[str, float]:
        return dict(self.cache.get("meta:kb_versions", default={}) or {})

    def note_kb_version(self, version: str) -> tuple[bool, list[str]]:
        """Record ``version``; returns (is_new, older versions whose entries to evict).

        A version never seen before is the newest (ingest only moves forward);
        a version already known but not current is a straggler (a request that
        started before the re-ingest) and evicts nothing.
        """
        with self.cache.transact():
            known = dict(self.cache.get("meta:kb_versions", default={}) or {})
            if version in known:
                return False, []
            known[version] = time.time()
            if len(known) > 64:  # remember the most recent versions only
                known = dict(sorted(known.items(), key=lambda kv: kv[1])[-64:])
            self.cache.set("meta:kb_versions", known)
            self.cache.set("meta:kb_current", version)
            return True, [v for v in known if v != version]

    def current_kb_version(self) -> str | None:
        return self.cache.get("meta:kb_current", default=None)

    def evict_version(self, version: str) -> int:
        return int(self.cache.evict(version))

    # counters ----------------------------------------------------------------------------------------
    def add_counters(self, deltas: dict[str, int]) -> None:
        with self.cache.transact():
            for name, delta in deltas.items():
                if delta:
                    self.cache.incr(f"stat:{name}", delta, default=0)

    def counters(self) -> dict[str, int]:
        out = {}
        for key in list(self.cache.iterkeys()):
            if isinstance(key, str) and key.startswith("stat:"):
                out[key[5:]] = int(self.cache.get(key, default=0) or 0)
        return out

    # sizes -------------------------------------------------------------------------------------------
    def count_entries(self) -> int:
        return sum(1 for k in self.cache.iterkeys() if isinstance(k, str) and k.startswith("e:"))

    def volume_bytes(self) -> int:
        return int(self.cache.volume())

    def clear(self) -> None:
        epoch = self.epoch()
        self.cache.clear()
        self.cache.set("meta:epoch", epoch + 1)

    def announce(self, version: str) -> None:
        """Nothing to do: every process on this machine reads the current version from this store."""

    def close(self) -> None:
        self.cache.close()


class CacheTiers:
    """This process's L1 and the shared L2, which is opened on first use.

    An L2 that cannot be opened (locked, full, unwritable) is reported once and
    the cache carries on in memory: a broken disk must never fail a question.
    """

    def __init__(self, l1: MemoryTier, open_l2: Callable[[], SharedTier] | None):
        self.l1 = l1
        self._open_l2 = open_l2
        self._l2: SharedTier | None = None
        self._opened = open_l2 is None
        self._lock = threading.Lock()

    @property
    def l2(self) -> SharedTier | None:
        if not self._opened:
            with self._lock:
                if not self._opened:
                    try:
                        self._l2 = self._open_l2()  # type: ignore[misc]  # _opened is True when there is none
                    except Exception as exc:  # noqa: BLE001 - run memory-only rather than fail questions
                        log.warning("response cache: disk tier unavailable (%s); using memory only", exc)
                    self._opened = True
        return self._l2

    @property
    def l2_if_open(self) -> SharedTier | None:
        """The L2 if it was opened already (closing and exiting must not open it)."""
        return self._l2


# -- semantic index ------------------------------------------------------------------------------------

@dataclass
class IndexRow:
    key: str  # L2 entry key
    features: Any
    created_at: float


@dataclass
class SemanticIndex:
    """Cached-question vectors of one context: ``search`` is one (n x d) @ (d,) product."""

    dim: int
    matrix: np.ndarray = field(default=None)  # type: ignore[arg-type]  # set in __post_init__
    live: np.ndarray = field(default=None)  # type: ignore[arg-type]  # set in __post_init__
    rows: list[IndexRow | None] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    seen_generation: int = 0
    alive: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.matrix is None:
            self.matrix = np.zeros((64, self.dim), dtype=np.float32)
        if self.live is None:
            self.live = np.zeros(self.matrix.shape[0], dtype=bool)

    def add(self, key: str, vector: np.ndarray, features, created_at: float) -> None:
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != self.dim:
            return
        pos = self.positions.get(key)
        if pos is None:
            pos = len(self.rows)
            if pos >= self.matrix.shape[0]:
                grown = np.zeros((self.matrix.shape[0] * 2, self.dim), dtype=np.float32)
                grown[:pos] = self.matrix[:pos]
                self.matrix = grown
                live = np.zeros(grown.shape[0], dtype=bool)
                live[:pos] = self.live[:pos]
                self.live = live
            self.rows.append(None)
            self.positions[key] = pos
            self.alive += 1
        self.matrix[pos] = vector
        self.live[pos] = True
        self.rows[pos] = IndexRow(key, features, created_at)

    def remove(self, key: str) -> bool:
        pos = self.positions.pop(key, None)
        if pos is None:
            return False
        self.rows[pos] = None
        self.matrix[pos] = 0.0
        self.live[pos] = False
        self.alive -= 1
        if len(self.rows) > 256 and self.alive < len(self.rows) // 2:
            self._compact()
        return True

    def _compact(self) -> None:
        keep = [i for i, r in enumerate(self.rows) if r is not None]
        matrix = np.zeros((max(64, len(keep) * 2), self.dim), dtype=np.float32)
        matrix[: len(keep)] = self.matrix[keep]
        self.rows = [self.rows[i] for i in keep]
        self.positions = {r.key: i for i, r in enumerate(self.rows)}  # type: ignore[union-attr]
        self.matrix = matrix
        self.live = np.zeros(matrix.shape[0], dtype=bool)
        self.live[: len(keep)] = True

    def search(
        self, vector: np.ndarray, threshold: float, k: int, max_age: float | None = None
    ) -> tuple[list[tuple[IndexRow, float]], float | None]:
        """Up to ``k`` live rows with similarity >= threshold, best first, and the best similarity seen."""
        n = len(self.rows)
        if n == 0 or self.alive == 0:
            return [], None
        # einsum, not "@": a multi-threaded BLAS gemv costs ~10 ms of thread hand-off on a busy
        # 2-core machine, einsum's single-threaded loop ~0.5 ms for 10,000 x 384
        sims = np.einsum("ij,j->i", self.matrix[:n], np.asarray(vector, dtype=np.float32).reshape(-1))
        if self.alive < n:
            sims = np.where(self.live[:n], sims, -np.inf)
        best_sim = float(sims.max())
        candidates = np.flatnonzero(sims >= threshold)
        if candidates.size == 0:
            return [], best_sim
        if candidates.size > k:
            top = np.argpartition(-sims[candidates], k - 1)[:k]
            candidates = candidates[top]
        order = candidates[np.argsort(-sims[candidates])]
        now = time.time()
        out = []
        for i in order:
            row = self.rows[int(i)]
            if row is None:
                continue
            if max_age is not None and now - row.created_at > max_age:
                continue
            out.append((row, float(sims[int(i)])))
        return out, best_sim

    def clear(self) -> None:
        self.rows.clear()
        self.positions.clear()
        self.alive = 0
        self.seen_generation = 0
        self.matrix = np.zeros((64, self.dim), dtype=np.float32)
        self.live = np.zeros(64, dtype=bool)

    def __len__(self) -> int:
        return self.alive
