#!/usr/bin/env python
"""Does what the officer is shown carry the answer? Key-fact coverage of the shown answer, per answer path.

Usage::

    python scripts/eval_reader.py tests/data/reader_kb.jsonl --split tune
    python scripts/eval_reader.py tests/data/reader_fema.jsonl --corpus ../shared/corpora/fema \\
        --data-dir /tmp/neoc-eval/fema --split heldout
    python scripts/eval_reader.py tests/data/reader_kb.jsonl --configs quotes,reader,written \\
        --model ~/.cache/neoc-assistant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    # --limit N, --set NAME=VALUE (any setting, sectioned as reader.mode=model or flat), --out FILE.jsonl

Rows (each over the same questions and store):

* ``ceiling`` - the evidence passage itself shown as the answer: the chunk of the question's files
  that carries the most key facts (what a perfect passage-level reader could show);
* ``naive`` - the first 60 words of the top retrieved passage;
* ``quotes`` - the product without a model (the laptop default);
* ``reader`` - the model chooses which of the composed extracts answers (``--model``);
* ``written`` - the model writes, every claim verified (``--model``).

Per row: **coverage** (mean share of each answerable question's key facts carried by the shown text; a
not-found carries none) and its ratio to the ceiling; questions with every fact carried; false not-found
(answerable -> not-found); unanswerable -> not-found, and unanswerable answered with quotes; numbers
shown that no passage holds; repeated lines; p50/p95 seconds. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

from _answer_metrics import fact_share, percentile, repeated_lines, shown_numbers_unsupported  # noqa: E402
from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

NO_MODEL = Path("/nonexistent/no-model.gguf")
CONFIGS = {
    "quotes": lambda model: {"model_path": NO_MODEL},
    "reader": lambda model: {"model_path": model, "reader": {"mode": "model"}},
    "written": lambda model: {"model_path": model, "reader": {"mode": "rules"}},
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def parse_sets(pairs: list[str]) -> dict:
    """``reader.mode=model`` -> {"reader": {"mode": "model"}}; ``n_ctx=2048`` stays flat."""
    out: dict = {}
    for kv in pairs:
        name, _, value = kv.partition("=")
        if "." in name:
            section, field = name.split(".", 1)
            out.setdefault(section, {})[field] = value
        else:
            out[name] = value
    return out


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = {**out[k], **v} if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def ceiling_texts(container: Container, items: list[dict]) -> dict[str, str]:
    """Per answerable question: the chunk of its files that carries the most of its key facts."""
    manifest = container.manifest
    out: dict[str, str] = {}
    chunk_cache: dict[str, list[str]] = {}
    for item in items:
        if not item.get("answerable", True):
            continue
        texts: list[str] = []
        for source in item.get("files", []):
            if source not in chunk_cache:
                # a corpus given as one file is stored under its bare name
                record = manifest.file(source) or manifest.file(Path(source).name)
                ids = manifest.chunk_ids_of([record.doc_hash]) if record else []
                chunk_cache[source] = [c.text for c in manifest.chunks_by_id(ids).values()]
            texts += chunk_cache[source]
        out[item["id"]] = max(texts, key=lambda t: fact_share(t, item["key_facts"]), default="")
    return out


def score(rows: list[tuple[dict, dict, float]]) -> dict:
    ans = [(i, a) for i, a, _ in rows if i.get("answerable", True)]
    una = [(i, a) for i, a, _ in rows if not i.get("answerable", True)]
    shares = [fact_share(a["answer"], i["key_facts"]) if a["mode"] != "not-found" else 0.0 for i, a in ans]
    unsupported = [(i["id"], n) for i, a, _ in rows for n in shown_numbers_unsupported(a, i["text"])]
    latencies = [s for _, _, s in rows if s is not None]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for (i, _), share in zip(ans, shares):
        by_kind[i.get("kind", "?")].append(share)
    return {
        "answerable": len(ans),
        "coverage": round(statistics.mean(shares), 3) if shares else None,
        "all_facts": sum(1 for s in shares if s == 1.0),
        "false_not_found": sum(1 for _, a in ans if a["mode"] == "not-found"),
        "unanswerable": len(una),
        "unanswerable_not_found": sum(1 for _, a in una if a["mode"] == "not-found"),
        "unanswerable_quoted": sum(1 for _, a in una if a["mode"] != "not-found"),
        "unsupported_numbers": len(unsupported),
        "unsupported_examples": unsupported[:6],
        "repeated_lines": sum(repeated_lines(a["answer"]) for _, a, _ in rows),
        "p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "by_kind": {k: round(statistics.mean(v), 3) for k, v in sorted(by_kind.items())},
        "missed": [i["id"] for (i, a), s in zip(ans, shares) if s < 1.0],
        "quoted_unanswerable": [i["id"] for i, a in una if a["mode"] != "not-found"],
        "not_found_answerable": [i["id"] for i, a in ans if a["mode"] == "not-found"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions")
    ap.add_argument("--corpus", default=str(ROOT / "knowledge_base"))
    ap.add_argument("--data-dir", help="store reused between runs (default /tmp/neoc-eval/reader-<corpus>)")
    ap.add_argument("--model", help="GGUF for the reader/written rows")
    ap.add_argument("--split", default="all", choices=["tune", "heldout", "all"])
    ap.add_argument("--configs", default="quotes")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--out", help="write every answer as JSONL here")
    ap.add_argument("--verbose", action="store_true", help="print the ids of missed questions")
    args = ap.parse_args(argv)

    items = [q for q in read_jsonl(Path(args.questions)) if args.split == "all" or q.get("split") == args.split]
    items = items[: args.limit] if args.limit else items
    corpus = Path(args.corpus).resolve()
    data_dir = Path(args.data_dir or f"/tmp/neoc-eval/reader-{corpus.name}")
    model = Path(args.model).expanduser() if args.model else None
    kb_dir = corpus.parent if corpus.is_file() else corpus  # a corpus of one file: its folder is the KB's root
    base = merged(dict(data_dir=data_dir, kb_dir=kb_dir, cache_enabled=False, query_log_enabled=False),
                  parse_sets(args.set))
    print(f"{len(items)} questions ({args.split}) from {args.questions}; corpus {corpus}; model {model}")
    first = Container(Settings(**merged(base, {"model_path": NO_MODEL})))
    t0 = time.perf_counter()
    summary = first.assistant.ingest([corpus], show_progress=True)
    print(f"store ready in {time.perf_counter() - t0:.0f}s: {summary.to_dict().get('chunks', '?')} chunks changed")

    ceilings = ceiling_texts(first, items)
    results: dict[str, dict] = {}
    results["ceiling"] = score([(i, {"answer": (c := ceilings.get(i["id"], "")), "mode": "extractive", "sources": [{"text": c}]}, None)
                                for i in items if i.get("answerable", True)])
    naive_rows = []
    for item in items:
        hits = first.assistant.search(item["text"], k=1)
        text = " ".join(hits[0].text.split()[:60]) if hits else ""
        naive_rows.append((item, {"answer": text, "mode": "extractive" if text else "not-found",
                                  "sources": [{"text": h.text} for h in hits]}, None))
    results["naive"] = score(naive_rows)

    out_rows = []
    for name in [c for c in args.configs.split(",") if c]:
        if name != "quotes" and model is None:
            raise SystemExit(f"config {name!r} needs --model")
        settings = Settings(**merged(base, CONFIGS[name](model)))
        container = Container(settings, embedder=first.embedder, manifest=first.manifest, vectors=first.vectors)
        rows = []
        for n, item in enumerate(items, start=1):
            t = time.perf_counter()
            answer = container.assistant.ask(item["text"], use_cache=False).to_json()
            rows.append((item, answer, time.perf_counter() - t))
            out_rows.append({"config": name, "id": item["id"], "question": item["text"], "answer": answer})
            print(f"\r  {name}: {n}/{len(items)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        container.engine.close()
        results[name] = score(rows)

    print_table(results, args.verbose)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out_rows))
    print(json.dumps({"questions": args.questions, "split": args.split, "n": len(items), "model": str(model),
                      "results": {k: {m: v for m, v in r.items() if m not in ("missed",)} for k, r in results.items()}}))
    return 0


def print_table(results: dict[str, dict], verbose: bool) -> None:
    ceiling = results["ceiling"]["coverage"] or 1.0
    names = list(results)
    keys = ["answerable", "coverage", "x_ceiling", "all_facts", "false_not_found", "unanswerable",
            "unanswerable_not_found", "unanswerable_quoted", "unsupported_numbers", "repeated_lines", "p50_s", "p95_s"]
    print("\n" + f"{'':24}" + "".join(f"{n:>11}" for n in names))
    for k in keys:
        cells = []
        for n in names:
            r = results[n]
            value = round((r["coverage"] or 0) / ceiling, 3) if k == "x_ceiling" else r.get(k)
            cells.append(f"{str(value):>11}")
        print(f"{k:24}" + "".join(cells))
    for n in names:
        if n in ("ceiling", "naive"):
            continue
        r = results[n]
        print(f"  {n} by kind: {r['by_kind']}")
        if r["unsupported_examples"]:
            print(f"  {n}: unsupported numbers e.g. {r['unsupported_examples']}")
        if verbose:
            print(f"  {n} missed: {r['missed']}\n  {n} quoted unanswerable: {r['quoted_unanswerable']}"
                  f"\n  {n} not-found answerable: {r['not_found_answerable']}")


if __name__ == "__main__":
    raise SystemExit(main())
