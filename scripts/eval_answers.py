#!/usr/bin/env python
"""Answer quality with a real model: (a) the raw model answer vs (b) the verified answer, same run.

Usage::

    python scripts/eval_answers.py tests/data/answers_kb.jsonl --corpus knowledge_base --split heldout
    python scripts/eval_answers.py tests/data/answers_fema.jsonl --corpus ../shared/corpora/fema \\
        --data-dir /tmp/neoc-eval/fema-answers --split heldout
    # options: --model PATH (default: models/ or the installed SmolLM2), --configs raw,verified,extractive,
    #          --limit N, --set NAME=VALUE (any setting), --out FILE.jsonl (every answer)

Configurations (each over the same questions, store and model):

* ``raw`` - what the assistant did before claim verification: no answerability
  check, no verification, sampling at temperature 0.1 without repetition/DRY
  penalties or loop guard, up to 512 tokens;
* ``verified`` - the product defaults;
* ``extractive`` - no model at all (quotes only).

Per configuration: answered / extractive / not-found counts (answerable and
unanswerable questions apart), claims removed, **unsupported numbers shown** (a
number in the shown text that is in no passage given and not in the question),
**evidence covered** (every key fact of the reference is in the shown text),
answers that stopped on a chat-template marker or a loop, and p50/p95 latency.
Ends with one JSON line.
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
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

from _answer_metrics import percentile, shown_numbers_unsupported  # noqa: E402
from neoc_assistant.language.normalize import tokenize  # noqa: E402
from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

CONFIGS = {
    "raw": dict(answerability_check=False, verify_answers=False, temperature=0.1, repeat_penalty=1.0,
                dry_multiplier=0.0, loop_guard=False, max_tokens=512),
    "verified": {},
    "extractive": dict(model_path=Path("/nonexistent/no-model.gguf")),
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def covered(answer: dict, item: dict) -> bool:
    facts = item.get("key_facts") or []
    if not facts or answer["mode"] == "not-found":
        return False
    tokens = " " + " ".join(tokenize(answer["answer"])) + " "
    return all(" " + " ".join(tokenize(f)) + " " in tokens for f in facts)


def default_model() -> Path | None:
    found = Settings().generation.resolved_model_path()
    if found:
        return found
    cached = Path.home() / ".cache/neoc-assistant/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    return cached if cached.is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions")
    ap.add_argument("--corpus", default=str(ROOT / "knowledge_base"))
    ap.add_argument("--data-dir", help="store to reuse between runs (default /tmp/neoc-eval/answers-<corpus>)")
    ap.add_argument("--model", help="GGUF (default: models/, else the installed SmolLM2)")
    ap.add_argument("--split", default="all", choices=["tune", "heldout", "all"])
    ap.add_argument("--configs", default="raw,verified,extractive")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", help="write every answer as JSONL here")
    args = ap.parse_args(argv)

    items = [q for q in read_jsonl(Path(args.questions)) if args.split == "all" or q.get("split") == args.split]
    if args.limit:
        items = items[: args.limit]
    corpus = Path(args.corpus).resolve()
    data_dir = Path(args.data_dir or f"/tmp/neoc-eval/answers-{corpus.name}")
    model = Path(args.model) if args.model else default_model()
    overrides = {}
    for kv in args.set:
        name, _, value = kv.partition("=")
        overrides[name] = value
    base = dict(data_dir=data_dir, kb_dir=corpus, model_path=model, cache_enabled=False, query_log_enabled=False,
                **overrides)
    print(f"{len(items)} questions ({args.split}) from {args.questions}; corpus {corpus}; model {model}")

    first = Container(Settings(**base))
    t0 = time.perf_counter()
    summary = first.assistant.ingest([corpus], show_progress=True)
    print(f"store ready in {time.perf_counter() - t0:.0f}s: {summary.to_dict().get('chunks', '?')} chunks changed")

    results: dict[str, dict] = {}
    out_rows = []
    for name in args.configs.split(","):
        settings = Settings(**{**base, **CONFIGS[name]})
        container = Container(settings, embedder=first.embedder, manifest=first.manifest, vectors=first.vectors)
        rows = []
        for n, item in enumerate(items, start=1):
            t = time.perf_counter()
            answer = container.assistant.ask(item["text"], use_cache=False).to_json()
            seconds = time.perf_counter() - t
            rows.append((item, answer, seconds))
            out_rows.append({"config": name, "id": item["id"], "answer": answer})
            print(f"\r  {name}: {n}/{len(items)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        if name != "extractive":
            container.engine.close()
        results[name] = score(rows)

    print_table(results)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows))
    print(json.dumps({"questions": args.questions, "split": args.split, "n": len(items),
                      "model": str(model), "results": results}))
    return 0


def score(rows: list[tuple[dict, dict, float]]) -> dict:
    ans = [(i, a) for i, a, _ in rows if i.get("answerable", True)]
    una = [(i, a) for i, a, _ in rows if not i.get("answerable", True)]
    modes = lambda pairs, m: sum(1 for _, a in pairs if a["mode"] == m)  # noqa: E731
    unsupported = [(i["id"], n) for i, a, _ in rows for n in shown_numbers_unsupported(a, i["text"])]
    latencies = [s for _, _, s in rows]
    return {
        "answerable": len(ans),
        "answerable_llm": modes(ans, "llm"),
        "answerable_extractive": modes(ans, "extractive"),
        "answerable_not_found": modes(ans, "not-found"),
        "answerable_answered_rate": round(1 - modes(ans, "not-found") / len(ans), 3) if ans else None,
        "evidence_covered": sum(1 for i, a in ans if covered(a, i)),
        "evidence_covered_rate": round(sum(1 for i, a in ans if covered(a, i)) / len(ans), 3) if ans else None,
        "unanswerable": len(una),
        "unanswerable_not_found": modes(una, "not-found"),
        "unanswerable_not_found_rate": round(modes(una, "not-found") / len(una), 3) if una else None,
        "claims_removed": sum(len(a.get("unsupported_claims") or []) for _, a, _ in rows),
        "partial": sum(1 for _, a, _ in rows if (a.get("verification") or {}).get("status") == "partial"),
        "unsupported_numbers_shown": len(unsupported),
        "answers_with_unsupported_numbers": len({q for q, _ in unsupported}),
        "unsupported_examples": unsupported[:8],
        "template_marker_stops": sum(1 for _, a, _ in rows if (a.get("generation") or {}).get("stopped_on")),
        "loops_stopped": sum(1 for _, a, _ in rows if a.get("finish_reason") == "loop"),
        "hit_length_limit": sum(1 for _, a, _ in rows if a.get("finish_reason") == "length"),
        "p50_s": round(statistics.median(latencies), 2) if latencies else 0.0,
        "p95_s": round(percentile(latencies, 0.95), 2),
    }


def print_table(results: dict[str, dict]) -> None:
    names = list(results)
    keys = ["answerable", "answerable_llm", "answerable_extractive", "answerable_not_found", "evidence_covered_rate",
            "unanswerable", "unanswerable_not_found", "claims_removed", "partial", "unsupported_numbers_shown",
            "answers_with_unsupported_numbers", "template_marker_stops", "loops_stopped", "hit_length_limit",
            "p50_s", "p95_s"]
    print("\n" + f"{'':34}" + "".join(f"{n:>12}" for n in names))
    for k in keys:
        print(f"{k:34}" + "".join(f"{str(results[n].get(k)):>12}" for n in names))
    for n in names:
        if results[n]["unsupported_examples"]:
            print(f"  {n}: unsupported numbers e.g. {results[n]['unsupported_examples'][:5]}")


if __name__ == "__main__":
    raise SystemExit(main())
