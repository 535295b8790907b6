#!/usr/bin/env python3
"""Speed and memory of each embedding model, against MiniLM in the same run.

    OMP_NUM_THREADS=1 python scripts/bench_embedders.py \\
        --chunks-from /tmp/neoc-eval/old-fema --questions tests/data/fema_officer_questions.jsonl

For each model (MiniLM first, then ``--models``), in a child process of its
own so that peak RSS is that model's: load time, query-embedding ms (one
question at a time, as the chain embeds them: median and p95), ingest
throughput (chunks/s embedding ``--n-chunks`` real chunk texts read from a
store's manifest, in the model's batches), vector dimension, peak RSS. The
rounds alternate models (``--rounds``) and every figure is also printed as a
ratio to MiniLM's in the same round: the machine is shared, so absolute
speeds move with the neighbours' load while the ratios hold. Threads: the
``--threads`` given to torch and to the e5 engine (1 by default). Ends with
one JSON line.

Retrieval quality is ``scripts/eval_retrieval.py`` with ``NEOC_EMBEDDING__MODEL``
set (README, Figures); this script is the cost side of that decision.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASELINE = "all-minilm-l6-v2"


def child(model: str, chunks_file: Path, questions_file: Path, threads: int) -> dict:
    from neoc_assistant import runtime

    runtime.configure_process()
    from neoc_assistant.settings import EmbeddingSettings
    from neoc_assistant.store.embedders import open_embedder

    texts = json.loads(chunks_file.read_text())
    questions = json.loads(questions_file.read_text())
    embedder = open_embedder(EmbeddingSettings(model=model, torch_threads=threads))
    started = time.perf_counter()
    embedder.encode_queries(["warm up"])
    load_s = time.perf_counter() - started
    times = []
    for question in questions:
        t = time.perf_counter()
        embedder.embed_query_vector(question)
        times.append((time.perf_counter() - t) * 1000.0)
    t = time.perf_counter()
    vectors = embedder.encode(texts)
    ingest_s = time.perf_counter() - t
    return {
        "model": model, "model_id": embedder.model_id, "dimension": int(vectors.shape[1]),
        "load_s": round(load_s, 2),
        "query_ms_p50": round(statistics.median(times), 2),
        "query_ms_p95": round(sorted(times)[int(0.95 * (len(times) - 1))], 2),
        "chunks_per_s": round(len(texts) / ingest_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def sample_chunks(store: Path, n: int) -> list[str]:
    """``n`` chunk texts spread over the store (every k-th by id), the real length mix."""
    con = sqlite3.connect(f"file:{store / 'manifest.sqlite3'}?mode=ro", uri=True)
    rows = [r[0] for r in con.execute("SELECT text FROM chunks ORDER BY chunk_id")]
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all-mpnet-base-v2,multilingual-e5-small")
    parser.add_argument("--chunks-from", type=Path, help="a data dir whose manifest holds chunks (required)")
    parser.add_argument("--questions", type=Path, help="JSONL with a 'text' field per line (required)")
    parser.add_argument("--n-chunks", type=int, default=200)
    parser.add_argument("--n-questions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/neoc-bench-embedders"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work / "chunks.json", args.work / "questions.json", args.threads)))
        return 0
    if not args.chunks_from or not args.questions:
        parser.error("--chunks-from and --questions are required")

    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "chunks.json").write_text(json.dumps(sample_chunks(args.chunks_from, args.n_chunks)))
    questions = [json.loads(line)["text"] for line in args.questions.read_text().splitlines() if line.strip()]
    (args.work / "questions.json").write_text(json.dumps(questions[: args.n_questions]))
    models = [BASELINE] + [m for m in args.models.split(",") if m and m != BASELINE]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    rounds: list[dict[str, dict]] = []
    for r in range(args.rounds):
        order = models if r % 2 == 0 else [models[0], *reversed(models[1:])]
        got = {}
        for model in order:
            out = subprocess.run([sys.executable, __file__, "--child", model, "--work", str(args.work),
                                  "--threads", str(args.threads)], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(f"# {model}: failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            got[model] = json.loads(out.stdout.strip().splitlines()[-1])
        rounds.append(got)

    print(f"{args.n_chunks} chunks from {args.chunks_from}, {min(len(questions), args.n_questions)} questions, "
          f"{args.threads} thread(s), {args.rounds} alternating rounds; ratios to {BASELINE} in the same round")
    print(f"{'model':24} {'dim':>4} {'query ms p50':>12} {'x MiniLM':>9} {'chunks/s':>9} {'x MiniLM':>9} "
          f"{'peak RSS MB':>11} {'load s':>7}")
    summary = {}
    for model in models:
        runs = [g[model] for g in rounds if model in g and BASELINE in g]
        if not runs:
            continue
        q_ratio = statistics.median(g[model]["query_ms_p50"] / g[BASELINE]["query_ms_p50"] for g in rounds if model in g)
        c_ratio = statistics.median(g[model]["chunks_per_s"] / g[BASELINE]["chunks_per_s"] for g in rounds if model in g)
        row = {k: statistics.median(r[k] for r in runs) for k in ("query_ms_p50", "query_ms_p95", "chunks_per_s",
                                                                   "peak_rss_mb", "load_s")}
        row.update(dimension=runs[0]["dimension"], model_id=runs[0]["model_id"], query_ms_ratio=round(q_ratio, 2),
                   chunks_per_s_ratio=round(c_ratio, 3))
        summary[model] = row
        print(f"{model:24} {row['dimension']:>4} {row['query_ms_p50']:>12.1f} {q_ratio:>9.2f} "
              f"{row['chunks_per_s']:>9.1f} {c_ratio:>9.3f} {row['peak_rss_mb']:>11.0f} {row['load_s']:>7.1f}")
    print(json.dumps({"threads": args.threads, "n_chunks": args.n_chunks, "rounds": args.rounds, "models": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
