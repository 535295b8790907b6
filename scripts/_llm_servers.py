"""The two OpenAI-compatible LLM servers compared by ``bench_llm_servers.py``, and the engine-level probe.

* ``llama_server()``: llama.cpp's own ``llama-server`` (built from the
  ``vendor/llama.cpp`` of the llama-cpp-python sdist, see docs/deploy.md),
  ``--parallel N`` slots of ``slot_ctx`` tokens each, continuous batching.
* ``python_server()``: ``python -m llama_cpp.server`` (the ``[server]`` extra
  of llama-cpp-python) - one ``Llama`` behind a lock, so one answer at a time.
  Its default ``interrupt_requests=True`` ends the answer being streamed with
  ``[DONE]`` (no ``finish_reason``) as soon as another request waits for the
  lock: under concurrency answers are silently cut short. ``interrupt=False``
  queues them instead, which is the configuration worth comparing.
* ``stream_chat()`` / ``engine_round()``: N concurrent streamed
  ``/v1/chat/completions`` with RAG-sized prompts straight to a server -
  aggregate completion tokens/s, time to first token, tokens per answer (a
  cut-short answer shows up there).

Both servers are started with the same GGUF, the same threads and the same
model alias, so the assistant in front of them cannot tell them apart.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # services.py: ManagedProcess (process-group start/stop, readiness)

from services import ManagedProcess, http_ok  # noqa: E402

ALIAS = "bench-model"


def llama_server(binary: Path, model: Path, port: int, log_path: Path, *, parallel: int, slot_ctx: int,
                 threads: int) -> ManagedProcess:
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--alias", ALIAS,
           "--parallel", str(parallel), "-c", str(parallel * slot_ctx), "--cont-batching",
           "-t", str(threads), "-tb", str(threads), "--metrics", "--no-webui"]
    return ManagedProcess(cmd, log_path=log_path, ready=http_ok(f"http://127.0.0.1:{port}/health"),
                          startup_timeout=120)


def python_server(model: Path, port: int, log_path: Path, *, slot_ctx: int, threads: int,
                  interrupt: bool = False) -> ManagedProcess:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(slot_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--interrupt_requests", str(interrupt), "--verbose", "False"]
    return ManagedProcess(cmd, log_path=log_path, ready=http_ok(f"http://127.0.0.1:{port}/v1/models"),
                          startup_timeout=120)


def rag_prompts(kb_dir: Path, n: int, chars: int = 3600) -> list[list[dict]]:
    """``n`` different prompts shaped like the assistant's: instructions, ~900 tokens of documents, a question.
    Each uses another document, so no server gets a shared-prefix shortcut the other lacks."""
    docs = sorted(kb_dir.glob("*.md"))
    prompts = []
    for i in range(n):
        doc = docs[i % len(docs)]
        text = doc.read_text(encoding="utf-8")[:chars]
        title = doc.stem.split("-", 1)[-1].replace("-", " ")
        prompts.append([
            {"role": "system", "content": "You answer duty officers' questions from the documents given. "
                                          "Cite the document in brackets. If the documents do not say, say so."},
            {"role": "user", "content": f"Documents:\n[1] {doc.name}\n{text}\n\n"
                                        f"Question ({i}): What are the key steps of the {title}?"},
        ])
    return prompts


def stream_chat(client: httpx.Client, base: str, messages: list[dict], max_tokens: int) -> dict:
    """One streamed answer: seconds to the first text, total seconds, completion tokens, finish reason."""
    body = {"model": ALIAS, "messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": 0.0,
            "seed": 1, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first = None
    pieces = 0
    usage_tokens = None
    finish = None
    with client.stream("POST", base + "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage_tokens = event["usage"].get("completion_tokens")
            for choice in event.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    pieces += 1
                    if first is None:
                        first = time.perf_counter() - t0
                finish = choice.get("finish_reason") or finish
    total = time.perf_counter() - t0
    return {"ttft_s": first if first is not None else total, "total_s": total,
            "tokens": usage_tokens if usage_tokens else pieces, "finish": finish or "none"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def engine_round(base: str, prompts: list[list[dict]], max_tokens: int) -> dict:
    """All ``prompts`` sent at once, each on its own connection; aggregate figures of the round."""
    results: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(messages: list[dict]) -> None:
        try:
            with httpx.Client(timeout=600) as client:
                row = stream_chat(client, base, messages, max_tokens)
            with lock:
                results.append(row)
        except (httpx.HTTPError, ValueError) as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=one, args=(m,), daemon=True) for m in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    tokens = sum(r["tokens"] for r in results)
    ttft = [r["ttft_s"] for r in results] or [float("nan")]
    finishes: dict[str, int] = {}
    for r in results:
        finishes[r["finish"]] = finishes.get(r["finish"], 0) + 1
    return {"n": len(prompts), "ok": len(results), "errors": len(errors), "error_samples": errors[:2],
            "wall_s": round(wall, 2), "tokens": tokens, "tokens_per_s": round(tokens / wall, 2) if wall else None,
            "ttft_p50_s": round(statistics.median(ttft), 2), "ttft_p95_s": round(pct(ttft, 0.95), 2),
            "tokens_per_answer_min": min((r["tokens"] for r in results), default=0),
            "tokens_per_answer_avg": round(tokens / len(results), 1) if results else 0, "finish": finishes}
