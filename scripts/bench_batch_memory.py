#!/usr/bin/env python
"""The batched context's memory against its speed: KV cells, micro-batch and KV type, as ratios.

Usage::

    python scripts/bench_batch_memory.py [--model ~/.cache/neoc-assistant/models/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--configs main,sized,ub128,ub64,q8] [--rounds 2] [--slots 8]

Why: a smaller context is only a win if answers do not get slower or worse.
Each configuration is a real ``GenerationEngine`` (batched, ``--slots`` slots)
on RAG-sized prompts (the product's system prompt + ~450 tokens of knowledge
base text + a question, each prompt different from its first token so nothing
is reused). Per configuration: llama.cpp's KV and compute buffer sizes (its
own log lines), prefill tokens/s of one prompt at a time, aggregate decode
tokens/s with every slot answering (prompts sharing the passages, as
concurrent questions share the system prompt), and whether the greedy answers
are the same text as the first configuration's. Configurations alternate
within each round (the machine is shared: only same-run ratios mean anything);
figures are medians over rounds, speeds also as a ratio of the first
configuration. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()
from neoc_assistant.generate.engine import GenerationEngine  # noqa: E402
from neoc_assistant.generate.prompt import SYSTEM_PROMPT  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

DEFAULT_MODEL = Path.home() / ".cache/neoc-assistant/models/SmolLM2-135M-Instruct.Q4_1.gguf"
CONFIGS = {  # name -> generation settings (main = the sizing before: every slot at n_ctx)
    "main": dict(slot_kv_tokens=0, n_ubatch=0, kv_cache_type="f16"),
    "sized": dict(slot_kv_tokens=1024, n_ubatch=0, kv_cache_type="f16"),
    "ub128": dict(slot_kv_tokens=1024, n_ubatch=128, kv_cache_type="f16"),
    "ub64": dict(slot_kv_tokens=1024, n_ubatch=64, kv_cache_type="f16"),
    "q8": dict(slot_kv_tokens=1024, n_ubatch=0, kv_cache_type="q8_0"),
}
QUESTIONS = ["Who activates the EOC?", "What is reported in a sitrep?", "When is an evacuation ordered?",
             "Who leads the shelter team?", "What is the flood danger level?", "How are relief stocks requested?",
             "What are the ICS roles?", "What happens at shift handover?"]


class BufferLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sizes: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        for key, label in (("KV buffer size", "kv_mb"), ("compute buffer size", "compute_mb"),
                           ("output buffer size", "output_mb")):
            if key in msg and "=" in msg:
                self.sizes[label] = float(msg.split("=")[1].split()[0])


def passages(n_chars: int = 1900) -> str:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "knowledge_base").glob("0[1-4]*.md")))
    return text[:n_chars]


def messages(head: str, question: str, body: str) -> list[dict]:
    return [{"role": "system", "content": f"{head} {SYSTEM_PROMPT}"},
            {"role": "user", "content": f"Passages:\n{body}\n\nQuestion: {question}"}]


def run_config(name: str, model: Path, slots: int, data_dir: Path, buffers: BufferLines, round_no: int) -> dict:
    settings = Settings(data_dir=data_dir, model_path=model, batching=True, pool_size=slots, n_threads=0,
                        max_tokens=48, pool_wait_timeout_seconds=300, admission_wait_seconds=600,
                        guard_rss_limit_mb=1 << 20, guard_system_memory_percent=100.0, **CONFIGS[name])
    engine = GenerationEngine(settings.generation)
    buffers.sizes = {}
    engine.load()
    body = passages()
    prefill, texts, prompt_tokens = [], [], 0
    for i, q in enumerate(QUESTIONS[:3]):  # one at a time: prefill speed; a distinct first token each
        stats: dict = {}
        texts.append(engine.generate(messages(f"[r{round_no} #{i}]", q, body), stats=stats))
        prefill.append(stats["evaluated_tokens"] / stats["prefill_seconds"])
        prompt_tokens = stats["prompt_tokens"]
    out: dict = {}

    def ask(i: int) -> None:
        stats: dict = {}
        out[i] = ("".join(engine.stream(messages(f"[r{round_no} all]", QUESTIONS[i % len(QUESTIONS)], body),
                                        stats=stats, max_tokens=64)), stats)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(slots)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    generated = sum(s["generated_tokens"] for _, s in out.values())
    engine.close()
    return {**buffers.sizes, "prefill_tps": statistics.median(prefill), "decode_tps": generated / wall,
            "texts": texts, "prompt_tokens": prompt_tokens}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--configs", default="main,sized,ub128,ub64,q8")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--slots", type=int, default=8)
    args = p.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    buffers = BufferLines()
    llama_log = logging.getLogger("neoc_assistant.llama_cpp")
    llama_log.setLevel(logging.DEBUG)
    llama_log.addHandler(buffers)
    results: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="neoc-bench-mem-") as tmp:
        for r in range(args.rounds):
            for name in (names if r % 2 == 0 else list(reversed(names))):
                results[name].append(run_config(name, args.model.expanduser(), args.slots, Path(tmp), buffers, r))
                print(f"round {r + 1} {name}: {results[name][-1]['prefill_tps']:.0f} prefill t/s, "
                      f"{results[name][-1]['decode_tps']:.0f} decode t/s", file=sys.stderr, flush=True)
    base = names[0]
    rows = {}
    for name in names:
        runs = results[name]
        rows[name] = {
            "settings": CONFIGS[name],
            **{k: runs[0].get(k) for k in ("kv_mb", "compute_mb", "output_mb")},
            "prefill_tps": round(statistics.median(r["prefill_tps"] for r in runs), 1),
            "decode_tps": round(statistics.median(r["decode_tps"] for r in runs), 1),
            # greedy answers, one at a time, identical to the first configuration's (same round)
            "same_text": sum(a == b for r, rb in zip(runs, results[base]) for a, b in zip(r["texts"], rb["texts"])),
            "answers": sum(len(r["texts"]) for r in runs),
        }
    for name in names:
        row = rows[name]
        row["prefill_ratio"] = round(row["prefill_tps"] / rows[base]["prefill_tps"], 3)
        row["decode_ratio"] = round(row["decode_tps"] / rows[base]["decode_tps"], 3)
    print(f"\nmodel {args.model.name}, {args.slots} slots, {args.rounds} rounds, prompts of "
          f"{results[base][0]['prompt_tokens']} tokens (shared machine: ratios)")
    print(f"{'config':8} {'KV MB':>7} {'compute MB':>10} {'prefill t/s':>11} {'ratio':>6} {'decode t/s':>10} "
          f"{'ratio':>6} {'same text':>9}")
    for name, row in rows.items():
        print(f"{name:8} {row['kv_mb'] or 0:7.1f} {row['compute_mb'] or 0:10.1f} {row['prefill_tps']:11.1f} "
              f"{row['prefill_ratio']:6.2f} {row['decode_tps']:10.1f} {row['decode_ratio']:6.2f} "
              f"{row['same_text']:>4}/{row['answers']}")
    print(json.dumps({"model": args.model.name, "slots": args.slots, "rounds": args.rounds, "cpus": os.cpu_count(),
                      "configs": rows}))


if __name__ == "__main__":
    main()
