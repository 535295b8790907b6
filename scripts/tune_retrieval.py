#!/usr/bin/env python3
"""Choose fusion / fallback-rerank / MMR parameters on a BEIR *train* split.

Runs the real candidate generators once per query (Chroma HNSW and the FTS5
BM25 index of a store built by ``eval_retrieval.py``), records for every
candidate the exact bi-encoder cosine (stored vector), the exact BM25 score
and the query-term coverage, then replays the fusion, rerank and MMR formulas of
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
import pickle
import sys
from pathlib import Path

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _retrieval_metrics import doc_id_from_source, ndcg_at, read_jsonl, read_qrels, recall_at  # noqa: E402

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
        s = container.settings.retrieval
        match = plan_lexical(text, retr.term_stats, s.lexical_max_terms, s.lexical_max_postings).match
        llist = container.manifest.lexical_search(match, depth) if match else []
        plan = plan_lexical(text, retr.term_stats, s.lexical_max_terms, s.lexical_max_postings)
        union = list(dict.fromkeys([c for c, _ in vlist] + [c for c, _ in llist]))
        stored = container.vectors.vectors(union)
        bm25 = container.manifest.lexical_scores(match, union) if match else {}
        chunks = container.manifest.chunks_by_id(union)
        sources = container.manifest.sources_of(c.doc_hash for c in chunks.values())
        doc = {cid: doc_id_from_source(sources[chunks[cid].doc_hash][0]) for cid in union if cid in chunks}
        idf_total = sum(plan.idf.values()) or 1.0
        terms = retr.term_stats.index_terms([chunks[c].text if c in chunks else "" for c in union])
        coverage = {c: sum(plan.idf[t] for t in ts if t in plan.idf) / idf_total for c, ts in zip(union, terms)}
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
                "coverage": coverage,
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


def rerank(
    item: dict, fused: list[tuple[str, float]], top_n: int, weights: tuple[float, float, float], exact_bm25: bool = False
) -> list[tuple[str, float]]:
    """The fallback reranker: w_cos * minmax(cosine) + w_bm25 * minmax(BM25) + w_cov * coverage."""
    head, tail = fused[:top_n], fused[top_n:]
    ids = [c for c, _ in head]
    cos = np.array([item["cos"].get(c, 0.0) for c in ids])
    bm25 = item["bm25"] if exact_bm25 else item["bm25_listed"]
    bm = np.array([bm25.get(c, 0.0) for c in ids])
    cov = np.array([item["coverage"].get(c, 0.0) for c in ids])
    s = weights[0] * normalise(cos) + weights[1] * normalise(bm) + weights[2] * cov
    order = np.argsort(-s, kind="stable")
    return [(ids[i], float(s[i])) for i in order] + tail


def diversify(item: dict, ranked: list[tuple[str, float]], k: int, lam: float, dup: float, langchain: bool = False):
    """Near-duplicate removal, then MMR: ours (relevance = reranked score) or LangChain's (query cosine)."""
    ids = [c for c, _ in ranked if c in item["vec"]]
    m = np.stack([item["vec"][c] for c in ids])
    sim = m @ m.T
    kept = []
    for i in range(len(ids)):
        if kept and float(sim[i, kept].max()) >= dup:
            continue
        kept.append(i)
    if langchain:
        from langchain_core.vectorstores.utils import maximal_marginal_relevance

        order = maximal_marginal_relevance(item["q"], [m[i] for i in kept], lam, k)
    else:
        scores = dict(ranked)
        rel = normalise(np.array([scores[ids[i]] for i in kept]))
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
    simplex = [
        (round(a, 2), round(b, 2), round(1 - a - b, 2))
        for a in np.arange(0.2, 0.751, 0.05)
        for b in np.arange(0.0, 0.451, 0.05)
        if 1 - a - b > -1e-9
    ]
    for method, w, top_n, weights in itertools.product(["rrf", "weighted"], [0.5], [30, 50], simplex):
        record(
            "rerank",
            {"fusion": method, "depth": 50, "w": w, "top_n": top_n, "weights(cos,bm25,cov)": weights},
            lambda it, m=method, w=w, n=top_n, ws=weights: rerank(it, fuse(it, m, w, 50), n, ws),
        )
    for weights in [(0.5, 0.5, 0.0), (0.6, 0.4, 0.0)]:  # without the coverage feature
        record(
            "rerank_no_coverage",
            {"fusion": "weighted", "depth": 50, "w": 0.5, "top_n": 50, "weights(cos,bm25,cov)": weights},
            lambda it, ws=weights: rerank(it, fuse(it, "weighted", 0.5, 50), 50, ws),
        )
    p = max(families["rerank"], key=lambda r: r[0])[2]

    def best_reranked(it, p=p, exact=False):
        return rerank(it, fuse(it, p["fusion"], p["w"], p["depth"]), p["top_n"], p["weights(cos,bm25,cov)"], exact)

    record("rerank_exact_bm25_filled", {**p, "exact_bm25": True}, lambda it: best_reranked(it, exact=True))
    for lam, dup in itertools.product([0.5, 0.7, 0.8, 0.9, 1.0], [0.95, 0.97, 0.99]):
        record("mmr", {"lambda": lam, "dup": dup}, lambda it, lam=lam, dup=dup: diversify(it, best_reranked(it), 50, lam, dup))
    for lam in [0.7, 0.9, 1.0]:
        record(
            "mmr_langchain",
            {"lambda": lam, "dup": 0.97},
            lambda it, lam=lam: diversify(it, best_reranked(it), 50, lam, 0.97, langchain=True),
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
