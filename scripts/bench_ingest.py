#!/usr/bin/env python
"""Ingest benchmark: a real corpus into a fresh data dir, then again unchanged.

    python scripts/bench_ingest.py [CORPUS_DIR] [--data-dir DIR] [--keep]

Prints files, pages, chunks, seconds, chunks/s and peak RSS for the first
ingest, then the unchanged re-ingest time as a ratio of the first, and ends
with one JSON line of those figures. The embedding model is loaded before the
clock starts (its load time is printed separately).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpora" / "fema"))
    parser.add_argument("--data-dir", help="Where to build the store (default: a temp dir, removed afterwards).")
    parser.add_argument("--keep", action="store_true", help="Keep the temp data dir.")
    parser.add_argument("--progress", action="store_true", help="Show the per-file progress bar.")
    args = parser.parse_args()

    corpus = Path(args.corpus).resolve()
    if not corpus.is_dir():
        print(f"error: corpus directory not found: {corpus}", file=sys.stderr)
        return 2
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="neoc-bench-ingest-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        print(f"error: {data_dir} is not empty; the benchmark needs a fresh data dir", file=sys.stderr)
        return 2

    container = Container(Settings(data_dir=data_dir))
    t0 = time.perf_counter()
    container.assistant.warm_up()
    model_load = time.perf_counter() - t0

    first = container.assistant.ingest([corpus], show_progress=args.progress)
    rss_after_first = peak_rss_mb()
    second = container.assistant.ingest([corpus], show_progress=False)

    d1, d2 = first.to_dict(), second.to_dict()
    files = d1["added"] + d1["updated"]
    figures = {
        "corpus": str(corpus),
        "files": files,
        "failed": d1["failed"],
        "skipped": d1["skipped"],
        "pages": d1["pages"],
        "chunks": d1["chunks"],
        "seconds": round(first.seconds, 2),
        "chunks_per_s": round(d1["chunks"] / first.seconds, 1) if first.seconds else None,
        "peak_rss_mb": round(rss_after_first, 1),
        "model_load_s": round(model_load, 2),
        "reingest_seconds": round(second.seconds, 3),
        "reingest_unchanged": d2["unchanged"],
        "reingest_ratio": round(second.seconds / first.seconds, 4) if first.seconds else None,
        "target_ratio": 0.05,
    }
    print(f"corpus          {corpus}")
    print(f"files           {files} ingested, {d1['failed']} failed, {d1['skipped']} skipped")
    for failure in d1["failures"]:
        print(f"  failed  {failure['source']}: {failure['reason']}")
    print(f"pages           {d1['pages']}")
    print(f"chunks          {d1['chunks']}")
    print(f"first ingest    {first.seconds:.1f} s  ({figures['chunks_per_s']} chunks/s; model load {model_load:.1f} s not included)")
    print(f"peak RSS        {rss_after_first:.0f} MB")
    print(
        f"re-ingest       {second.seconds:.3f} s unchanged ({d2['unchanged']} files) = "
        f"{100 * figures['reingest_ratio']:.2f}% of the first (target < 5%)"
    )
    print(json.dumps(figures))
    if not args.data_dir and not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
