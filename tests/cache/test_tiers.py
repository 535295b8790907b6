"""The in-memory tiers on their own: the semantic index and the L1 LRU/TTL tier."""

from __future__ import annotations

import numpy as np

from neoc_assistant.cache.tiers import MemoryTier, SemanticIndex


def _unit(rng, dim=16):
    v = rng.normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_semantic_index_search_remove_compact():
    rng = np.random.default_rng(0)
    idx = SemanticIndex(dim=16)
    vecs = {f"k{i}": _unit(rng) for i in range(600)}  # grows the matrix several times
    for key, v in vecs.items():
        idx.add(key, v, features=key, created_at=0.0)
    found, best = idx.search(vecs["k123"], threshold=0.999, k=5)
    assert [r.key for r, _ in found] == ["k123"] and abs(best - 1.0) < 1e-5
    for i in range(0, 600, 3):
        idx.remove(f"k{i}")
    assert len(idx.rows) == 600  # a third dead: not worth compacting yet
    for i in range(1, 600, 3):
        idx.remove(f"k{i}")
    assert len(idx) == 200 and len(idx.rows) < 600  # more than half dead: compacted
    assert len(idx.positions) == 200 and int(idx.live.sum()) == 200
    found, _ = idx.search(vecs["k122"], threshold=0.999, k=5)
    assert [r.key for r, _ in found] == ["k122"]
    assert idx.search(vecs["k123"], threshold=0.999, k=5)[0] == []  # removed rows are never returned
    # re-adding a key replaces its vector in place
    idx.add("k122", vecs["k125"], features="new", created_at=0.0)
    found, _ = idx.search(vecs["k125"], threshold=0.999, k=5)
    assert {r.key for r, _ in found} == {"k122", "k125"} and len(idx) == 200
    # entries older than max_age are skipped; k bounds the result
    assert idx.search(vecs["k125"], threshold=-1.0, k=3)[0].__len__() == 3
    assert idx.search(vecs["k125"], threshold=-1.0, k=3, max_age=1.0)[0] == []


def test_memory_tier_lru_ttl_and_shed():
    now = [0.0]
    tier = MemoryTier(max_items=3, ttl_seconds=10, timer=lambda: now[0])
    for k in "abc":
        tier.set(k, k.upper())
    tier.get("a")  # a is now the most recently used
    tier.set("d", "D")  # evicts b
    assert tier.get("b") is None and tier.get("a") == "A" and tier.evictions == 1
    now[0] = 11
    assert tier.get("a") is None and len(tier) == 0  # expired
    for k in "wxyz":
        tier.set(k, k)
    assert tier.shed(0.5) == 1 and len(tier) == 2  # 3 items (z evicted w), shed half rounded down
