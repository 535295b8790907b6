"""Keeping one process's view of the response cache in step with every other process and with the KB.

Several processes share the L2 (the server, a CLI ``ask``, a second worker).
Each keeps its own L1 and, per cache context, a ``SemanticIndex`` of cached
questions. This class makes those local copies agree with the shared tier:

* **journal replay** - before a lookup, the context's journal counter is read
  (one indexed SELECT); if it moved, only the new records are applied, so an
  entry written elsewhere becomes searchable and one removed elsewhere
  (thumbs-down) also leaves this L1 (``index``/``replay``);
* **clear** - ``cache clear`` in any process bumps an epoch; every process
  that sees a new epoch drops its L1 and indexes;
* **knowledge-base versions** - the first lookup or store carrying a never
  seen kb version records it as current and evicts every entry of other
  versions from L2 (one indexed DELETE per version); each process drops its
  own entries of other versions the first time it sees the new one. A request
  that started before a re-ingest carries a known, older version and evicts
  nothing (``sync``). An ingest records its new version at once
  (``ResponseCache.knowledge_changed``) and, with Redis, announces it: every
  instance listening drops its other-version L1 entries (``announced``).
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from neoc_assistant.cache.cache_stats import CacheStatistics
from neoc_assistant.cache.entries import CacheContext
from neoc_assistant.cache.tiers import CacheTiers, SemanticIndex


class CacheCoherence:
    def __init__(self, tiers: CacheTiers, stats: CacheStatistics):
        self._tiers = tiers
        self._stats = stats
        self.indexes: dict[str, SemanticIndex] = {}
        self.ctx_versions: dict[str, str] = {}  # context hash -> its kb version
        self._lock = threading.RLock()
        self.kb_seen: str | None = None
        self.epoch_seen: int | None = None

    def current_kb(self) -> str | None:
        l2 = self._tiers.l2
        if l2 is not None:
            try:
                return l2.current_kb_version()
            except Exception as exc:  # noqa: BLE001
                self._stats.l2_error("meta", exc)
        return self.kb_seen

    def sync(self, ctx: CacheContext) -> None:
        """Apply another process's ``clear`` and a new knowledge-base version (see module docstring)."""
        l2 = self._tiers.l2
        if l2 is not None:
            try:
                epoch = l2.epoch()
            except Exception as exc:  # noqa: BLE001
                self._stats.l2_error("epoch", exc)
                epoch = self.epoch_seen  # type: ignore[assignment]  # None until the first read: compared below
            if epoch != self.epoch_seen:
                with self._lock:
                    if self.epoch_seen is not None:
                        self.drop_local(lambda ctx_hash: True)
                        self.kb_seen = None
                    self.epoch_seen = epoch
        self.sync_version(ctx.kb_version)

    def sync_version(self, kb_version: str) -> None:
        """Record ``kb_version`` in the shared tier (a new one evicts the others) and drop this
        process's entries of versions that are no longer current."""
        if kb_version == self.kb_seen:
            return
        l2 = self._tiers.l2
        with self._lock:
            if kb_version == self.kb_seen:
                return
            evicted = 0
            current = kb_version
            if l2 is not None:
                try:
                    _is_new, stale = l2.note_kb_version(kb_version)
                    for version in stale:
                        evicted += l2.evict_version(version)
                    current = l2.current_kb_version() or kb_version
                except Exception as exc:  # noqa: BLE001
                    self._stats.l2_error("kb_version", exc)
            dropped = self.drop_local(lambda ctx_hash: self.ctx_versions.get(ctx_hash, current) != current)
            if kb_version == current:
                self.kb_seen = current
        if evicted or dropped:
            self._stats.kb_evicted(evicted + dropped)

    def announced(self, kb_version: str) -> None:
        """Another instance made ``kb_version`` current (the Redis channel): drop other versions' L1
        entries now, before this process has even synced its own knowledge base."""
        dropped = self.drop_local(lambda ctx_hash: self.ctx_versions.get(ctx_hash, kb_version) != kb_version)
        if dropped:
            self._stats.kb_evicted(dropped)

    def drop_local(self, doomed: Callable[[str], bool]) -> int:
        """Forget this process's L1 entries and indexes of the contexts ``doomed`` names."""
        dropped = self._tiers.l1.drop_where(lambda key: doomed(key.split(":")[1]))
        for ctx_hash in [c for c in self.indexes if doomed(c)]:
            index = self.indexes.pop(ctx_hash)
            dropped += len(index)
        return dropped

    def forget_all(self) -> None:
        """After this process cleared the cache: no indexes, no kb version seen."""
        with self._lock:
            for index in self.indexes.values():
                with index.lock:
                    index.clear()
            self.indexes.clear()
            self.kb_seen = None

    def index(self, ctx_hash: str, dim: int, refresh: bool = True) -> SemanticIndex:
        """The context's semantic index, with other processes' journal records applied (``refresh``)."""
        index = self.indexes.get(ctx_hash)
        if index is None:
            with self._lock:
                index = self.indexes.get(ctx_hash)
                if index is None:
                    index = SemanticIndex(dim=int(dim))
                    self.indexes[ctx_hash] = index
        if refresh and self._tiers.l2 is not None:
            self.replay(ctx_hash, index)
        return index

    def replay(self, ctx_hash: str, index: SemanticIndex) -> None:
        """Apply journal records written since this process last looked (any process)."""
        l2 = self._tiers.l2
        try:
            generation = l2.generation(ctx_hash)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001
            self._stats.l2_error("generation", exc)
            return
        if generation == index.seen_generation:
            return
        with index.lock:
            if generation < index.seen_generation:  # counter went backwards: start over
                index.clear()
            start = index.seen_generation + 1
            try:
                for _seq, record in l2.journal(ctx_hash, start, generation):  # type: ignore[union-attr]
                    if not record:
                        continue  # expired
                    if record.get("op") == "add":
                        vector = np.frombuffer(record["vector"], dtype=np.float32)
                        index.add(record["key"], vector, record["features"], float(record["created_at"]))
                    elif record.get("op") == "del":
                        index.remove(record["key"])
                        self._tiers.l1.pop(record["key"])
                index.seen_generation = generation
            except Exception as exc:  # noqa: BLE001
                self._stats.l2_error("journal", exc)
