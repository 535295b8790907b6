"""Semantic response cache: answer a question already answered, never a different one.

Lookup order (``ResponseCache.lookup``), stopping at the first hit:

1. **exact, L1** - the normalised question (``normalize.normalize_key``: case,
   whitespace, punctuation, filler) plus the ``CacheContext`` in the
   in-process LRU/TTL tier;
2. **exact, L2** - the same key in the shared ``diskcache`` tier (promoted to L1);
3. **semantic** - the question is embedded (typo-corrected, filler-free text;
   through the embedding cache) and compared by one dot product with every
   cached question *of the same context*; up to ``CANDIDATES`` entries at or
   above ``cache_similarity_threshold`` are offered, best first, to the
   guard (``guard.py``), and the first one it accepts is served. The tier is
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
so old entries are unreachable at once. They are also *reclaimed eagerly*:
the first lookup or store that carries a never-seen kb version records it as
current and evicts every entry and journal record tagged with other versions
(one indexed DELETE per version, via diskcache tags), and each process drops
its L1 entries and indexes of other versions the first time it sees the new
version. A request that started before the re-ingest (a known, older
version) evicts nothing and may not store. Model or prompt changes make old
entries unreachable; those expire lazily (L2 TTL, size-limit culling).

Failures of the disk tier (locked, full, corrupt) never fail a question: they
are logged, counted (``l2_errors``) and the cache carries on in memory.

Monitoring: ``stats()`` (this process, plus ``persisted`` totals of every
process, flushed to L2 at most every 10 s) and ``on_event(name)`` with one of
``hit_l1``, ``hit_l2``, ``miss``, ``guard_refusal`` (alongside the miss or
hit of the same lookup), ``store``, ``store_refused``, ``remove``,
``kb_evicted``, ``l1_shed``, ``clear``, ``l2_error``.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
import weakref
from typing import Callable

import numpy as np

from neoc_assistant.cache.guard import Features
from neoc_assistant.cache.lexicon import KBLexicon
from neoc_assistant.cache.vocabulary import KBVocabulary
from neoc_assistant.cache.normalize import normalize_key
from neoc_assistant.cache.tiers import DiskTier, MemoryTier, SemanticIndex

log = logging.getLogger(__name__)

CACHE_FORMAT = "rc2"  # rc2: answers carry their claim verification
CACHEABLE_MODES = frozenset({"llm"})
CANDIDATES = 5


@dataclass(frozen=True)
class CacheContext:
    """Everything besides the question that changes the answer."""

    kb_version: str
    model_id: str
    prompt_version: str
    retrieval_key: str
    filters_key: str

    def key(self) -> str:
        raw = "\x1f".join([CACHE_FORMAT, self.kb_version, self.model_id, self.prompt_version, self.retrieval_key, self.filters_key])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


@dataclass
class CachedAnswer:
    question: str
    answer: str
    mode: str
    sources: list[dict]
    created_at: float = field(default_factory=time.time)
    verification: dict | None = None


@dataclass
class CacheLookup:
    answer: CachedAnswer | None
    tier: str | None  # "l1" | "l2"
    similarity: float | None  # of the served entry; on a miss, of the nearest cached question (None: none)
    guard_refusal: str | None  # why a similar entry was refused
    query_vector: np.ndarray
    latency_ms: float
    match: str | None = None  # "exact" | "semantic"
    cached_question: str | None = None  # the question the served answer was stored for

    @property
    def hit(self) -> bool:
        return self.answer is not None


@dataclass
class _Entry:
    key: str  # L2 entry key (also the L1 key)
    ctx_hash: str
    kb_version: str
    question: str
    norm_key: str
    answer: CachedAnswer
    vector: np.ndarray
    features: Features
    created_at: float

    def to_value(self) -> dict:
        return {
            "fmt": CACHE_FORMAT,
            "ctx": self.ctx_hash,
            "kb": self.kb_version,
            "question": self.question,
            "norm": self.norm_key,
            "answer": asdict(self.answer),
            "vector": self.vector.astype(np.float32).tobytes(),
            "features": self.features,
            "created_at": self.created_at,
        }

    @classmethod
    def from_value(cls, key: str, value: dict) -> "_Entry":
        return cls(
            key=key,
            ctx_hash=value["ctx"],
            kb_version=value["kb"],
            question=value["question"],
            norm_key=value["norm"],
            answer=CachedAnswer(**value["answer"]),
            vector=np.frombuffer(value["vector"], dtype=np.float32).copy(),
            features=value["features"],
            created_at=float(value["created_at"]),
        )


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ResponseCache:
    def __init__(
        self,
        settings,
        embedder,
        *,
        on_event: Callable[[str], None] | None = None,
        vocabulary: KBVocabulary | None = None,
        lexicon: KBLexicon | None = None,
        l1_timer: Callable[[], float] = time.monotonic,
    ):
        """``vocabulary`` supplies the guard per kb version (shared with the answerability
        check); ``lexicon`` instead fixes one guard vocabulary (tests, evaluation)."""
        self.settings = settings
        self.embedder = embedder
        self.on_event = on_event
        self.enabled = bool(settings.cache_enabled)
        self.threshold = float(settings.cache_similarity_threshold)
        self.l2_ttl = float(settings.cache_l2_ttl_seconds)
        self.l1 = MemoryTier(settings.cache_l1_max_items, settings.cache_l1_ttl_seconds, timer=l1_timer)
        self.l2: DiskTier | None = None
        if self.enabled:
            try:
                self.l2 = DiskTier(
                    settings.cache_dir / "responses",
                    size_limit_bytes=int(settings.cache_l2_size_limit_mb) * (1 << 20),
                    ttl_seconds=self.l2_ttl,
                )
            except Exception as exc:  # noqa: BLE001 - run memory-only rather than fail questions
                log.warning("response cache: disk tier unavailable (%s); using memory only", exc)
        if lexicon is not None:
            vocabulary = KBVocabulary.fixed(lexicon)
        self.vocabulary = vocabulary or KBVocabulary(
            settings.manifest_path, settings.kb_dir, settings.cache_dir / "vocabulary", embedder)
        self._indexes: dict[str, SemanticIndex] = {}
        self._ctx_versions: dict[str, str] = {}
        self._state_lock = threading.RLock()
        self._kb_seen: str | None = None
        self._epoch_seen: int | None = None
        self._dim: int | None = None
        # statistics
        self._stats_lock = threading.Lock()
        self._counts: Counter = Counter()
        self._refusals: Counter = Counter()
        self._store_refusals: Counter = Counter()
        self._unflushed: Counter = Counter()
        self._last_flush = time.monotonic()
        self._latencies: deque = deque(maxlen=max(10, int(getattr(settings, "metrics_window", 1000))))
        if self.l2 is not None:  # short-lived processes (CLI) still add their counts to the totals
            atexit.register(_flush_at_exit, weakref.ref(self))

    # ================================================================== public API
    def lookup(self, question: str, ctx: CacheContext) -> CacheLookup:
        t0 = time.perf_counter()
        if not self.enabled:
            vec = self._embed(self.vocabulary.guard(ctx.kb_version).features(question).text or question)
            return CacheLookup(None, None, None, None, vec, (time.perf_counter() - t0) * 1000)
        entry, tier, sim, refusal, refusal_cat, vec, match = self._find(question, ctx)
        latency = (time.perf_counter() - t0) * 1000
        events = []
        with self._stats_lock:
            self._counts["lookups"] += 1
            self._unflushed["lookups"] += 1
            self._latencies.append(latency)
            if entry is not None:
                for name in ("hits", f"hits_{tier}", f"hits_{match}"):
                    self._counts[name] += 1
                    self._unflushed[name] += 1
                events.append(f"hit_{tier}")
            else:
                self._counts["misses"] += 1
                self._unflushed["misses"] += 1
                events.append("miss")
            if refusal_cat:
                self._counts["guard_refusals"] += 1
                self._unflushed["guard_refusals"] += 1
                self._refusals[refusal_cat] += 1
                self._unflushed[f"refusal:{refusal_cat}"] += 1
                events.append("guard_refusal")
        for name in events:
            self._emit(name)
        self._maybe_flush()
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
            self._sync(ctx)
            current = self._current_kb()
            if current is not None and ctx.kb_version != current:
                reason = "stale_kb_version"
        norm = normalize_key(question)
        if reason is None and not norm:
            reason = "empty_question"
        if reason is not None:
            with self._stats_lock:
                self._store_refusals[reason] += 1
                self._unflushed["store_refusals"] += 1
            self._emit("store_refused")
            return False

        features = self.vocabulary.guard(ctx.kb_version).features(question)
        vector = (
            np.asarray(query_vector, dtype=np.float32).reshape(-1)
            if query_vector is not None
            else self._embed(features.text or norm)
        )
        self._dim = self._dim or int(vector.shape[0])
        ctx_hash = ctx.key()
        key = DiskTier.entry_key(ctx_hash, _hash(norm))
        now = time.time()
        entry = _Entry(key, ctx_hash, ctx.kb_version, question, norm, answer, vector, features, now)
        self._ctx_versions[ctx_hash] = ctx.kb_version
        self.l1.set(key, entry)
        if self.l2 is not None:
            try:
                self.l2.put_entry(
                    ctx_hash,
                    key,
                    entry.to_value(),
                    {"op": "add", "key": key, "vector": entry.vector.tobytes(), "features": features, "created_at": now},
                    tag=ctx.kb_version,
                )
            except Exception as exc:  # noqa: BLE001
                self._l2_error("store", exc)
        index = self._index(ctx_hash, vector.shape[0], refresh=False)
        with index.lock:
            index.add(key, vector, features, now)
        with self._stats_lock:
            self._counts["stores"] += 1
            self._unflushed["stores"] += 1
        self._emit("store")
        self._maybe_flush()
        return True

    def remove(self, question: str, ctx: CacheContext) -> bool:
        """Thumbs-down: forget the entry stored for this question *and* the entry a lookup
        of this question would serve (they differ after a semantic hit)."""
        if not self.enabled:
            return False
        ctx_hash = ctx.key()
        norm = normalize_key(question)
        keys = {DiskTier.entry_key(ctx_hash, _hash(norm))}
        entry, *_ = self._find(question, ctx)
        if entry is not None:
            keys.add(entry.key)
        removed = False
        for key in keys:
            removed |= self._delete(ctx_hash, key, ctx.kb_version)
        if removed:
            with self._stats_lock:
                self._counts["removals"] += 1
                self._unflushed["removals"] += 1
            self._emit("remove")
        return removed

    def clear(self) -> None:
        self.l1.clear()
        with self._state_lock:
            for index in self._indexes.values():
                with index.lock:
                    index.clear()
            self._indexes.clear()
            self._kb_seen = None
        if self.l2 is not None:
            try:
                self.l2.clear()
                self._epoch_seen = self.l2.epoch()
            except Exception as exc:  # noqa: BLE001
                self._l2_error("clear", exc)
        with self._stats_lock:
            self._unflushed.clear()
        self._emit("clear")

    def shed_l1(self, fraction: float = 0.5) -> int:
        n = self.l1.shed(fraction)
        with self._stats_lock:
            self._counts["l1_shed"] += n
        if n:
            self._emit("l1_shed")
        return n

    def stats(self) -> dict:
        with self._stats_lock:
            counts = dict(self._counts)
            refusals = dict(self._refusals)
            store_refusals = dict(self._store_refusals)
            lat = np.array(self._latencies, dtype=np.float64)
        lookups = counts.get("lookups", 0)
        hits = counts.get("hits", 0)
        data = {
            "enabled": self.enabled,
            "threshold": self.threshold,
            "lookups": lookups,
            "hits": hits,
            "hits_l1": counts.get("hits_l1", 0),
            "hits_l2": counts.get("hits_l2", 0),
            "hits_exact": counts.get("hits_exact", 0),
            "hits_semantic": counts.get("hits_semantic", 0),
            "misses": counts.get("misses", 0),
            "hit_rate": round(hits / lookups, 4) if lookups else None,
            "guard_refusals": counts.get("guard_refusals", 0),
            "guard_refusals_by_reason": refusals,
            "stores": counts.get("stores", 0),
            "store_refusals": store_refusals,
            "removals": counts.get("removals", 0),
            "kb_evictions": counts.get("kb_evictions", 0),
            "l1_shed": counts.get("l1_shed", 0),
            "l2_errors": counts.get("l2_errors", 0),
            "latency_ms": _percentiles(lat),
            "l1_items": len(self.l1),
            "l1_max_items": self.settings.cache_l1_max_items,
            "l1_evictions": self.l1.evictions,
            "index_entries": sum(len(i) for i in self._indexes.values()),
            "contexts": len(self._indexes),
            "l2_available": self.l2 is not None,
        }
        if self.l2 is not None:
            try:
                self._flush(force=True)
                data["l2_entries"] = self.l2.count_entries()
                data["l2_bytes"] = self.l2.volume_bytes()
                data["kb_version"] = self.l2.current_kb_version()
                data["persisted"] = self.l2.counters()
            except Exception as exc:  # noqa: BLE001
                self._l2_error("stats", exc)
        return data

    def close(self) -> None:
        self._flush(force=True)
        if self.l2 is not None:
            self.l2.close()

    # ================================================================== internals
    def _find(self, question: str, ctx: CacheContext):
        """(entry, tier, similarity, refusal, refusal_category, vector, match) without statistics."""
        guard = self.vocabulary.guard(ctx.kb_version)
        features = guard.features(question)
        norm = normalize_key(question)
        ctx_hash = ctx.key()
        self._ctx_versions.setdefault(ctx_hash, ctx.kb_version)
        self._sync(ctx)
        if self._dim:
            # replay other processes' journal first: a removal elsewhere must also leave our L1
            self._index(ctx_hash, self._dim)
        if norm:
            key = DiskTier.entry_key(ctx_hash, _hash(norm))
            entry = self._from_l1(key, ctx_hash)
            if entry is not None:
                return entry, "l1", 1.0, None, None, entry.vector, "exact"
            entry = self._from_l2(key, ctx_hash)
            if entry is not None:
                self._dim = self._dim or int(entry.vector.shape[0])
                self._index(ctx_hash, self._dim)  # so later journal records (removals) reach this L1 copy
                self.l1.set(key, entry)
                return entry, "l2", 1.0, None, None, entry.vector, "exact"

        vector = self._embed(features.text or question)
        self._dim = self._dim or int(vector.shape[0])
        index = self._index(ctx_hash, vector.shape[0])
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
                self.l1.set(row.key, entry)
            return entry, tier, sim, refusal, refusal_cat, vector, "semantic"
        return None, None, best, refusal, refusal_cat, vector, None

    def _from_l1(self, key: str, ctx_hash: str) -> _Entry | None:
        entry = self.l1.get(key)
        if entry is None:
            return None
        if entry.ctx_hash != ctx_hash or time.time() - entry.created_at > self.l2_ttl:
            self.l1.pop(key)
            return None
        return entry

    def _from_l2(self, key: str, ctx_hash: str) -> _Entry | None:
        if self.l2 is None:
            return None
        try:
            value = self.l2.get(key)
            if value is None or value.get("fmt") != CACHE_FORMAT or value.get("ctx") != ctx_hash:
                return None
            return _Entry.from_value(key, value)
        except Exception as exc:  # noqa: BLE001 - unreadable entry: a miss
            self._l2_error("read", exc)
            return None

    def _delete(self, ctx_hash: str, key: str, kb_version: str) -> bool:
        removed = self.l1.pop(key) is not None
        index = self._indexes.get(ctx_hash)
        if index is not None:
            with index.lock:
                removed |= index.remove(key)
        if self.l2 is not None:
            try:
                removed |= self.l2.delete_entry(ctx_hash, key, tag=kb_version)
            except Exception as exc:  # noqa: BLE001
                self._l2_error("delete", exc)
        return removed

    def _embed(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.encode([text])[0], dtype=np.float32)

    # -- coherence with other processes and kb versions -------------------------------------
    def _current_kb(self) -> str | None:
        if self.l2 is not None:
            try:
                return self.l2.current_kb_version()
            except Exception as exc:  # noqa: BLE001
                self._l2_error("meta", exc)
        return self._kb_seen

    def _sync(self, ctx: CacheContext) -> None:
        if self.l2 is not None:
            try:
                epoch = self.l2.epoch()
            except Exception as exc:  # noqa: BLE001
                self._l2_error("epoch", exc)
                epoch = self._epoch_seen
            if epoch != self._epoch_seen:
                with self._state_lock:
                    if self._epoch_seen is not None:
                        self._drop_local(lambda ctx_hash: True)
                        self._kb_seen = None
                    self._epoch_seen = epoch
        if ctx.kb_version == self._kb_seen:
            return
        with self._state_lock:
            if ctx.kb_version == self._kb_seen:
                return
            evicted = 0
            current = ctx.kb_version
            if self.l2 is not None:
                try:
                    is_new, stale = self.l2.note_kb_version(ctx.kb_version)
                    for version in stale:
                        evicted += self.l2.evict_version(version)
                    current = self.l2.current_kb_version() or ctx.kb_version
                except Exception as exc:  # noqa: BLE001
                    self._l2_error("kb_version", exc)
            dropped = self._drop_local(lambda ctx_hash: self._ctx_versions.get(ctx_hash, current) != current)
            if ctx.kb_version == current:
                self._kb_seen = current
        if evicted or dropped:
            with self._stats_lock:
                self._counts["kb_evictions"] += evicted + dropped
                self._unflushed["kb_evictions"] += evicted + dropped
            self._emit("kb_evicted")

    def _drop_local(self, doomed: Callable[[str], bool]) -> int:
        dropped = self.l1.drop_where(lambda key: doomed(key.split(":")[1]))
        for ctx_hash in [c for c in self._indexes if doomed(c)]:
            index = self._indexes.pop(ctx_hash)
            dropped += len(index)
        return dropped

    def _index(self, ctx_hash: str, dim: int, refresh: bool = True) -> SemanticIndex:
        index = self._indexes.get(ctx_hash)
        if index is None:
            with self._state_lock:
                index = self._indexes.get(ctx_hash)
                if index is None:
                    index = SemanticIndex(dim=int(dim))
                    self._indexes[ctx_hash] = index
        if refresh and self.l2 is not None:
            self._replay(ctx_hash, index)
        return index

    def _replay(self, ctx_hash: str, index: SemanticIndex) -> None:
        """Apply journal records written since this process last looked (any process)."""
        try:
            generation = self.l2.generation(ctx_hash)
        except Exception as exc:  # noqa: BLE001
            self._l2_error("generation", exc)
            return
        if generation == index.seen_generation:
            return
        with index.lock:
            if generation < index.seen_generation:  # counter went backwards: start over
                index.clear()
            start = index.seen_generation + 1
            try:
                for _seq, record in self.l2.journal(ctx_hash, start, generation):
                    if not record:
                        continue  # expired
                    if record.get("op") == "add":
                        vector = np.frombuffer(record["vector"], dtype=np.float32)
                        index.add(record["key"], vector, record["features"], float(record["created_at"]))
                    elif record.get("op") == "del":
                        index.remove(record["key"])
                        self.l1.pop(record["key"])
                index.seen_generation = generation
            except Exception as exc:  # noqa: BLE001
                self._l2_error("journal", exc)

    # -- statistics --------------------------------------------------------------------------
    def _emit(self, name: str) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(name)
        except Exception:  # noqa: BLE001 - monitoring must not break answering
            log.debug("on_event(%s) failed", name, exc_info=True)

    def _l2_error(self, where: str, exc: Exception) -> None:
        log.warning("response cache: disk tier error during %s: %s", where, exc)
        with self._stats_lock:
            self._counts["l2_errors"] += 1
        self._emit("l2_error")

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= 10.0:
            self._flush()

    def _flush(self, force: bool = False) -> None:
        if self.l2 is None:
            return
        with self._stats_lock:
            if not self._unflushed or (not force and time.monotonic() - self._last_flush < 10.0):
                return
            deltas = dict(self._unflushed)
            self._unflushed.clear()
            self._last_flush = time.monotonic()
        try:
            self.l2.add_counters(deltas)
        except Exception as exc:  # noqa: BLE001
            self._l2_error("counters", exc)


def _flush_at_exit(ref) -> None:
    cache = ref()
    if cache is not None:
        try:
            cache._flush(force=True)
        except Exception:  # noqa: BLE001 - exiting anyway
            pass


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(values.size),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "mean": round(float(values.mean()), 3),
    }
