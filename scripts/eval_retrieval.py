#!/usr/bin/env python3
"""Evaluate the real retrieval pipeline, stage by stage, in one run.

Two modes:

* BEIR dataset (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``)::

      python scripts/eval_retrieval.py /work/shared/eval/scifact --split test

  Each document is written as ``<_id>.txt`` (title as the first line, then the
  text) and ingested by the normal ``Ingestor`` into ``--data-dir`` (default
  ``/tmp/neoc-eval/<dataset>``; reused between runs, so the corpus is embedded
  once). Chunk hits are mapped back to document ids through their source name
  and aggregated to documents by max (a document ranks where its best chunk
  does). Prints nDCG@10, recall@5, recall@20, MRR@10.

* In-domain questions (``{"id","text","answer_files":[...],"evidence":...,"split":...}`` lines)::

      python scripts/eval_retrieval.py --questions tests/data/fema_officer_questions.jsonl \\
          --corpus /work/shared/corpora/fema --split heldout

  ``--split tune|heldout`` keeps the lines whose ``"split"`` field is that
  value; lines without the field belong to ``all``, and ``--split all`` (the
  default in this mode) keeps every line.

  Prints, over the top chunks:

  - hit@1 / file@5 (also reported as ``hit@5``, its old name) -- any of
    ``answer_files`` among the sources of the top-1 / top-5 chunks, i.e. what
    the chain would put in the prompt;
  - passage@5 -- the question's ``evidence`` passage is in one of the top-5
    chunks. Rule (``evidence_in``): (1) exact -- the evidence, whitespace-
    collapsed and lowercased, is a substring of the chunk text, likewise
    normalised; or (2) fuzzy, to survive chunk boundaries and PDF extraction
    (hyphenation, ligatures) -- at least 80% of the evidence's words appear
    in the same order within that one chunk (longest common subsequence over
    ``\\w+`` words of the NFKC-normalised, lowercased texts, the chunk's words
    taken anywhere in the chunk). ``passage_exact@5`` in the JSON counts rule
    (1) alone. Questions without ``evidence`` are left out of both averages;
  - MRR@10 (first chunk from an answer file) and relevant@5.

  ``--per-query FILE`` writes one JSON line per question and configuration
  (file rank, passage match, top-5 sources) for miss analysis.

For each stage configuration (BM25 only, vector only, fused, fused+rerank,
fused+rerank+MMR) it also prints the retrieval latency p50/p95 per query in
milliseconds (query embedding excluded: queries are embedded once, in a batch,
and shared by all configurations). The last line of output is one JSON object
with the same figures. Settings can be overridden with ``--set name=value``
(e.g. ``--set fusion=rrf``) to compare choices.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

import numpy as np  # noqa: E402

from _retrieval_metrics import (  # noqa: E402
    docs_by_max,
    evidence_in,
    mrr_at,
    ndcg_at,
    percentile,
    read_jsonl,
    read_qrels,
    recall_at,
    select_split,
    write_beir_docs,
)

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever  # noqa: E402
from neoc_assistant.retrieve.search import STAGE_CONFIGS  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402
from neoc_assistant.settings_legacy import LEGACY_NAMES  # noqa: E402

CONFIG_LABELS = {
    "bm25": "BM25 only",
    "vector": "vector only",
    "fused": "fused",
    "fused+rerank": "fused+rerank",
    "fused+rerank+mmr": "fused+rerank+MMR",
}


# -- running ------------------------------------------------------------------------------
def build_container(data_dir: Path, kb_dir: Path, overrides: dict) -> Container:
    return Container(Settings(data_dir=data_dir, kb_dir=kb_dir, **overrides))


def ingest(container: Container, root: Path) -> None:
    started = time.perf_counter()
    summary = container.ingestor.ingest([root], show_progress=sys.stderr.isatty())
    data = summary.to_dict()
    print(
        f"# ingest {root}: added {data['added']} updated {data['updated']} unchanged {data['unchanged']} "
        f"purged {data['purged']} failed {data['failed']} chunks {data['chunks']} "
        f"in {time.perf_counter() - started:.1f}s; store holds {container.manifest.counts()}",
        file=sys.stderr,
    )
    for failure in data["failures"][:10]:
        print(f"#   failed {failure['source']}: {failure['reason']}", file=sys.stderr)


def run_configs(retriever: KnowledgeBaseRetriever, texts: list[str], configs: list[str], k: int, judge, filters=None):
    """For each configuration: per-query metric dicts and retrieval latencies (ms)."""
    started = time.perf_counter()
    vectors = retriever.embedder.encode_queries(texts)  # e5 prefixes questions: "query: "
    embed_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(texts))
    out = {}
    for name in configs:
        stages = STAGE_CONFIGS[name]
        per_query, latencies, stage_ms = [], [], defaultdict(list)
        for text, vec in zip(texts, vectors):
            result = retriever.retrieve(text, k=k, query_vector=vec, stages=stages, filters=filters)
            latencies.append(result.timings_ms["retrieval"])
            for stage, ms in result.timings_ms.items():
                stage_ms[stage].append(ms)
            per_query.append(judge(len(per_query), result))
        out[name] = {
            "per_query": per_query,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "stage_p50_ms": {s: round(percentile(v, 50), 3) for s, v in stage_ms.items() if s != "embed"},
        }
    return out, embed_ms


def summarise(results: dict, metric_names: list[str]) -> dict:
    """Mean of each metric over the queries that have it (a ``None`` value = not applicable)."""
    table = {}
    for name, res in results.items():
        row = {}
        for m in metric_names:
            values = [q[m] for q in res["per_query"] if q.get(m) is not None]
            row[m] = round(float(np.mean(values)), 4) if values else float("nan")
        row["p50_ms"] = round(res["p50_ms"], 2)
        row["p95_ms"] = round(res["p95_ms"], 2)
        row["stage_p50_ms"] = res["stage_p50_ms"]
        table[name] = row
    return table


def print_table(title: str, table: dict, metric_names: list[str]) -> None:
    print(title)
    header = f"{'configuration':<20}" + "".join(f"{m:>11}" for m in metric_names) + f"{'p50 ms':>9}{'p95 ms':>9}"
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        print(
            f"{CONFIG_LABELS.get(name, name):<20}"
            + "".join(f"{row[m]:>11.4f}" for m in metric_names)
            + f"{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
        )


def eval_beir(args, overrides: dict) -> dict:
    dataset = Path(args.dataset).resolve()
    data_dir = Path(args.data_dir or f"/tmp/neoc-eval/{dataset.name}")
    docs_dir = data_dir / "docs"
    container = build_container(data_dir / "store", docs_dir, overrides)
    if not args.no_ingest:
        n = write_beir_docs(dataset, docs_dir)
        print(f"# {n} documents in {docs_dir}", file=sys.stderr)
        ingest(container, docs_dir)
    qrels = read_qrels(dataset / "qrels" / f"{args.split}.tsv")
    queries = {q["_id"]: q["text"] for q in read_jsonl(dataset / "queries.jsonl")}
    qids = [q for q in qrels if q in queries]
    if args.limit:
        qids = qids[: args.limit]
    texts = [queries[q] for q in qids]

    def judge(i, result):
        ranked = docs_by_max(result.hits)
        rels = qrels[qids[i]]
        return {
            "ndcg@10": ndcg_at(ranked, rels, 10),
            "recall@5": recall_at(ranked, rels, 5),
            "recall@20": recall_at(ranked, rels, 20),
            "mrr@10": mrr_at(ranked, rels, 10),
        }

    results, embed_ms = run_configs(container.retriever, texts, args.configs, args.k, judge)
    metric_names = ["ndcg@10", "recall@5", "recall@20", "mrr@10"]
    table = summarise(results, metric_names)
    print_table(f"{dataset.name} {args.split}: {len(qids)} queries, {container.manifest.counts()['chunks']} chunks", table, metric_names)
    return {
        "dataset": dataset.name,
        "split": args.split,
        "queries": len(qids),
        "chunks": container.manifest.counts()["chunks"],
        "embed_ms_per_query": round(embed_ms, 2),
        "k_chunks": args.k,
        "settings": overrides,
        "configs": table,
    }


def eval_questions(args, overrides: dict) -> dict:
    corpus = Path(args.corpus).resolve()
    data_dir = Path(args.data_dir or f"/tmp/neoc-eval/{corpus.name}")
    container = build_container(data_dir, corpus, overrides)
    if not args.no_ingest:
        ingest(container, corpus)
    items = select_split(read_jsonl(Path(args.questions)), args.split)
    if not items:
        raise SystemExit(f"no questions in {args.questions} for split {args.split!r}")
    if args.limit:
        items = items[: args.limit]
    texts = [q["text"] for q in items]

    def answers_of(item) -> set[str]:
        files = item.get("answer_files") or ([item["source"]] if item.get("source") else [])
        return {str(f).strip("/") for f in files}

    def judge(i, result):
        item = items[i]
        wanted = answers_of(item)
        first = 0
        for rank, hit in enumerate(result.hits[:10], start=1):
            if wanted & set(hit.sources or [hit.source]):
                first = rank
                break
        evidence = item.get("evidence")
        matches = [evidence_in(evidence, h.text) for h in result.hits[:5]] if evidence else []
        found = 1.0 if 0 < first <= 5 else 0.0
        return {
            "hit@1": 1.0 if first == 1 else 0.0,
            "hit@5": found,
            "file@5": found,
            "passage@5": (1.0 if any(matches) else 0.0) if evidence else None,
            "passage_exact@5": (1.0 if "exact" in matches else 0.0) if evidence else None,
            "mrr@10": 1.0 / first if first else 0.0,
            "relevant@5": 1.0 if any(h.scores["relevance"] >= result.relevance_floor for h in result.hits[:5]) else 0.0,
            "_detail": {
                "id": item.get("id", i),
                "family": item.get("family"),
                "file_rank": first,
                "passage_match": matches,
                "top5": [
                    {"source": h.source, "page": h.page, "sources": list(h.sources), "text": h.text[:300]}
                    for h in result.hits[:5]
                ],
            },
        }

    results, embed_ms = run_configs(container.retriever, texts, args.configs, max(args.k_questions, 10), judge)
    if args.per_query:
        with open(args.per_query, "w", encoding="utf-8") as fh:
            for name, res in results.items():
                for q in res["per_query"]:
                    fh.write(json.dumps({"config": name, **q["_detail"]}) + "\n")
    table_metrics = ["hit@1", "file@5", "passage@5", "mrr@10", "relevant@5"]
    metric_names = table_metrics + ["hit@5", "passage_exact@5"]
    table = summarise(results, metric_names)
    print_table(
        f"{Path(args.questions).name} [{args.split}]: {len(items)} questions, "
        f"{container.manifest.counts()['chunks']} chunks",
        table,
        table_metrics,
    )
    return {
        "questions": str(args.questions),
        "split": args.split,
        "corpus": str(corpus),
        "n": len(items),
        "chunks": container.manifest.counts()["chunks"],
        "embed_ms_per_query": round(embed_ms, 2),
        "settings": overrides,
        "configs": table,
    }


def parse_overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in Settings.model_fields and name.lower() not in LEGACY_NAMES:
            raise SystemExit(f"unknown setting {name!r}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", help="BEIR-layout dataset directory")
    parser.add_argument(
        "--split",
        default=None,
        choices=["train", "test", "dev", "tune", "heldout", "all"],
        help="BEIR: qrels split (default test); questions: tune, heldout or all (default all)",
    )
    parser.add_argument("--questions", help="JSONL questions with answer_files (in-domain mode)")
    parser.add_argument("--corpus", help="folder the answer_files are relative to (in-domain mode)")
    parser.add_argument("--data-dir", help="persisted store to reuse between runs (default /tmp/neoc-eval/<name>)")
    parser.add_argument("--no-ingest", action="store_true", help="use the store in --data-dir as it is")
    parser.add_argument("--configs", default=",".join(STAGE_CONFIGS), help="comma-separated stage configurations")
    parser.add_argument("--k", type=int, default=50, help="chunks retrieved per query in BEIR mode (before doc aggregation)")
    parser.add_argument("--k-questions", type=int, default=10, help="chunks retrieved per question in questions mode")
    parser.add_argument("--per-query", metavar="FILE", help="questions mode: write per-question details (JSONL)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N queries (smoke runs)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a setting")
    args = parser.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in STAGE_CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {list(STAGE_CONFIGS)}")
    overrides = parse_overrides(args.set)
    if args.questions:
        if not args.corpus:
            parser.error("--questions needs --corpus")
        args.split = args.split or "all"
        if args.split not in ("tune", "heldout", "all"):
            parser.error("questions mode: --split is tune, heldout or all")
        summary = eval_questions(args, overrides)
    elif args.dataset:
        args.split = args.split or "test"
        if args.split not in ("train", "test", "dev"):
            parser.error("BEIR mode: --split is train, test or dev")
        summary = eval_beir(args, overrides)
    else:
        parser.error("give a BEIR DATASET_DIR or --questions with --corpus")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
