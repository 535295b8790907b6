#!/usr/bin/env python3
"""Choose fusion / fallback-rerank / MMR parameters on a BEIR *train* split.

Runs the real candidate generators once per query (Chroma HNSW and the FTS5
BM25 index of a store built by ``eval_retrieval.py``), records for every
candidate the exact bi-encoder cosine (stored vector) and the exact BM25
score, then replays the fusion and rerank formulas of
``neoc_assistant/retrieve/retriever.py`` offline over a parameter grid, so a
grid of hundreds of settings costs seconds. Prints nDCG@10 per setting, best
first, and one JSON line with the best of each family. The chosen values then
go into ``settings.py`` and are confirmed end-to-end (and on test) with
``eval_retrieval.py``.

    python scripts/tune_retrieval.py /work/shared/eval/scifact --split train \\
        --data-dir /tmp/neoc-eval/scifact
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import pickle
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_retrieval import doc_id_from_source, ndcg_at, read_jsonl, read_qrels, recall_at  # noqa: E402

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.retrieve.lexical import plan_lexical  # noqa: E402
from neoc_assistant.retrieve.retriever import mmr  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402


def normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.ones_like(x) if hi - lo < 1e-12 else (x - lo) / (hi - lo)


def collect(container: Container, texts: list[str], depth: int) -> list[dict]:
    retr = container.retriever
    vecs = retr.embedder.encode(texts)
    out = []
    for text, qv in zip(texts, vecs):
        vlist = [(h.chunk_id, h.similarity) for h in container.vectors.query(qv, depth)]
        s = container.settings
        match = plan_lexical(text, container.manifest, retr.term_stats, s.lexical_max_terms, s.lexical_max_postings).match
        llist = container.manifest.lexical_search(match, depth) if match else []
        union = list(dict.fromkeys([c for c, _ in vlist] + [c for c, _ in llist]))
        stored = container.vectors.vectors(union)
        bm25 = container.manifest.lexical_scores(match, union) if match else {}
        chunks = container.manifest.chunks_by_id(union)
        sources = container.manifest.sources_of(c.doc_hash for c in chunks.values())
        doc = {cid: doc_id_from_source(sources[chunks[cid].doc_hash][0]) for cid in union if cid in chunks}
        out.append(
            {
                "q": qv,
                "vlist": vlist,
                "llist": llist,
                "cos": {c: float(stored[c] @ qv) for c in union if c in stored},
                "bm25": {c: bm25.get(c, 0.0) for c in union},
                "bm25_listed": dict(llist),
                "vec": stored,
                "doc": doc,
            }
        )
    return out


def fuse(item: dict, method: str, w: float, depth: int, rrf_k: int = 60) -> list[tuple[str, float]]:
    vlist, llist = item["vlist"][:depth], item["llist"][:depth]
    score: dict[str, float] = {}
    if method == "rrf":
        for weight, ranked in ((w, vlist), (1 - w, llist)):
            for rank, (cid, _) in enumerate(ranked, start=1):
                score[cid] = score.get(cid, 0.0) + 2 * weight / (rrf_k + rank)
    else:
        for weight, ranked in ((w, vlist), (1 - w, llist)):
            if not ranked:
                continue
            norm = normalise(np.array([s for _, s in ranked]))
            for (cid, _), n in zip(ranked, norm):
                score[cid] = score.get(cid, 0.0) + weight * float(n)
    return sorted(score.items(), key=lambda kv: kv[1], reverse=True)


def rerank(item: dict, fused: list[tuple[str, float]], top_n: int, wr: float, exact_bm25: bool = True) -> list[tuple[str, float]]:
    head, tail = fused[:top_n], fused[top_n:]
    ids = [c for c, _ in head]
    cos = np.array([item["cos"].get(c, 0.0) for c in ids])
    bm25 = item["bm25"] if exact_bm25 else item["bm25_listed"]
    bm = np.array([bm25.get(c, 0.0) for c in ids])
    s = wr * normalise(cos) + (1 - wr) * normalise(bm)
    order = np.argsort(-s, kind="stable")
    return [(ids[i], float(s[i])) for i in order] + tail


def diversify(item: dict, ranked: list[tuple[str, float]], k: int, lam: float, dup: float) -> list[tuple[str, float]]:
    ids = [c for c, _ in ranked if c in item["vec"]]
    m = np.stack([item["vec"][c] for c in ids])
    sim = m @ m.T
    kept = []
    for i in range(len(ids)):
        if kept and float(sim[i, kept].max()) >= dup:
            continue
        kept.append(i)
    rel = normalise(np.array([dict(ranked)[ids[i]] for i in kept]))
    order = mmr(rel, sim[np.ix_(kept, kept)], lam, k)
    return [(ids[kept[j]], 0.0) for j in order]


def evaluate(items, qrels_list, ranker) -> tuple[float, float]:
    nd, r20 = [], []
    for item, rels in zip(items, qrels_list):
        ranked = ranker(item)
        docs = list(dict.fromkeys(item["doc"][c] for c, _ in ranked if c in item["doc"]))
        nd.append(ndcg_at(docs, rels, 10))
        r20.append(recall_at(docs, rels, 20))
    return float(np.mean(nd)), float(np.mean(r20))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset")
    parser.add_argument("--split", default="train")
    parser.add_argument("--data-dir", required=True, help="store built by eval_retrieval.py (the one with docs/ and store/)")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--top", type=int, default=15, help="rows printed per family")
    parser.add_argument("--cache", help="pickle of the collected candidates, reused when it exists")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting")
    args = parser.parse_args()

    dataset = Path(args.dataset)
    data_dir = Path(args.data_dir)
    overrides = dict(pair.split("=", 1) for pair in args.set)
    container = Container(Settings(data_dir=data_dir / "store", kb_dir=data_dir / "docs", **overrides))
    container.retriever.term_stats.wait_ready(600)
    qrels = read_qrels(dataset / "qrels" / f"{args.split}.tsv")
    queries = {q["_id"]: q["text"] for q in read_jsonl(dataset / "queries.jsonl")}
    qids = [q for q in qrels if q in queries]
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        items = pickle.loads(cache.read_bytes())
    else:
        items = collect(container, [queries[q] for q in qids], args.depth)
        if cache:
            cache.write_bytes(pickle.dumps(items))
    rels = [qrels[q] for q in qids]
    print(f"# {len(qids)} {args.split} queries", file=sys.stderr)

    families: dict[str, list[tuple[float, float, dict]]] = {}

    def record(family: str, params: dict, ranker) -> None:
        nd, r20 = evaluate(items, rels, ranker)
        families.setdefault(family, []).append((nd, r20, params))

    record("bm25", {}, lambda it: it["llist"])
    record("vector", {}, lambda it: it["vlist"])
    depths = [d for d in (20, 30, 50, 100) if d <= args.depth]
    for depth, w in itertools.product(depths, [0.3, 0.4, 0.5, 0.6, 0.7]):
        record("rrf", {"depth": depth, "w": w}, lambda it, d=depth, w=w: fuse(it, "rrf", w, d))
    for depth, w in itertools.product(depths, [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]):
        record("weighted", {"depth": depth, "w": w}, lambda it, d=depth, w=w: fuse(it, "weighted", w, d))
    for method, depth, w, top_n, wr in itertools.product(
        ["rrf", "weighted"], [50], [0.4, 0.5, 0.6], [10, 20, 30, 50], [0.3, 0.4, 0.5, 0.6, 0.7]
    ):
        record(
            "rerank",
            {"fusion": method, "depth": depth, "w": w, "top_n": top_n, "wr": wr},
            lambda it, m=method, d=depth, w=w, n=top_n, wr=wr: rerank(it, fuse(it, m, w, d), n, wr),
        )
    best_rerank = max(families["rerank"], key=lambda r: r[0])[2]
    p = best_rerank
    record(
        "rerank_listed_bm25_only",
        {**p, "exact_bm25": False},
        lambda it, p=p: rerank(it, fuse(it, p["fusion"], p["w"], p["depth"]), p["top_n"], p["wr"], exact_bm25=False),
    )
    for lam, dup in itertools.product([0.5, 0.7, 0.8, 0.9, 1.0], [0.9, 0.95, 0.97, 0.99]):
        p = best_rerank
        record(
            "mmr",
            {**p, "lambda": lam, "dup": dup},
            lambda it, p=p, lam=lam, dup=dup: diversify(
                it, rerank(it, fuse(it, p["fusion"], p["w"], p["depth"]), p["top_n"], p["wr"]), 50, lam, dup
            ),
        )

    best = {}
    for family, rows in families.items():
        rows.sort(key=lambda r: r[0], reverse=True)
        print(f"\n== {family} (nDCG@10, recall@20, params) ==")
        for nd, r20, params in rows[: args.top]:
            print(f"{nd:.4f}  {r20:.4f}  {params}")
        best[family] = {"ndcg@10": round(rows[0][0], 4), "recall@20": round(rows[0][1], 4), "params": rows[0][2]}
    print(json.dumps({"split": args.split, "queries": len(qids), "best": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
