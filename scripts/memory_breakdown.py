#!/usr/bin/env python
"""Where a serving process's memory goes: RSS after each component loads, and llama.cpp's buffers.

Usage (settings from NEOC_* env vars, as ``serve`` reads them)::

    NEOC_DATA_DIR=/tmp/neoc-mem NEOC_MODEL_PATH=~/.cache/neoc-assistant/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        python scripts/memory_breakdown.py [--answers 8]

Why: the 50-user load run's peak RSS is the sum of parts that load at different
times (the web stack, torch and the embedder, Chroma, the model weights, the
batched context's KV cache and compute buffers, the answers in flight); to make
it smaller you need each part's share, not the total. Stages, in the order a
``serve`` process meets them: imports of the web app (Gradio, FastAPI), the
embedding model (torch), the vector store with one search, the LLM (weights +
the batched context - llama.cpp's own buffer sizes are printed), one answer,
then ``--answers`` concurrent uncached answers (peak sampled every 20 ms).
RSS is split into anonymous memory and file-backed pages (the mmap'd weights)
from /proc/self/status. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

QUESTIONS = ["What are the EOC activation levels?", "How do I request relief stock?",
             "Who is on the communication tree for a flood?", "What goes in a situation report?",
             "What are the minimum WASH standards in a shelter?", "How is an evacuation ordered?",
             "What does the duty officer do at shift handover?", "What are the ICS roles?"]


def memory() -> dict:
    """RSS, and its anonymous / file-backed parts (Linux: the mmap'd weights are file pages), in MB."""
    out = {"rss_mb": psutil.Process().memory_info().rss / 2**20}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key.lower().replace("rss", "rss_") + "_mb"] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return {k: round(v, 1) for k, v in out.items()}


class BufferLines(logging.Handler):
    """Keeps llama.cpp's 'buffer size' log lines (routed to Python logging at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "buffer size" in msg or "flash_attn" in msg or ("n_ctx" in msg and "=" in msg and "train" not in msg):
            self.lines.append(" ".join(msg.split()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--answers", type=int, default=8, help="Concurrent uncached answers in the last stage.")
    args = p.parse_args()

    buffers = BufferLines()
    llama_log = logging.getLogger("neoc_assistant.llama_cpp")
    llama_log.setLevel(logging.DEBUG)
    llama_log.addHandler(buffers)

    stages: list[tuple[str, dict]] = [("python + settings", memory())]
    import neoc_assistant.serve.app  # noqa: F401 - Gradio, FastAPI: what serve imports first
    stages.append(("web app imports (Gradio, FastAPI)", memory()))

    from neoc_assistant.container import Container
    from neoc_assistant.settings import Settings

    container = Container(Settings())
    assistant = container.assistant
    _ = container.embedder.model
    stages.append(("embedding model (torch)", memory()))
    container.retriever.retrieve(QUESTIONS[0])
    stages.append(("vector store + one search", memory()))
    slots, mode = assistant.generation_slots()
    stages.append((f"LLM: weights + context ({slots} slots, {mode})", memory()))
    assistant.ask(QUESTIONS[0], use_cache=False)
    stages.append(("one answer", memory()))

    peak = {"rss_mb": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["rss_mb"] = max(peak["rss_mb"], psutil.Process().memory_info().rss / 2**20)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=assistant.ask, args=(QUESTIONS[i % len(QUESTIONS)] + " " * (i // 8),),
                                kwargs={"use_cache": False}) for i in range(args.answers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    sampler.join()
    after = memory()
    after["peak_rss_mb"] = round(peak["rss_mb"], 1)
    stages.append((f"{args.answers} concurrent answers", after))

    print(f"{'stage':48} {'RSS MB':>8} {'+MB':>7} {'anon':>7} {'file':>7}")
    previous = 0.0
    for name, m in stages:
        print(f"{name:48} {m['rss_mb']:8.0f} {m['rss_mb'] - previous:+7.0f} {m.get('rss_anon_mb', 0):7.0f} "
              f"{m.get('rss_file_mb', 0):7.0f}" + (f"  peak {m['peak_rss_mb']:.0f}" if "peak_rss_mb" in m else ""))
        previous = m["rss_mb"]
    print("llama.cpp:")
    for line in buffers.lines:
        print("   ", line)
    engine = container.engine
    plan = getattr(engine, "pool_plan", {})
    print(json.dumps({"stages": dict(stages), "llama_cpp": buffers.lines,
                      "pool_plan": {k: v for k, v in plan.items() if not k.endswith("bytes")}}))
    assistant.close()


if __name__ == "__main__":
    main()
