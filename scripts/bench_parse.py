#!/usr/bin/env python
"""What reading files in a child process costs: the ingest's parser vs the same loaders in-process.

    python scripts/bench_parse.py [CORPUS_DIR] [--rounds N]

Parses every supported file of the corpus (no chunking, no embedding) with
``loaders.load_document`` in this process, then with ``isolation.IsolatedParser``
(one worker for the pass, started inside the timing, as an ingest run does),
alternating for N rounds; prints each pass and ends with one JSON line: the
best time of each side and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits  # noqa: E402
from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_document  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpora" / "fema"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    corpus = Path(args.corpus).resolve()
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        print(f"error: no supported files in {corpus}", file=sys.stderr)
        return 2
    limits = ParseLimits.from_settings(Settings().store)
    best = {"in-process": float("inf"), "child": float("inf")}
    failed = {"in-process": 0, "child": 0}
    for round_number in range(1, args.rounds + 1):
        for side in best:
            worker = IsolatedParser(limits)
            failed[side] = 0
            started = time.perf_counter()
            for path in files:
                data = path.read_bytes()
                try:
                    if side == "child":
                        worker.load(path, data)
                    else:
                        load_document(path, data, limits.max_chars, limits.package)
                except Exception:  # noqa: BLE001 - a failing file counts the same on both sides
                    failed[side] += 1
            worker.close()
            seconds = time.perf_counter() - started
            best[side] = min(best[side], seconds)
            print(f"round {round_number}  {side:10s}  {len(files)} files  {seconds:7.2f} s  "
                  f"({1000 * seconds / len(files):.1f} ms a file, {failed[side]} failed)", flush=True)
    figures = {"corpus": str(corpus), "files": len(files), "in_process_s": round(best["in-process"], 3),
               "child_s": round(best["child"], 3), "ratio": round(best["child"] / best["in-process"], 3),
               "failed": failed}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
