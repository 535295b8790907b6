"""ResponseCache with the real embedder: tiers, TTLs, eviction, refusals, invalidation, stats."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from neoc_assistant.reading.lexicon import KBLexicon, wordpiece_common_words
from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache
from neoc_assistant.settings import Settings

KB = Path(__file__).resolve().parents[2] / "knowledge_base"
CTX = CacheContext("kb-1", "model-a", "v1", "k=5", "")
Q_WARD5 = "What are the evacuation routes for ward 5?"


@pytest.fixture(scope="module")
def lexicon(embedder) -> KBLexicon:
    return KBLexicon.from_paths([KB], wordpiece_common_words(embedder))


@pytest.fixture
def make_cache(tmp_path, embedder, lexicon):
    def _make(name: str = "data", **overrides) -> ResponseCache:
        timer = overrides.pop("l1_timer", time.monotonic)
        s = Settings(data_dir=tmp_path / name, kb_dir=tmp_path / "kb", models_dir=tmp_path / "models", **overrides)
        return ResponseCache(s.cache, s.paths.cache_dir / "responses", embedder, lexicon=lexicon, l1_timer=timer)

    return _make


def answer(question: str, mode: str = "llm", sources=None) -> CachedAnswer:
    return CachedAnswer(question, f"Grounded answer to: {question}", mode,
                        [{"source": "09-evacuation-procedures.md"}] if sources is None else sources, time.time())


def test_exact_hit_in_l1_then_l2_after_restart_with_promotion(make_cache, embedder):
    c1 = make_cache()
    assert c1.store(Q_WARD5, CTX, answer(Q_WARD5))
    hit = c1.lookup("  what are the EVACUATION routes for ward 5 ", CTX)
    assert hit.answer is not None and hit.tier == "l1" and hit.match == "exact"
    assert hit.answer.answer == f"Grounded answer to: {Q_WARD5}"
    assert hit.query_vector.shape == (embedder.dimension,)

    c2 = make_cache()  # a new process: empty L1, same disk
    first = c2.lookup(Q_WARD5, CTX)
    assert first.tier == "l2" and first.answer.answer == hit.answer.answer
    np.testing.assert_allclose(first.query_vector, hit.query_vector, atol=1e-6)
    assert c2.lookup(Q_WARD5, CTX).tier == "l1"  # promoted
    s = c2.stats()
    assert (s["hits_l1"], s["hits_l2"], s["misses"]) == (1, 1, 0)


def test_semantic_hit_and_guard_refusal(make_cache, embedder):
    cache = make_cache(cache_similarity_threshold=0.8)
    cache.store(Q_WARD5, CTX, answer(Q_WARD5))
    para = cache.lookup("Can you tell me the evacuation routes for ward 5 please", CTX)
    assert para.answer is not None and para.match == "semantic" and para.similarity >= 0.8
    assert para.cached_question == Q_WARD5

    near = cache.lookup("What are the evacuation routes for ward 6?", CTX)
    assert near.answer is None
    assert near.similarity is not None and near.similarity >= 0.85  # the embedding alone would have served it
    assert near.guard_refusal.startswith("number")
    # the vector is returned on a miss too, so retrieval does not embed again
    expected = embedder.encode(["what are the evacuation routes for ward 6"])[0]
    np.testing.assert_allclose(near.query_vector, expected, atol=1e-5)
    s = cache.stats()
    assert s["guard_refusals"] == 1 and s["guard_refusals_by_reason"] == {"number": 1}
    assert s["hits_semantic"] == 1 and s["misses"] == 1


def test_context_is_part_of_the_key(make_cache):
    cache = make_cache()
    cache.store(Q_WARD5, CTX, answer(Q_WARD5))
    for change in ({"model_id": "model-b"}, {"prompt_version": "v2"}, {"retrieval_key": "k=8"}, {"filters_key": "src=a"}):
        assert cache.lookup(Q_WARD5, dataclasses.replace(CTX, **change)).answer is None, change
    assert cache.lookup(Q_WARD5, CTX).answer is not None


def test_l1_ttl_expiry_falls_back_to_l2(make_cache):
    now = [1000.0]
    cache = make_cache(cache_l1_ttl_seconds=10, l1_timer=lambda: now[0])
    cache.store(Q_WARD5, CTX, answer(Q_WARD5))
    assert cache.lookup(Q_WARD5, CTX).tier == "l1"
    now[0] += 11
    assert cache.lookup(Q_WARD5, CTX).tier == "l2"
    assert cache.lookup(Q_WARD5, CTX).tier == "l1"


def test_l2_ttl_expiry(make_cache):
    cache = make_cache(cache_l2_ttl_seconds=0.5)
    cache.store(Q_WARD5, CTX, answer(Q_WARD5))
    assert cache.lookup(Q_WARD5, CTX).answer is not None
    time.sleep(0.7)
    assert cache.lookup(Q_WARD5, CTX).answer is None  # L1 copy honours the L2 lifetime too
    assert make_cache().lookup(Q_WARD5, CTX).answer is None
    assert cache.lookup("Tell me the evacuation routes for ward 5", CTX).answer is None  # semantic path too


def test_l1_lru_eviction(make_cache):
    cache = make_cache(cache_l1_max_items=2)
    qs = ["Who activates Level 2?", "When is the daily shelter report due?", "What goes in a go-bag?"]
    for q in qs:
        cache.store(q, CTX, answer(q))
    assert cache.lookup(qs[2], CTX).tier == "l1"
    assert cache.lookup(qs[1], CTX).tier == "l1"
    assert cache.lookup(qs[0], CTX).tier == "l2"  # least recently used: evicted from L1, still on disk
    assert len(cache.l1) == 2


@pytest.mark.parametrize(
    "mode, text, sources",
    [
        ("not-found", "Not in the knowledge base", None),
        ("error", "boom", None),
        ("cancelled", "partial ans", None),
        ("llm", "   ", None),
        ("llm", "An answer without citations", []),
    ],
)
def test_only_grounded_answers_are_stored(make_cache, mode, text, sources):
    cache = make_cache()
    a = answer(Q_WARD5, mode=mode, sources=sources)
    a.answer = text
    assert cache.store(Q_WARD5, CTX, a) is False
    assert cache.lookup(Q_WARD5, CTX).answer is None
    assert sum(cache.stats()["store_refusals"].values()) == 1


def test_thumbs_down_removes_the_served_entry(make_cache):
    cache = make_cache(cache_similarity_threshold=0.8)
    cache.store(Q_WARD5, CTX, answer(Q_WARD5))
    para = "Could you tell me the evacuation routes for ward 5?"
    assert cache.lookup(para, CTX).answer is not None
    assert cache.remove(para, CTX) is True
    assert cache.lookup(para, CTX).answer is None
    assert cache.lookup(Q_WARD5, CTX).answer is None
    assert make_cache().lookup(Q_WARD5, CTX).answer is None  # gone from disk too
    assert cache.remove(para, CTX) is False


def test_shed_clear_and_stats(make_cache):
    cache = make_cache()
    qs = [f"What is the stock level in warehouse {i}?" for i in range(10)]
    for q in qs:
        cache.store(q, CTX, answer(q))
    assert cache.shed_l1(0.5) == 5
    assert len(cache.l1) == 5
    assert all(cache.lookup(q, CTX).answer is not None for q in qs)  # shed from memory only
    s = cache.stats()
    assert s["l2_entries"] == 10 and s["hits"] == 10 and s["hit_rate"] == 1.0
    assert s["latency_ms"]["p50"] is not None and s["latency_ms"]["p99"] >= s["latency_ms"]["p50"]
    assert s["persisted"]["hits"] == 10 and s["persisted"]["stores"] == 10
    cache.clear()
    assert cache.lookup(qs[0], CTX).answer is None
    assert cache.stats()["l2_entries"] == 0
    other = make_cache()
    assert other.lookup(qs[1], CTX).answer is None


def test_clear_in_one_process_drops_memory_copies_elsewhere(make_cache):
    a, b = make_cache(), make_cache()
    a.store(Q_WARD5, CTX, answer(Q_WARD5))
    assert b.lookup(Q_WARD5, CTX).tier == "l2"
    assert b.lookup(Q_WARD5, CTX).tier == "l1"
    a.clear()
    assert b.lookup(Q_WARD5, CTX).answer is None  # b's L1 copy was dropped via the epoch


def test_disabled_cache_still_returns_the_vector(make_cache, embedder):
    cache = make_cache(cache_enabled=False)
    assert cache.store(Q_WARD5, CTX, answer(Q_WARD5)) is False
    res = cache.lookup(Q_WARD5, CTX)
    assert res.answer is None and res.query_vector.shape == (embedder.dimension,)


def test_reingest_invalidates_and_reclaims(make_container, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "routes.md").write_text("# Evacuation routes\n\nWard 5 uses the school road to the temple assembly point.\n")
    (kb / "levels.md").write_text("# Activation levels\n\nLevel 2 is Partial Activation, authorised by the NEOC Chief.\n")
    container = make_container()
    container.assistant.ingest([kb], show_progress=False)
    v1 = container.manifest.kb_version()
    cache = container.response_cache
    ctx1 = CacheContext(v1, "model-a", "v1", "k=5", "")
    assert cache.store(Q_WARD5, ctx1, answer(Q_WARD5))
    assert cache.lookup(Q_WARD5, ctx1).answer is not None
    assert "ward" in cache.vocabulary.guard(v1).lex.vocab  # guard vocabulary came from the manifest

    (kb / "routes.md").write_text("# Evacuation routes\n\nWard 5 now uses the ring road to the school ground.\n")
    container.assistant.ingest([kb], show_progress=False)
    v2 = container.manifest.kb_version()
    assert v2 != v1
    ctx2 = dataclasses.replace(ctx1, kb_version=v2)
    assert cache.lookup(Q_WARD5, ctx2).answer is None  # unreachable at once
    assert cache.stats()["l2_entries"] == 0  # and reclaimed from disk
    assert cache.lookup(Q_WARD5, ctx1).answer is None  # also gone for a straggler with the old version
    assert cache.store(Q_WARD5, ctx1, answer(Q_WARD5)) is False  # nor may a straggler store
    assert cache.store(Q_WARD5, ctx2, answer(Q_WARD5)) is True
    assert cache.lookup(Q_WARD5, ctx2).tier == "l1"
    assert cache.stats()["kb_evictions"] >= 1
