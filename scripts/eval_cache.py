#!/usr/bin/env python
"""Evaluate the semantic response cache on labelled question pairs - through the real code path.

Usage::

    python scripts/eval_cache.py [PAIRS.jsonl] [--threshold 0.85] [--show-errors] [--no-collisions]

Each line of PAIRS is ``{"cached": ..., "incoming": ..., "should_hit": bool,
"category": ..., "split": "dev"|"test"}``. For every pair the cached question is
stored in a real ``ResponseCache`` (temporary data dir, real embedder, guard
vocabulary built from the default knowledge base) under a context of its own,
so pairs cannot see each other, and the incoming question is looked up.

Printed: precision of hits, recall on should-hit pairs, wrong hits, a per-
category breakdown for the dev and test splits, a threshold sweep (with the
guard, and cosine similarity alone for comparison), and a leave-one-out
collision check on the distinct questions of ``tests/data/kb_questions.jsonl``
and ``fema_questions.jsonl`` (every hit there is wrong). The last line is one
JSON object for the configured threshold over all pairs.

The sweep re-uses one pass run at threshold 0 (the similarity of the best
candidate and the guard's verdict are both reported by ``lookup``): with one
entry per context, a hit at threshold t is exactly "guard accepted and
similarity >= t". The configured threshold is also run as its own pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

from neoc_assistant.cache.embedding_cache import EmbeddingCache  # noqa: E402
from neoc_assistant.reading.lexicon import KBLexicon, wordpiece_common_words  # noqa: E402
from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402
from neoc_assistant.store.embeddings import Embedder  # noqa: E402
from neoc_assistant.store.embedders import open_embedder  # noqa: E402

SWEEP = [0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def load_pairs(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            row.setdefault("id", f"line-{n}")
            row.setdefault("split", "all")
            rows.append(row)
    return rows


def ctx_for(tag: str) -> CacheContext:
    return CacheContext("eval-kb", "eval-model", "v1", "eval", tag)


def run_pairs(cache: ResponseCache, rows: list[dict], embedder: Embedder) -> list[dict]:
    answer = lambda q: CachedAnswer(q, f"answer to: {q}", "llm", [{"source": "eval.md"}], time.time())  # noqa: E731
    results = []
    for row in rows:
        ctx = ctx_for(f"pair={row['id']}")
        cache.store(row["cached"], ctx, answer(row["cached"]))
        res = cache.lookup(row["incoming"], ctx)
        results.append(
            {
                **row,
                "hit": res.answer is not None,
                "match": res.match,
                "similarity": res.similarity,
                "refusal": res.guard_refusal,
                "latency_ms": res.latency_ms,
            }
        )
    return results


def score(results: list[dict], threshold: float | None = None, guard: bool = True) -> dict:
    tp = fp = fn = 0
    for r in results:
        if threshold is None:
            hit = r["hit"]
        else:
            sim = r["similarity"] if r["similarity"] is not None else -1.0
            accepted = r["hit"] if guard else True
            hit = accepted and sim >= threshold
        if hit and r["should_hit"]:
            tp += 1
        elif hit and not r["should_hit"]:
            fp += 1
        elif not hit and r["should_hit"]:
            fn += 1
    return {
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "wrong_hits": fp,
        "hits": tp + fp,
        "pairs": len(results),
    }


def print_breakdown(title: str, results: list[dict]) -> None:
    s = score(results)
    print(f"\n== {title}: {s['pairs']} pairs - precision {s['precision']:.3f}, recall {s['recall']:.3f}, "
          f"wrong hits {s['wrong_hits']}")
    cats: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        cats[r["category"]].append(r)
    print(f"   {'category':<18}{'expect':>7}{'pairs':>7}{'hits':>6}{'correct':>9}")
    for cat, rs in sorted(cats.items(), key=lambda kv: (not kv[1][0]["should_hit"], kv[0])):
        expect = "hit" if rs[0]["should_hit"] else "miss"
        hits = sum(r["hit"] for r in rs)
        correct = sum(r["hit"] == r["should_hit"] for r in rs)
        print(f"   {cat:<18}{expect:>7}{len(rs):>7}{hits:>6}{correct:>6}/{len(rs):<3}")
    non_loose = [r for r in results if r["category"] != "loose_paraphrase"]
    print(f"   recall without loose paraphrases: {score(non_loose)['recall']:.3f}")


def print_sweep(results_by_split: dict[str, list[dict]]) -> None:
    print("\n== threshold sweep (guard + similarity >= t)  |  similarity alone, no guard")
    head = "   t     "
    for split in results_by_split:
        head += f"| {split:<5} P     R     wrong "
    head += "|| no guard: "
    for split in results_by_split:
        head += f"{split:<5} P     R     wrong  "
    print(head)
    for t in SWEEP:
        line = f"   {t:<5.2f} "
        for rs in results_by_split.values():
            s = score(rs, t, guard=True)
            line += f"| {'':<5} {s['precision']:.3f} {s['recall']:.3f} {s['wrong_hits']:>4}  "
        line += "||           "
        for rs in results_by_split.values():
            s = score(rs, t, guard=False)
            line += f"{'':<5} {s['precision']:.3f} {s['recall']:.3f} {s['wrong_hits']:>4}   "
        print(line)


def collisions(cache: ResponseCache, files: list[Path]) -> tuple[int, int, list[str]]:
    """Leave-one-out: each distinct question is looked up against all the *other* ones.

    All questions are stored in one context; before each lookup the question's own
    entry is taken out (and put back afterwards), so only another question can answer.
    """
    from neoc_assistant.language.discourse import normalize_key
    from neoc_assistant.cache.entries import text_hash
    from neoc_assistant.cache.tiers import DiskTier

    questions: list[str] = []
    for f in files:
        if f.exists():
            questions += [json.loads(line)["text"] for line in f.read_text().splitlines() if line.strip()]
    ctx = ctx_for("loo")
    answer = lambda q: CachedAnswer(q, "x", "llm", [{"source": "eval.md"}], time.time())  # noqa: E731
    vectors = cache.embedder.encode_queries([cache.vocabulary.guard(ctx.kb_version).features(q).text for q in questions])
    for q, v in zip(questions, vectors):
        cache.store(q, ctx, answer(q), query_vector=v)
    wrong = []
    for q, v in zip(questions, vectors):
        key = DiskTier.entry_key(ctx.key(), text_hash(normalize_key(q)))
        cache._delete(ctx.key(), key, ctx.kb_version)
        res = cache.lookup(q, ctx)
        if res.answer is not None:
            wrong.append(f"{q!r} -> {res.cached_question!r} ({res.similarity:.3f})")
        cache.store(q, ctx, answer(q), query_vector=v)
    return len(questions), len(wrong), wrong


def agreement(store: Path, embedder: Embedder):
    """The production corroboration of relaxed matches: retrieval over ``knowledge_base/`` (None: off)."""
    if str(store).lower() == "none":
        print("# retrieval agreement: off (relaxed matches are refused)")
        return None
    from neoc_assistant.cache.agreement import RetrievalAgreement
    from neoc_assistant.container import Container

    s = Settings(data_dir=store, kb_dir=ROOT / "knowledge_base")
    container = Container(s, embedder=embedder)
    if container.manifest.counts()["chunks"] == 0:
        container.ingestor.ingest([ROOT / "knowledge_base"], show_progress=False)
    print(f"# retrieval agreement over {store}: {container.manifest.counts()}")
    return RetrievalAgreement(container.retriever, s.cache.agreement_top_n, s.cache.agreement_min_shared)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", nargs="?", default=str(ROOT / "tests/data/cache_pairs.jsonl"))
    ap.add_argument("--threshold", type=float, default=None, help="default: the cache.similarity_threshold setting")
    ap.add_argument("--show-errors", action="store_true", help="list wrong hits and missed paraphrases")
    ap.add_argument("--no-collisions", action="store_true", help="skip the leave-one-out collision check")
    ap.add_argument("--kb-store", type=Path, default=Path("/tmp/neoc-eval/cache-kb"),
                    help="store of knowledge_base/ for the retrieval-agreement evidence of relaxed matches "
                         "(ingested on first use); 'none': no agreement, relaxed matches are refused")
    args = ap.parse_args(argv)

    rows = load_pairs(Path(args.pairs))
    base = Settings()
    threshold = args.threshold if args.threshold is not None else base.cache.similarity_threshold
    with tempfile.TemporaryDirectory(prefix="neoc-eval-cache-") as tmp:
        # The production embedding cache: every text is embedded once, in batches, up front;
        # the cache's own lookups then find the vectors there (same code path, much faster).
        emb_settings = Settings(data_dir=Path(tmp) / "embeddings")
        embedder = open_embedder(emb_settings.embedding,  # embedding.model chooses it
                                cache=EmbeddingCache(emb_settings.paths.cache_dir / "embeddings", memory_items=20_000))
        common = wordpiece_common_words(embedder)
        lexicon = KBLexicon.from_paths([ROOT / "knowledge_base"], common)
        from neoc_assistant.reading.guard import Guard

        guard = Guard(lexicon)
        texts = {guard.features(r[k]).text for r in rows for k in ("cached", "incoming")}
        for f in (ROOT / "tests/data/kb_questions.jsonl", ROOT / "tests/data/fema_questions.jsonl"):
            if f.exists():
                texts |= {guard.features(json.loads(line)["text"]).text for line in f.read_text().splitlines() if line.strip()}
        embedder.encode_queries(sorted(texts))  # questions: the side the cache embeds them on

        corroborate = agreement(args.kb_store, embedder)

        def make(t: float, name: str) -> ResponseCache:
            s = Settings(data_dir=Path(tmp) / name, kb_dir=ROOT / "knowledge_base", cache_similarity_threshold=t,
                         cache_l1_max_items=100_000)
            return ResponseCache(s.cache, s.paths.cache_dir / "responses", embedder, lexicon=lexicon,
                                 corroborate=corroborate)

        t0 = time.perf_counter()
        sweep_results = run_pairs(make(0.0, "sweep"), rows, embedder)
        configured = run_pairs(make(threshold, "configured"), rows, embedder)
        seconds = time.perf_counter() - t0

        splits = sorted({r["split"] for r in rows})
        counts = ", ".join(f"{s}: {sum(r['split'] == s for r in rows)}" for s in splits)
        print(f"pairs: {len(rows)} ({counts}); "
              f"should hit: {sum(r['should_hit'] for r in rows)}; threshold {threshold}; "
              f"guard vocabulary: {lexicon.summary()}")
        for split in splits:
            print_breakdown(f"{split} split @ threshold {threshold}", [r for r in configured if r["split"] == split])
        print_breakdown(f"all pairs @ threshold {threshold}", configured)
        by_split = {s: [r for r in sweep_results if r["split"] == s] for s in splits}
        by_split["all"] = sweep_results
        print_sweep(by_split)

        if args.show_errors:
            print("\n== wrong hits")
            for r in configured:
                if r["hit"] and not r["should_hit"]:
                    print(f"   [{r['split']}/{r['category']}] {r['similarity']:.3f} {r['cached']!r} | {r['incoming']!r}")
            print("== missed should-hit pairs")
            for r in configured:
                if not r["hit"] and r["should_hit"]:
                    sim = "-" if r["similarity"] is None else f"{r['similarity']:.3f}"
                    print(f"   [{r['split']}/{r['category']}] sim {sim} refusal {r['refusal']}: "
                          f"{r['cached']!r} | {r['incoming']!r}")

        coll = None
        if not args.no_collisions:
            c = make(threshold, "collisions")
            n, wrong, examples = collisions(c, [ROOT / "tests/data/kb_questions.jsonl", ROOT / "tests/data/fema_questions.jsonl"])
            n0, wrong0, examples0 = collisions(
                make(0.0, "collisions0"),
                [ROOT / "tests/data/kb_questions.jsonl", ROOT / "tests/data/fema_questions.jsonl"],
            )
            print(f"\n== leave-one-out collisions among distinct questions: {wrong} wrong hits in {n} lookups "
                  f"@ {threshold}; {wrong0} in {n0} @ threshold 0 (guard alone)")
            for e in examples[:10]:
                print(f"   {e}")
            for e in examples0[:10]:
                print(f"   (threshold 0) {e}")
            coll = wrong

        lat = sorted(r["latency_ms"] for r in configured)
        print(f"\nlookup latency over the pairs (query vectors from the embedding cache): p50 {lat[len(lat) // 2]:.1f} ms, "
              f"p95 {lat[int(len(lat) * 0.95)]:.1f} ms; eval took {seconds:.1f}s")

    final = score(configured)
    final.update({
        "threshold": threshold,
        **{split: score([r for r in configured if r["split"] == split]) for split in sorted({r["split"] for r in configured})},
        "collision_wrong_hits": coll,
    })
    print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
