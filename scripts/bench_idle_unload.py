#!/usr/bin/env python
"""What idle unload gives back and what the next question pays (``generation.idle_unload_seconds``).

    python scripts/bench_idle_unload.py [--model ~/.cache/neoc-assistant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf]

One process, the real installed GGUF, the engine as shipped (batched contexts) with a short idle time:
RSS before load, after a warm answer, after the idle unload; then the time of the answer that reloads
the model against a warm answer's time in the same run (the ratio is what to read on a shared
machine). Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

import psutil  # noqa: E402

from neoc_assistant.generate.engine import GenerationEngine  # noqa: E402
from neoc_assistant.generate.prompt import SYSTEM_PROMPT  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

DEFAULT_MODEL = Path.home() / ".cache/neoc-assistant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PASSAGES = "\n\n".join(f"[{i}] sop-{i}.md\nShelters must provide at least 15 litres of water per person per day; "
                       f"one toilet per 20 people, separated by sex, lit at night (rule {i})." for i in range(1, 5))


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def answer(engine: GenerationEngine, n: int, tokens: int) -> float:
    question = f"Question {n}: how much water per person per day must a shelter provide?"
    messages = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Passages:\n\n{PASSAGES}\n\nQuestion: {question}"}]
    t0 = time.perf_counter()
    engine.generate(messages, max_tokens=tokens)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--idle", type=float, default=2.0, help="idle seconds before unload (shipped: 900)")
    args = ap.parse_args()
    settings = Settings(generation={"model_path": str(args.model), "idle_unload_seconds": args.idle,
                                    "temperature": 0.0})
    engine = GenerationEngine(settings.generation)
    before = rss_mb()
    warm, reload, loaded, unloaded = [], [], [], []
    for rep in range(args.reps):
        answer(engine, 100 * rep, args.tokens)  # the first rep loads the model; later ones find it reloaded
        warm.append(answer(engine, 100 * rep + 1, args.tokens))
        loaded.append(rss_mb())
        deadline = time.monotonic() + args.idle * 10 + 30
        while engine.model_loaded and time.monotonic() < deadline:
            time.sleep(0.1)
        if engine.model_loaded:
            print("the model was not unloaded", file=sys.stderr)
            return 1
        unloaded.append(rss_mb())
        reload.append(answer(engine, 100 * rep + 2, args.tokens))
        print(f"  rep {rep + 1}: warm {warm[-1]:.2f} s, after unload {reload[-1]:.2f} s; "
              f"RSS loaded {loaded[-1]:.0f} MB, unloaded {unloaded[-1]:.0f} MB", file=sys.stderr, flush=True)
    engine.close()
    out = {"model": args.model.name, "rss_before_load_mb": round(before),
           "rss_loaded_mb": round(statistics.median(loaded)), "rss_after_unload_mb": round(statistics.median(unloaded)),
           "warm_answer_s": round(statistics.median(warm), 2), "reload_answer_s": round(statistics.median(reload), 2),
           "reload_vs_warm": round(statistics.median(reload) / statistics.median(warm), 2), "unloads": engine.idle.unloads}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
