"""Semantic response cache: answer a question already answered, never a different one.

Lookup order (``ResponseCache.lookup``), stopping at the first hit:

1. **exact, L1** - the normalised question (``normalize.normalize_key``: case,
   whitespace, punctuation, filler) plus the ``CacheContext`` in the
   in-process LRU/TTL tier;
2. **exact, L2** - the same key in the shared ``diskcache`` tier (promoted to L1);
3. **semantic** - the question is embedded (typo-corrected, filler-free text;
   through the embedding cache) and compared by one dot product with every
   cached question *of the same context*; up to ``CANDIDATES`` entries at or
   above ``cache.similarity_threshold`` are offered, best first, to the
   guard (``reading/guard.py``), and the first one it accepts is served. The tier is
   ``l1`` if that entry is still in memory, else ``l2`` (and it is promoted).

The query vector is returned on every path - from the stored entry on an
exact hit, freshly computed otherwise - so retrieval never embeds twice.

What is part of the key (``CacheContext``): the knowledge-base version, the
model identity, the prompt version, the retrieval settings and the search
filters, plus the cache's own format version. Anything else that changes an
answer must be put into one of those strings by the caller.

Only grounded answers are stored: ``store`` refuses a mode other than
``"llm"`` (errors, refusals, cancelled or partial streams, extractive
fallbacks, not-found), an empty answer, an answer without sources, and an
answer computed against a knowledge-base version that is no longer current.

Invalidation: a re-ingest changes ``kb_version``, which is part of every key,
so old entries are unreachable at once, and they are reclaimed eagerly
(``coherence.py``, which also keeps this process in step with the others).
Model or prompt changes make old entries unreachable; those expire lazily
(L2 TTL, size-limit culling).

Failures of the shared tier (a disk locked, full or corrupt; Redis down) never
fail a question: they are logged, counted (``l2_errors``) and the cache carries
on in memory.
Statistics and the events sent to monitoring: ``cache_stats.py``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from neoc_assistant.cache.cache_stats import CacheStatistics
from neoc_assistant.cache.coherence import CacheCoherence
from neoc_assistant.cache.entries import CACHE_FORMAT, CACHEABLE_MODES, CacheContext, CachedAnswer, CacheEntry, CacheLookup, text_hash
from neoc_assistant.reading.lexicon import KBLexicon
from neoc_assistant.cache.factory import open_l2_tier
from neoc_assistant.cache.shared_tier import SharedTier
from neoc_assistant.cache.tiers import CacheTiers, DiskTier, MemoryTier
from neoc_assistant.reading.vocabulary import KBVocabulary
from neoc_assistant.language.discourse import normalize_key
from neoc_assistant.settings import CacheSettings

log = logging.getLogger(__name__)

CANDIDATES = 5  # similar entries offered to the guard per lookup, best first


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...  # optional: questions, if they differ


class ResponseCache:
    def __init__(
        self,
        settings: CacheSettings,
        directory: Path,
        embedder: TextEncoder,
        *,
        vocabulary: KBVocabulary | None = None,
        lexicon: KBLexicon | None = None,
        on_event: Callable[[str], None] | None = None,
        latency_window: int = 1000,
        redis=None,
        l1_timer: Callable[[], float] = time.monotonic,
        corroborate: Callable[[str, np.ndarray, str, np.ndarray], bool] | None = None,
    ):
        """``directory``: where the shared (L2) tier lives. ``vocabulary`` supplies the guard per kb
        version (shared with the answerability check); ``lexicon`` instead fixes one guard vocabulary
        (tests, evaluation). ``latency_window``: lookups whose latency ``stats()`` summarises.
        ``corroborate(cached, cached_vector, incoming, incoming_vector)``: the evidence a relaxed
        guard verdict needs (``agreement.RetrievalAgreement``); without it relaxed matches are refused.
        ``redis``: the process's ``RedisLink`` when ``cache.l2_backend = "redis"``."""
        if lexicon is not None:
            vocabulary = KBVocabulary.fixed(lexicon)
        if vocabulary is None:
            raise ValueError("a ResponseCache needs a vocabulary (or a fixed lexicon) for its guard")
        self.settings = settings
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.enabled = bool(settings.enabled)
        self.threshold = float(settings.similarity_threshold)
        self.l2_ttl = float(settings.l2_ttl_seconds)
        l1 = MemoryTier(settings.l1_max_items, settings.l1_ttl_seconds, timer=l1_timer)
        self.tiers = CacheTiers(l1, (lambda: open_l2_tier(settings, Path(directory), redis)) if self.enabled else None)
        self.statistics = CacheStatistics(self.tiers, on_event, latency_window)
        self.coherence = CacheCoherence(self.tiers, self.statistics)
        self._dim: int | None = None
        self.corroborate = corroborate

    @property
    def l1(self) -> MemoryTier:
        return self.tiers.l1

    @property
    def l2(self) -> SharedTier | None:
        return self.tiers.l2

    # ================================================================== public API
    def lookup(self, question: str, ctx: CacheContext) -> CacheLookup:
        t0 = time.perf_counter()
        if not self.enabled:
            vec = self._embed(self.vocabulary.guard(ctx.kb_version).features(question).text or question)
            return CacheLookup(None, None, None, None, vec, (time.perf_counter() - t0) * 1000)
        entry, tier, sim, refusal, refusal_cat, vec, match = self._find(question, ctx)
        latency = (time.perf_counter() - t0) * 1000
        self.statistics.lookup(tier if entry is not None else None, match, refusal_cat, latency)
        return CacheLookup(
            answer=entry.answer if entry else None,
            tier=tier,
            similarity=sim,
            guard_refusal=refusal,
            query_vector=vec,
            latency_ms=latency,
            match=match,
            cached_question=entry.question if entry else None,
        )

    def store(self, question: str, ctx: CacheContext, answer: CachedAnswer, query_vector=None) -> bool:
        """Cache a grounded answer; returns False (and counts why) for anything else."""
        if not self.enabled:
            return False
        reason = None
        if answer is None or answer.mode not in CACHEABLE_MODES:
            reason = f"mode:{getattr(answer, 'mode', None)}"
        elif not (answer.answer or "").strip():
            reason = "empty_answer"
        elif not answer.sources:
            reason = "no_sources"
        if reason is None:
            self.coherence.sync(ctx)
            current = self.coherence.current_kb()
            if current is not None and ctx.kb_version != current:
                reason = "stale_kb_version"
        norm = normalize_key(question)
        if reason is None and not norm:
            reason = "empty_question"
        if reason is not None:
            self.statistics.store_refused(reason)
            return False

        features = self.vocabulary.guard(ctx.kb_version).features(question)
        vector = (
            np.asarray(query_vector, dtype=np.float32).reshape(-1)
            if query_vector is not None
            else self._embed(features.text or norm)
        )
        self._dim = self._dim or int(vector.shape[0])
        ctx_hash = ctx.key()
        key = DiskTier.entry_key(ctx_hash, text_hash(norm))
        now = time.time()
        entry = CacheEntry(key, ctx_hash, ctx.kb_version, question, norm, answer, vector, features, now)
        self.coherence.ctx_versions[ctx_hash] = ctx.kb_version
        self.l1.set(key, entry)
        l2 = self.l2
        if l2 is not None:
            try:
                l2.put_entry(
                    ctx_hash,
                    key,
                    entry.to_value(),
                    {"op": "add", "key": key, "vector": entry.vector.tobytes(), "features": features, "created_at": now},
                    tag=ctx.kb_version,
                )
            except Exception as exc:  # noqa: BLE001
                self.statistics.l2_error("store", exc)
        index = self.coherence.index(ctx_hash, vector.shape[0], refresh=False)
        with index.lock:
            index.add(key, vector, features, now)
        self.statistics.stored()
        return True

    def remove(self, question: str, ctx: CacheContext) -> bool:
        """Thumbs-down: forget the entry stored for this question *and* the entry a lookup
        of this question would serve (they differ after a semantic hit)."""
        if not self.enabled:
            return False
        ctx_hash = ctx.key()
        norm = normalize_key(question)
        keys = {DiskTier.entry_key(ctx_hash, text_hash(norm))}
        entry, *_ = self._find(question, ctx)
        if entry is not None:
            keys.add(entry.key)
        removed = False
        for key in keys:
            removed |= self._delete(ctx_hash, key, ctx.kb_version)
        if removed:
            self.statistics.removed()
        return removed

    def clear(self) -> None:
        self.l1.clear()
        self.coherence.forget_all()
        l2 = self.l2
        if l2 is not None:
            try:
                l2.clear()
                self.coherence.epoch_seen = l2.epoch()
            except Exception as exc:  # noqa: BLE001
                self.statistics.l2_error("clear", exc)
        self.statistics.cleared()

    def knowledge_changed(self, kb_version: str) -> None:
        """This process changed the knowledge base: make ``kb_version`` current for every process now
        (old entries evicted, other instances told), not at the next question."""
        if not self.enabled:
            return
        self.coherence.sync_version(kb_version)
        l2 = self.l2
        if l2 is not None:
            try:
                l2.announce(kb_version)
            except Exception as exc:  # noqa: BLE001
                self.statistics.l2_error("announce", exc)

    def on_announced(self, kb_version: str) -> None:
        """Another instance announced ``kb_version`` (Redis channel)."""
        if self.enabled:
            self.coherence.announced(kb_version)

    def shed_l1(self, fraction: float = 0.5) -> int:
        n = self.l1.shed(fraction)
        self.statistics.shed(n)
        return n

    def stats(self) -> dict:
        data = {
            "enabled": self.enabled,
            "threshold": self.threshold,
            **self.statistics.figures(),
            "l1_items": len(self.l1),
            "l1_max_items": self.settings.l1_max_items,
            "l1_evictions": self.l1.evictions,
            "index_entries": sum(len(i) for i in self.coherence.indexes.values()),
            "contexts": len(self.coherence.indexes),
            "l2_available": self.l2 is not None,
        }
        l2 = self.l2
        if l2 is not None:
            try:
                self.statistics.flush(force=True)
                data["l2_entries"] = l2.count_entries()
                data["l2_bytes"] = l2.volume_bytes()
                data["kb_version"] = l2.current_kb_version()
                data["persisted"] = l2.counters()
            except Exception as exc:  # noqa: BLE001
                self.statistics.l2_error("stats", exc)
        return data

    def close(self) -> None:
        self.statistics.flush(force=True)
        l2 = self.tiers.l2_if_open
        if l2 is not None:
            l2.close()

    # ================================================================== lookup rules
    def _find(self, question: str, ctx: CacheContext):
        """(entry, tier, similarity, refusal, refusal_category, vector, match) without statistics."""
        guard = self.vocabulary.guard(ctx.kb_version)
        features = guard.features(question)
        norm = normalize_key(question)
        ctx_hash = ctx.key()
        self.coherence.ctx_versions.setdefault(ctx_hash, ctx.kb_version)
        self.coherence.sync(ctx)
        if self._dim:
            # replay other processes' journal first: a removal elsewhere must also leave our L1
            self.coherence.index(ctx_hash, self._dim)
        if norm:
            key = DiskTier.entry_key(ctx_hash, text_hash(norm))
            entry = self._from_l1(key, ctx_hash)
            if entry is not None:
                return entry, "l1", 1.0, None, None, entry.vector, "exact"
            entry = self._from_l2(key, ctx_hash)
            if entry is not None:
                self._dim = self._dim or int(entry.vector.shape[0])
                self.coherence.index(ctx_hash, self._dim)  # so later journal records (removals) reach this L1 copy
                self.l1.set(key, entry)
                return entry, "l2", 1.0, None, None, entry.vector, "exact"

        vector = self._embed(features.text or question)
        self._dim = self._dim or int(vector.shape[0])
        index = self.coherence.index(ctx_hash, vector.shape[0])
        with index.lock:
            candidates, best = index.search(vector, self.threshold, CANDIDATES, max_age=self.l2_ttl)
        refusal = refusal_cat = None
        for row, sim in candidates:
            verdict = guard.compare(row.features, features)
            if not verdict.ok:
                if refusal is None:
                    refusal, refusal_cat = verdict.reason, verdict.category
                continue
            entry = self._from_l1(row.key, ctx_hash)
            tier = "l1"
            if entry is None:
                entry = self._from_l2(row.key, ctx_hash)
                tier = "l2"
                if entry is None:  # expired or removed elsewhere
                    with index.lock:
                        index.remove(row.key)
                    continue
            if verdict.needs_evidence and not self._corroborated(entry, features.text or question, vector):
                if refusal is None:
                    refusal, refusal_cat = f"unconfirmed: {verdict.detail}", "unconfirmed"
                continue
            if tier == "l2":
                self.l1.set(row.key, entry)
            return entry, tier, sim, refusal, refusal_cat, vector, "semantic"
        return None, None, best, refusal, refusal_cat, vector, None

    def _corroborated(self, entry: CacheEntry, text: str, vector: np.ndarray) -> bool:
        """A relaxed verdict (words only WordNet relates) is served only when the knowledge base
        agrees: both questions retrieve the same passages (``agreement.py``)."""
        if self.corroborate is None:
            return False
        return bool(self.corroborate(entry.features.text or entry.question, entry.vector, text, vector))

    def _from_l1(self, key: str, ctx_hash: str) -> CacheEntry | None:
        entry = self.l1.get(key)
        if entry is None:
            return None
        if entry.ctx_hash != ctx_hash or time.time() - entry.created_at > self.l2_ttl:
            self.l1.pop(key)
            return None
        return entry

    def _from_l2(self, key: str, ctx_hash: str) -> CacheEntry | None:
        l2 = self.l2
        if l2 is None:
            return None
        try:
            value = l2.get(key)
            if value is None or value.get("fmt") != CACHE_FORMAT or value.get("ctx") != ctx_hash:
                return None
            return CacheEntry.from_value(key, value)
        except Exception as exc:  # noqa: BLE001 - unreadable entry: a miss
            self.statistics.l2_error("read", exc)
            return None

    def _delete(self, ctx_hash: str, key: str, kb_version: str) -> bool:
        removed = self.l1.pop(key) is not None
        index = self.coherence.indexes.get(ctx_hash)
        if index is not None:
            with index.lock:
                removed |= index.remove(key)
        l2 = self.l2
        if l2 is not None:
            try:
                removed |= l2.delete_entry(ctx_hash, key, tag=kb_version)
            except Exception as exc:  # noqa: BLE001
                self.statistics.l2_error("delete", exc)
        return removed

    def _embed(self, text: str) -> np.ndarray:
        encode = getattr(self.embedder, "encode_queries", self.embedder.encode)  # e5: the "query: " side
        return np.asarray(encode([text])[0], dtype=np.float32)
