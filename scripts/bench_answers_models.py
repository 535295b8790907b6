#!/usr/bin/env python
"""Written-answer speed of the REAL installed models on the REAL prompts of held-out questions.

``bench_generate.py`` measures the engine against raw llama.cpp on random-weight models; this
answers the officer's question - how long until the answer starts, and until it is done - with
the prompts the assistant actually sends (``_answer_prompts.py``: retrieval over the default
knowledge base, the reader's extracts, the real chat template) and the product's generation
settings (``max_tokens``, greedy, penalties, stop texts).

Per model and per file variant (the installed file, and copies requantized into ``--quant-dir``
with ``models convert``), every question is run twice, next to each other:

* **cold**: the KV cache holds nothing of the prompt (a tiny unrelated prompt ran just before);
  one token is generated - its time is the time to first token (TTFT) with no reuse;
* **engine** (as it runs now): the question straight after a *different* question, so the shared
  part of the prompt (system prompt and everything before the first passage) is reused from the
  KV cache; the whole answer is generated.

A cold answer's time is its TTFT plus the same question's decode time from the engine run (the
decode does not depend on how the prompt got into the cache). Variants alternate per question
(ABBA), so a load spike from other jobs on a shared machine hits baseline and candidate alike;
the ratios are the figures to read. Answers are greedy, so a variant's text can be compared with
the original's: ``facts_covered`` counts answers that contain every key fact of the reference
(raw model text, before claim checking), ``same_text`` answers identical to the original's.

    python scripts/bench_answers_models.py                               # 3 models, Q4_0 vs installed
    python scripts/bench_answers_models.py --models qwen1.5b --limit 12 --quants Q4_0,Q8_0
    python scripts/bench_answers_models.py --set max_tokens=200 --dump /tmp/answers.jsonl

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

from _answer_metrics import percentile  # noqa: E402
from _answer_prompts import assistant_for, capture_prompts, read_questions  # noqa: E402
from neoc_assistant.generate import quantize  # noqa: E402
from neoc_assistant.generate.engine import GenerationEngine  # noqa: E402
from neoc_assistant.language.normalize import tokenize  # noqa: E402

MODELS_DIR = Path.home() / ".cache/neoc-assistant/models"
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "qwen0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "qwen1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
}
FLUSH = [{"role": "system", "content": "x"}, {"role": "user", "content": "ok"}]


def converted(original: Path, to: str, quant_dir: Path) -> Path:
    """``original`` requantized to ``to`` in ``quant_dir`` (made once, reused)."""
    target = quant_dir / f"{original.stem}.{to}.gguf"
    if not target.exists():
        quant_dir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        quantize.quantize(original, target, to)
        print(f"  converted {original.name} -> {target.name} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    return target


def run(engine: GenerationEngine, messages: list[dict], max_tokens: int | None) -> dict:
    """One answer as a client sees it: wall time to the first text piece and to the end."""
    stats: dict = {}
    t0 = time.perf_counter()
    first = None
    pieces = []
    with engine.stream(messages, max_tokens=max_tokens, stats=stats) as stream:
        for piece in stream:
            if first is None:
                first = time.perf_counter()
            pieces.append(piece)
    end = time.perf_counter()
    return {"ttft": (first or end) - t0, "total": end - t0, "prompt": stats.get("prompt_tokens", 0),
            "reused": stats.get("reused_tokens", 0), "evaluated": stats.get("evaluated_tokens", 0),
            "generated": stats.get("generated_tokens", 0), "decode_s": stats.get("decode_seconds", 0.0),
            "finish": stats.get("finish_reason"), "text": "".join(pieces)}


def has_facts(text: str, item: dict) -> bool:
    facts = item.get("key_facts") or []
    words = " " + " ".join(tokenize(text)) + " "
    return bool(facts) and all(" " + " ".join(tokenize(f)) + " " in words for f in facts)


def shared_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def bench_model(key: str, args) -> dict:
    original = Path(args.models_dir) / MODELS[key]
    variants = {"installed": original}
    for to in [q for q in args.quants.split(",") if q]:
        variants[to] = converted(original, to, args.quant_dir)
    overrides = dict(kv.split("=", 1) for kv in args.set)
    container = assistant_for(original, args.data_dir, args.kb_dir, pool_size=args.slots, **overrides)
    rows = capture_prompts(container, read_questions(args.questions, args.split, args.limit))
    base = container.engine
    assert isinstance(base, GenerationEngine)
    engines = {"installed": base}
    for name, path in variants.items():
        if name != "installed":
            engines[name] = GenerationEngine(container.settings.generation.model_copy(update={"model_path": path}))
            engines[name].load()
    prompts = [base.prompt_tokens(r["messages"]) for r in rows]
    prefix = min(shared_prefix(prompts[i], prompts[i - 1]) for i in range(1, len(prompts))) if len(rows) > 1 else 0
    print(f"== {key}: {len(rows)} written-answer prompts of {len(prompts and prompts[0] or [])}.. tokens, "
          f"shared prefix across questions {prefix} tokens; variants {', '.join(variants)}", file=sys.stderr,
          flush=True)
    res: dict[str, dict[str, list]] = {name: {"cold": [], "engine": []} for name in variants}
    names = list(variants)
    for k, row in enumerate(rows):
        nxt = rows[(k + 1) % len(rows)]
        for name in (names if k % 2 == 0 else names[::-1]):
            eng = engines[name]
            run(eng, FLUSH, 1)
            cold = run(eng, row["messages"], 1)  # nothing of this prompt in the KV cache
            warm = run(eng, nxt["messages"], None)  # after a different question: the engine as it runs
            res[name]["cold"].append((row["item"]["id"], cold))
            res[name]["engine"].append((nxt["item"]["id"], warm))
        line = " | ".join(f"{n} cold {res[n]['cold'][-1][1]['ttft']:.2f}s engine {res[n]['engine'][-1][1]['ttft']:.2f}"
                          f"/{res[n]['engine'][-1][1]['total']:.1f}s" for n in names)
        print(f"  {k + 1}/{len(rows)} {line}", file=sys.stderr, flush=True)
    for eng in engines.values():
        eng.close()
    items = {r["item"]["id"]: r["item"] for r in rows}
    out = {"questions": len(rows), "shared_prefix_tokens": prefix, "variants": {}}
    for name in names:
        out["variants"][name] = summarize(res[name], items, res["installed"]["engine"], variants[name])
    base_v = out["variants"]["installed"]
    for name in names[1:]:
        v = out["variants"][name]
        v["vs_installed"] = {m: round(v[m] / base_v[m], 3) for m in
                             ("ttft_cold_p50_s", "ttft_engine_p50_s", "answer_engine_p50_s", "answer_engine_p95_s",
                              "decode_tps", "prefill_tps") if base_v.get(m)}
    if args.dump:
        with open(args.dump, "a", encoding="utf-8") as fh:
            for name in names:
                for qid, r in res[name]["engine"]:
                    fh.write(json.dumps({"model": key, "variant": name, "id": qid, **r}, ensure_ascii=False) + "\n")
    return out


def summarize(runs: dict[str, list], items: dict[str, dict], base_runs: list, path: Path) -> dict:
    cold = dict(runs["cold"])
    warm = dict(runs["engine"])
    p = lambda xs, q: round(percentile(xs, q), 2)  # noqa: E731
    decode_by_q = {q: r["total"] - r["ttft"] for q, r in warm.items()}
    cold_answer = [cold[q]["ttft"] + decode_by_q[q] for q in cold if q in decode_by_q]
    gen = [r["generated"] for r in warm.values()]
    finishes: dict[str, int] = {}
    for r in warm.values():
        finishes[r["finish"]] = finishes.get(r["finish"], 0) + 1
    base_text = {q: r["text"] for q, r in base_runs}
    cold_eval = sum(r["evaluated"] for r in cold.values())
    cold_ttft = sum(r["ttft"] for r in cold.values())
    return {
        "file": path.name, "file_mb": round(path.stat().st_size / 1e6), "type": _file_type(path),
        "prompt_tokens_p50": statistics.median(r["prompt"] for r in warm.values()),
        "reused_tokens_p50": statistics.median(r["reused"] for r in warm.values()),
        "ttft_cold_p50_s": p([r["ttft"] for r in cold.values()], 0.5),
        "ttft_cold_p95_s": p([r["ttft"] for r in cold.values()], 0.95),
        "ttft_engine_p50_s": p([r["ttft"] for r in warm.values()], 0.5),
        "ttft_engine_p95_s": p([r["ttft"] for r in warm.values()], 0.95),
        "answer_cold_p50_s": p(cold_answer, 0.5), "answer_cold_p95_s": p(cold_answer, 0.95),
        "answer_engine_p50_s": p([r["total"] for r in warm.values()], 0.5),
        "answer_engine_p95_s": p([r["total"] for r in warm.values()], 0.95),
        "prefill_tps": round(cold_eval / cold_ttft, 1) if cold_ttft else None,
        "decode_tps": round(sum(max(0, g - 1) for g in gen) / max(1e-9, sum(r["decode_s"] for r in warm.values())), 2),
        "generated_p50": statistics.median(gen), "generated_p95": p(gen, 0.95), "finish": finishes,
        "facts_covered": sum(1 for q, r in warm.items() if has_facts(r["text"], items[q])),
        "same_text_as_installed": sum(1 for q, r in warm.items() if base_text.get(q) == r["text"]),
    }


def _file_type(path: Path) -> str:
    from neoc_assistant.generate import model_file

    return quantize.file_type(model_file.inspect_gguf(path).metadata)


def print_table(results: dict) -> None:
    cols = ["type", "prompt_tokens_p50", "reused_tokens_p50", "ttft_cold_p50_s", "ttft_cold_p95_s",
            "ttft_engine_p50_s", "ttft_engine_p95_s", "answer_cold_p50_s", "answer_cold_p95_s",
            "answer_engine_p50_s", "answer_engine_p95_s", "prefill_tps", "decode_tps", "generated_p50",
            "facts_covered", "same_text_as_installed"]
    for key, m in results["models"].items():
        print(f"\n{key} ({m['questions']} questions, shared prefix {m['shared_prefix_tokens']} tokens)")
        names = list(m["variants"])
        print(f"{'':24}" + "".join(f"{n:>14}" for n in names))
        for c in cols:
            print(f"{c:24}" + "".join(f"{str(m['variants'][n].get(c)):>14}" for n in names))
        for n in names[1:]:
            print(f"  {n} / installed: {m['variants'][n]['vs_installed']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of " + ", ".join(MODELS))
    ap.add_argument("--models-dir", default=str(MODELS_DIR))
    ap.add_argument("--questions", type=Path, default=ROOT / "tests/data/answers_kb.jsonl")
    ap.add_argument("--split", default="heldout", choices=["tune", "heldout", "all"])
    ap.add_argument("--limit", type=int, default=0, help="first N questions of the split (0 = all)")
    ap.add_argument("--kb-dir", type=Path, default=ROOT / "knowledge_base")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/neoc-bench-answers/kb"))
    ap.add_argument("--quant-dir", type=Path, default=Path("/tmp/neoc-bench-answers/models"))
    ap.add_argument("--quants", default="Q4_0", help="requantized variants to compare (comma list; '' = none)")
    ap.add_argument("--slots", type=int, default=1, help="answer slots (pool_size); one answer at a time here")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any setting, e.g. max_tokens=200")
    ap.add_argument("--dump", help="append every engine-run answer as JSONL here")
    args = ap.parse_args(argv)
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                     "split": args.split, "questions_file": str(args.questions), "models": {}}
    for key in [k.strip() for k in args.models.split(",") if k.strip()]:
        if key not in MODELS:
            ap.error(f"unknown model {key!r}; choose from {', '.join(MODELS)}")
        results["models"][key] = bench_model(key, args)
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print_table(results)
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
