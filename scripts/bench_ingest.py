#!/usr/bin/env python
"""Ingest benchmark: a real corpus into a fresh data dir, then again unchanged.

    python scripts/bench_ingest.py [CORPUS_DIR] [--data-dir DIR] [--keep]

Prints files, pages, chunks, seconds, chunks/s and peak RSS for the first
ingest, then the unchanged re-ingest time as a ratio of the first, and ends
with one JSON line of those figures. The embedding model is loaded before the
clock starts (its load time is printed separately).

The machine may be shared, so the ingest is also printed as a ratio of the bare
embedder measured in the same run on the same chunks (the corpus parsed and
chunked untimed, then ``model.encode`` of all of them in one call, no cache),
measured just before and just after the ingest (the mean of the two is the
baseline). ``--code DIR`` imports ``neoc_assistant`` from another checkout,
to measure a before the same way.
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
_code = sys.argv[sys.argv.index("--code") + 1] if "--code" in sys.argv else str(REPO)
sys.path.insert(0, _code)

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402


def bare_embedder_seconds(container, corpus: Path) -> tuple[int, float]:
    """(chunks, seconds) for the embedding model alone on the corpus's chunks."""
    texts = []
    chunker = container.ingestor.chunker
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        try:
            texts += [c.text for c in chunker.split(container.parser.load(path, path.read_bytes()))]
        except Exception:  # noqa: BLE001 - a file the ingest fails too
            continue
    container.parser.close()
    model, batch = container.embedder.model, container.settings.embedding.batch_size
    t0 = time.perf_counter()
    model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
    return len(texts), time.perf_counter() - t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default=str(REPO.parent / "shared" / "corpora" / "fema"))
    parser.add_argument("--data-dir", help="Where to build the store (default: a temp dir, removed afterwards).")
    parser.add_argument("--keep", action="store_true", help="Keep the temp data dir.")
    parser.add_argument("--progress", action="store_true", help="Show the per-file progress bar.")
    parser.add_argument("--code", help="Import neoc_assistant from this checkout (a before, measured the same way).")
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

    bare_chunks, bare_before = bare_embedder_seconds(container, corpus)
    first = container.assistant.ingest([corpus], show_progress=args.progress)
    _, bare_after = bare_embedder_seconds(container, corpus)
    bare_rate = bare_chunks / ((bare_before + bare_after) / 2)
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
        "bare_chunks": bare_chunks,
        "bare_chunks_per_s": round(bare_rate, 1),
        "bare_seconds": [round(bare_before, 1), round(bare_after, 1)],
        "ratio_to_bare": round(d1["chunks"] / first.seconds / bare_rate, 3) if first.seconds else None,
        "code": _code,
    }
    print(f"corpus          {corpus}")
    print(f"files           {files} ingested, {d1['failed']} failed, {d1['skipped']} skipped")
    for failure in d1["failures"]:
        print(f"  failed  {failure['source']}: {failure['reason']}")
    print(f"pages           {d1['pages']}")
    print(f"chunks          {d1['chunks']}")
    print(f"first ingest    {first.seconds:.1f} s  ({figures['chunks_per_s']} chunks/s; model load {model_load:.1f} s not included)")
    print(f"bare embedder   {bare_rate:.1f} chunks/s on {bare_chunks} chunks ({bare_before:.1f} s before, "
          f"{bare_after:.1f} s after) -> ingest = {figures['ratio_to_bare']}x the bare embedder")
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
