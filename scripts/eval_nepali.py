#!/usr/bin/env python3
"""Nepali and English questions through the product's retrieval, per embedding model, in one table.

Issue 22 asks whether Nepali questions find English SOPs (cross-lingual), Nepali
notices (Nepali-only) and whether English questions find Nepali notices, with
the default embedder (all-MiniLM-L6-v2, English only) and multilingual-e5-small,
and whether the English question sets fall with e5. One store per model is
built over the same corpus (``knowledge_base/`` + ``tests/data/nepali_kb/``,
copied flat into ``ROOT/corpus`` so the source names are the file names) and
every question goes through ``Assistant.search_many`` with the settings as
they are (fusion, rerank, expansion: what the CLI and the UI use)::

    python scripts/eval_nepali.py                         # MiniLM and e5, /tmp/neoc-nepali
    python scripts/eval_nepali.py --models multilingual-e5-small --set retrieval.fusion_vector_weight=0.7

Stores are kept in ``ROOT/<model>`` and re-used (an ingest of unchanged files
costs nothing), so a second run only searches. A question's answer files are
its ``files`` (the Nepali set) or ``source`` / ``answer_files`` (the English
KB sets). Printed per question set, ``kind`` and ``split`` (and each kind over
both splits): n, then for each model file@5 (an answer file among the sources
of the top 5 hits, what the chain would put in the prompt) and MRR@10 (first
hit from an answer file). The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

from neoc_assistant import runtime

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETS = ["tests/data/nepali_questions.jsonl", "tests/data/kb_questions.jsonl", "tests/data/kb_paraphrases.jsonl"]
DEFAULT_FOLDERS = ["knowledge_base", "tests/data/nepali_kb"]
SHORT = {"all-minilm-l6-v2": "MiniLM", "multilingual-e5-small": "e5-small", "all-mpnet-base-v2": "mpnet"}


def build_corpus(root: Path, folders: list[str]) -> Path:
    """One flat folder holding every file, so the answer files are plain file names."""
    corpus = root / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        for path in sorted((REPO / folder).iterdir()):
            target = corpus / path.name
            if path.is_file() and (not target.exists() or target.read_bytes() != path.read_bytes()):
                shutil.copy2(path, target)
    return corpus


def nested(pairs: list[str]) -> dict:
    """``section.name=value`` pairs as the nested dict ``Settings`` takes."""
    out: dict = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        section, _, field = name.partition(".")
        if not field:
            raise SystemExit(f"--set wants section.name=value, got {pair!r}")
        out.setdefault(section, {})[field] = value
    return out


def open_store(root: Path, corpus: Path, model: str, overrides: dict) -> Container:
    sections = {k: dict(v) for k, v in overrides.items()}
    sections.setdefault("embedding", {})["model"] = model
    container = Container(Settings(data_dir=root / model, kb_dir=corpus, **sections))
    started = time.process_time()
    summary = container.assistant.ingest([corpus]).to_dict()
    print(f"# {model}: added {summary['added']} unchanged {summary['unchanged']} failed {summary['failed']}, "
          f"{container.manifest.counts()['chunks']} chunks, {time.process_time() - started:.1f} CPU-s",
          file=sys.stderr)
    return container


def answers_of(item: dict) -> set[str]:
    files = item.get("files") or item.get("answer_files") or [item["source"]]
    return {Path(str(f)).name for f in files}


def score(container: Container, items: list[dict]) -> list[dict]:
    """Per question: file rank in the top 10 (0 = absent) and the top-5 sources."""
    hits_per_q = container.assistant.search_many([q["text"] for q in items], k=10)
    out = []
    for item, hits in zip(items, hits_per_q):
        wanted, first = answers_of(item), 0
        for rank, hit in enumerate(hits[:10], start=1):
            if wanted & {Path(s).name for s in (hit.sources or [hit.source])}:
                first = rank
                break
        out.append({"id": item.get("id"), "rank": first, "top5": [Path(h.source).name for h in hits[:5]]})
    return out


def groups_of(set_name: str, item: dict) -> list[str]:
    kind = item.get("kind", "english")
    split = item.get("split")
    keys = [f"{set_name} {kind} all"]
    if split:
        keys.append(f"{set_name} {kind} {split}")
    return keys


def table(sets: dict[str, list[dict]], results: dict[str, dict[str, list[dict]]]) -> dict:
    figures: dict = {}
    for model, per_set in results.items():
        for set_name, items in sets.items():
            grouped: dict[str, list[int]] = defaultdict(list)
            for item, res in zip(items, per_set[set_name]):
                for key in groups_of(set_name, item):
                    grouped[key].append(res["rank"])
            for key, ranks in grouped.items():
                figures.setdefault(key, {"n": len(ranks)})[model] = {
                    "file@5": round(sum(0 < r <= 5 for r in ranks) / len(ranks), 3),
                    "mrr@10": round(sum(1.0 / r for r in ranks if r) / len(ranks), 3),
                }
    return figures


def print_table(figures: dict, models: list[str]) -> None:
    head = f"{'set kind split':<44}{'n':>4}" + "".join(f"{SHORT.get(m, m) + ' file@5 / MRR@10':>28}" for m in models)
    print(head)
    print("-" * len(head))
    for key in sorted(figures):
        row = figures[key]
        cells = "".join(
            f"{row[m]['file@5']:>17.3f} / {row[m]['mrr@10']:.3f}" if m in row else f"{'-':>28}" for m in models)
        print(f"{key:<44}{row['n']:>4}{cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all-minilm-l6-v2,multilingual-e5-small")
    parser.add_argument("--root", default="/tmp/neoc-nepali", help="corpus copy and one store per model")
    parser.add_argument("--questions", action="append", help=f"question sets (default {DEFAULT_SETS})")
    parser.add_argument("--folder", action="append", help=f"corpus folders (default {DEFAULT_FOLDERS})")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.NAME=VALUE")
    parser.add_argument("--per-query", metavar="FILE", help="one JSON line per model and question")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    root = Path(args.root)
    corpus = build_corpus(root, args.folder or DEFAULT_FOLDERS)
    sets = {Path(p).stem: [json.loads(line) for line in open(REPO / p, encoding="utf-8") if line.strip()]
            for p in (args.questions or DEFAULT_SETS)}
    overrides = nested(args.set)
    results: dict[str, dict[str, list[dict]]] = {}
    for model in models:
        container = open_store(root, corpus, model, overrides)
        results[model] = {name: score(container, items) for name, items in sets.items()}
    if args.per_query:
        with open(args.per_query, "w", encoding="utf-8") as fh:
            for model, per_set in results.items():
                for name, rows in per_set.items():
                    for row in rows:
                        fh.write(json.dumps({"model": model, "set": name, **row}, ensure_ascii=False) + "\n")
    figures = table(sets, results)
    print_table(figures, models)
    print(json.dumps({"models": models, "settings": overrides, "figures": figures}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
