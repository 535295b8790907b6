#!/usr/bin/env python
"""The batched engine against the one-context-per-answer pool, same model, same prompts, same run.

Usage::

    python scripts/bench_concurrency.py [--model smollm2-135m] [--levels 1,2,4,8] [--tokens 96]
        [--prompt-words 220] [--threads 0] [--rounds 2]

For each concurrency level N, N threads each stream one answer at once (a
RAG-sized prompt: a fixed system prompt, ~``--prompt-words`` of passage text,
a question); the engine is ``GenerationEngine`` with ``batching`` on or off,
``pool_size`` = N, the real model (installed from the package index). Per
configuration: aggregate generated tokens/s over the wall time, per-request
time to first token p50/p95, total time p50/p95. Pool and batched runs
alternate (ABBA over ``--rounds``) so load from other jobs hits both alike.
Ends with the ratio table (batched / pool) and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402
from neoc_assistant.figures import percentile  # noqa: E402
from neoc_assistant.generate.engine import GenerationEngine  # noqa: E402
from neoc_assistant.generate.model_install import install  # noqa: E402
from neoc_assistant.generate.prompt import SYSTEM_PROMPT  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

KB = ROOT / "knowledge_base"
QUESTIONS = ["What are the steps to open a shelter?", "Who authorises full activation?",
             "What must a sitrep contain?", "How is a flood evacuation ordered?", "What is in a family kit?",
             "Who is called first in the call-down?", "What are the water minimums?", "When is Level 2 declared?"]


def prompts(n_words: int, n: int, seed: int) -> list[list[dict]]:
    words = " ".join((KB / f).read_text() for f in sorted(p.name for p in KB.glob("*.md"))).split()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = rng.randrange(0, len(words) - n_words)
        passage = " ".join(words[start:start + n_words])
        out.append([{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": f"Passages:\n\n[1] {passage}\n\nQuestion: {QUESTIONS[i % len(QUESTIONS)]}"}])
    return out


def run_level(engine: GenerationEngine, messages: list[list[dict]], tokens: int) -> dict:
    results: list[dict] = [dict() for _ in messages]
    starts: list[float] = [0.0] * len(messages)
    ends: list[float] = [0.0] * len(messages)
    firsts: list[float | None] = [None] * len(messages)

    def one(i: int) -> None:
        starts[i] = time.perf_counter()
        for _ in engine.stream(messages[i], max_tokens=tokens, stats=results[i]):
            if firsts[i] is None:
                firsts[i] = time.perf_counter() - starts[i]
        ends[i] = time.perf_counter()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(messages))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    generated = sum(r.get("generated_tokens", 0) for r in results)
    ttft = sorted(f for f in firsts if f is not None)
    total = sorted(e - s for s, e in zip(starts, ends))
    return {"wall_s": wall, "generated": generated, "agg_tok_s": generated / wall,
            "ttft_p50": statistics.median(ttft) if ttft else None, "ttft_p95": percentile(ttft, 95) if ttft else None,
            "total_p50": statistics.median(total), "total_p95": percentile(total, 95)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m", help="an installable key or a .gguf path")
    ap.add_argument("--levels", default="1,2,4,8")
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--prompt-words", type=int, default=220)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)
    runtime.configure_process()
    model = Path(args.model) if args.model.endswith(".gguf") else install(args.model, Path.home() / ".cache/neoc-assistant/models")
    levels = [int(x) for x in args.levels.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="neoc-bench-"))
    results: dict[str, dict[int, list[dict]]] = {"pool": {}, "batched": {}}
    for level in levels:
        msgs = prompts(args.prompt_words, level, args.seed + level)
        order = ["pool", "batched", "batched", "pool"] * args.rounds
        for kind in order[: 2 * args.rounds]:
            settings = Settings(data_dir=tmp, model_path=model, n_ctx=1024, n_batch=256, n_threads=args.threads,
                                batching=kind == "batched", pool_size=level, max_tokens=args.tokens,
                                pool_wait_timeout_seconds=600, admission_wait_seconds=1e9,
                                guard_rss_limit_mb=1 << 20, guard_system_memory_percent=100.0, loop_guard=False)
            engine = GenerationEngine(settings.generation)
            engine.load()
            # warm (weights repacked, pages touched) on another prompt: the system prompt may be
            # reused from it, as in service, but not the measured prompts' passages
            engine.generate(prompts(args.prompt_words, 1, args.seed + 1000)[0], max_tokens=4)
            results[kind].setdefault(level, []).append(run_level(engine, msgs, args.tokens))
            engine.close()
        for kind in ("pool", "batched"):
            runs = results[kind][level]
            best = max(runs, key=lambda r: r["agg_tok_s"])
            print(f"{kind:8} x{level}: {best['agg_tok_s']:6.1f} tok/s aggregate, TTFT p50 {best['ttft_p50']:.2f}s "
                  f"p95 {best['ttft_p95']:.2f}s, total p95 {best['total_p95']:.2f}s ({best['generated']} tokens)",
                  flush=True)
    summary = {}
    print("\n| concurrent | pool tok/s | batched tok/s | ratio | TTFT p95 pool | TTFT p95 batched |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        pool = max(results["pool"][level], key=lambda r: r["agg_tok_s"])
        batched = max(results["batched"][level], key=lambda r: r["agg_tok_s"])
        ratio = batched["agg_tok_s"] / pool["agg_tok_s"]
        summary[level] = {"pool": pool, "batched": batched, "ratio": round(ratio, 2)}
        print(f"| {level} | {pool['agg_tok_s']:.1f} | {batched['agg_tok_s']:.1f} | {ratio:.2f}x | "
              f"{pool['ttft_p95']:.2f}s | {batched['ttft_p95']:.2f}s |")
    print(json.dumps({"model": model.name, "tokens": args.tokens, "prompt_words": args.prompt_words,
                      "levels": {str(k): v for k, v in summary.items()}}, default=lambda x: round(x, 3)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
