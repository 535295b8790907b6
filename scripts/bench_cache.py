#!/usr/bin/env python
"""Lookup latency of the response cache with 10,000 cached questions.

Usage::

    python scripts/bench_cache.py [--entries 10000] [--lookups 300] [--e2e]

Builds a real ``ResponseCache`` (temporary data dir, real embedder and guard
vocabulary) holding ``--entries`` distinct duty-officer questions generated
from knowledge-base topics, places and numbers, then times ``lookup`` for:

* ``exact_l1``    - a question asked before, answered from memory;
* ``exact_l2``    - the same in a fresh cache object (a restarted process): disk;
* ``semantic``    - a reworded question (served after the guard accepted it);
* ``near_miss``   - same words, another number (similar, refused by the guard);
* ``miss``        - a question not in the cache;

each twice: ``cold`` (the query text was never embedded: includes one model
call) and ``warm`` (its vector is in the embedding cache, so the figure is the
cache's own overhead: normalisation, one matrix-vector product over all
entries, the guard, SQLite reads). Also reported: store latency and the time a
new process needs to load the semantic index of 10,000 entries from the
journal. ``--e2e`` adds ``Assistant.ask`` cached vs uncached when a GGUF
model is installed. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

import numpy as np  # noqa: E402

from neoc_assistant.cache.embedding_cache import EmbeddingCache  # noqa: E402
from neoc_assistant.reading.lexicon import KBLexicon, wordpiece_common_words  # noqa: E402
from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402
from neoc_assistant.store.embeddings import Embedder  # noqa: E402

TOPICS = [
    "evacuation route", "assembly point", "shelter capacity", "relief stock", "danger level", "warning level",
    "rainfall threshold", "family kit stock", "water point", "toilet count", "duty roster", "radio channel",
    "satellite phone", "generator fuel", "sitrep deadline", "rapid response team", "damage assessment",
    "cold wave alert", "fire detection count", "landslide watch", "helicopter request", "hygiene kit stock",
    "call-down list", "road blockage", "aftershock advisory", "cholera case count", "dengue case count",
    "winterisation kit stock", "warehouse capacity", "casualty figure",
]
PLACES = [
    "Kathmandu", "Pokhara", "Lalitpur", "Bhaktapur", "Chitwan", "Sunsari", "Saptari", "Bardiya", "Kailali",
    "Jumla", "Humla", "Dolpa", "Gorkha", "Sindhupalchok", "Dolakha", "Nuwakot", "Kaski", "Myagdi", "Jajarkot",
    "Nepalgunj", "Dhangadhi", "Itahari", "Biratnagar", "Janakpur", "Rajbiraj", "Surkhet", "Makwanpur", "Banke",
]
FORMS = ["What is the {t} for ward {n} in {p}?", "Who reports the {t} for ward {n} in {p}?",
         "When is the {t} for ward {n} in {p} updated?"]


def questions(n: int, seed: int = 7) -> list[str]:
    combos = list(itertools.product(FORMS, TOPICS, PLACES, range(1, 16)))
    random.Random(seed).shuffle(combos)
    if n > len(combos):
        raise SystemExit(f"at most {len(combos)} distinct questions")
    return [f.format(t=t, p=p, n=k) for f, t, p, k in combos[:n]]


def pct(values: list[float]) -> dict:
    a = np.array(values)
    return {"p50": round(float(np.percentile(a, 50)), 3), "p95": round(float(np.percentile(a, 95)), 3),
            "p99": round(float(np.percentile(a, 99)), 3), "n": len(values)}


def timed(cache: ResponseCache, qs: list[str], ctx: CacheContext, expect_hit: bool | None) -> tuple[list[float], int]:
    lat, wrong = [], 0
    for q in qs:
        t0 = time.perf_counter()
        res = cache.lookup(q, ctx)
        lat.append((time.perf_counter() - t0) * 1000)
        if expect_hit is not None and (res.answer is not None) != expect_hit:
            wrong += 1
    return lat, wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=300)
    ap.add_argument("--e2e", action="store_true", help="also time Assistant.ask cached vs uncached (needs a GGUF model)")
    args = ap.parse_args(argv)

    results: dict = {"entries": args.entries}
    with tempfile.TemporaryDirectory(prefix="neoc-bench-cache-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", kb_dir=ROOT / "knowledge_base",
                            cache_l1_max_items=max(1000, args.entries))
        emb_cache = EmbeddingCache(settings.paths.cache_dir / "embeddings")
        embedder = Embedder(settings.embedding, cache=emb_cache)
        t0 = time.perf_counter()
        lexicon = KBLexicon.from_paths([ROOT / "knowledge_base"], wordpiece_common_words(embedder))
        cache = ResponseCache(settings.cache, settings.paths.cache_dir / "responses", embedder, lexicon=lexicon)
        ctx = CacheContext("bench-kb", "bench-model", "v1", "k=5", "")
        qs = questions(args.entries + 2 * args.lookups)
        stored, unseen = qs[: args.entries], qs[args.entries :]
        guard = cache.vocabulary.guard(ctx.kb_version)
        texts = [guard.features(q).text for q in stored]
        print(f"embedding {len(texts)} questions ...", file=sys.stderr)
        t_emb = time.perf_counter()
        vectors = embedder.model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        results["embed_per_question_ms_batched"] = round((time.perf_counter() - t_emb) * 1000 / len(texts), 3)
        print(f"storing {len(stored)} answers ...", file=sys.stderr)
        store_lat = []
        for q, v in zip(stored, vectors):
            s0 = time.perf_counter()
            cache.store(q, ctx, CachedAnswer(q, "answer " * 80, "llm", [{"source": "bench.md", "page": 1}]), query_vector=v)
            store_lat.append((time.perf_counter() - s0) * 1000)
        results["store_ms"] = pct(store_lat)
        results["setup_s"] = round(time.perf_counter() - t0, 1)

        rnd = random.Random(3)
        sample = rnd.sample(stored, args.lookups)
        reworded = [q.replace("?", " exactly?") for q in sample]  # not the same key: semantic path + guard
        near = [q.replace(f"ward {q.split('ward ')[1].split()[0]}", "ward 99") for q in sample]
        misses = unseen[: args.lookups]

        # cold: texts never embedded before (one model call per lookup); warm: the same again
        for name, batch, expect in (("semantic", reworded, True), ("near_miss", near, False), ("miss", misses, False)):
            lat, wrong = timed(cache, batch, ctx, expect)
            results[f"{name}_cold_ms"] = pct(lat)
            results[f"{name}_errors"] = wrong
            lat, wrong = timed(cache, batch, ctx, expect)
            results[f"{name}_warm_ms"] = pct(lat)
            results[f"{name}_errors"] += wrong
        lat, wrong = timed(cache, sample, ctx, True)
        results["exact_l1_ms"] = pct(lat)
        results["exact_l1_errors"] = wrong

        # a restarted process: empty memory, same disk
        restarted = ResponseCache(settings.cache, settings.paths.cache_dir / "responses", embedder, lexicon=lexicon)
        lat, wrong = timed(restarted, sample[:100], ctx, True)
        results["exact_l2_first_lookup_ms"] = round(lat[0], 1)  # includes loading the index from the journal
        results["exact_l2_ms"] = pct(lat[1:])
        results["exact_l2_errors"] = wrong
        t_idx = time.perf_counter()
        fresh = ResponseCache(settings.cache, settings.paths.cache_dir / "responses", embedder, lexicon=lexicon)
        fresh._index(ctx.key(), vectors.shape[1])
        results["index_load_s"] = round(time.perf_counter() - t_idx, 2)
        lat, wrong = timed(fresh, reworded[:100], ctx, True)
        results["semantic_after_restart_ms"] = pct(lat)
        results["semantic_after_restart_errors"] = wrong
        results["l2_bytes"] = cache.stats().get("l2_bytes")

        if args.e2e:
            results["e2e"] = e2e(Path(tmp))

    for key, value in results.items():
        print(f"{key:<34}{value}")
    print(json.dumps(results))
    return 0


def e2e(tmp: Path) -> dict:
    """Assistant.ask on the default knowledge base: first (uncached) vs repeated (cached)."""
    from neoc_assistant.container import Container

    settings = Settings(data_dir=tmp / "e2e")
    if settings.generation.resolved_model_path() is None:
        return {"skipped": "no GGUF model installed"}
    service = Container(settings).assistant
    service.ingest(show_progress=False)
    qs = [json.loads(line)["text"] for line in (ROOT / "tests/data/kb_questions.jsonl").read_text().splitlines()[:10]]
    first, again, modes = [], [], []
    for q in qs:
        t0 = time.perf_counter()
        a = service.ask(q, use_cache=True)
        first.append((time.perf_counter() - t0) * 1000)
        modes.append(a.mode)
    tiers = []
    for _ in range(5):
        for q in qs:
            t0 = time.perf_counter()
            a = service.ask(q, use_cache=True)
            again.append((time.perf_counter() - t0) * 1000)
            tiers.append(a.cache_tier if a.cached else "miss")
    cached, uncached = pct(again), pct(first)
    return {
        "uncached_ms": uncached,
        "cached_ms": cached,
        "speedup_p50": round(uncached["p50"] / cached["p50"], 1) if cached.get("p50") else None,
        "modes": modes,
        "repeat_outcomes": {t: tiers.count(t) for t in set(tiers)},
    }


if __name__ == "__main__":
    sys.exit(main())
