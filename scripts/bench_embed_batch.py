#!/usr/bin/env python
"""The embedder's batch size on the ingest's own call shape: CPU seconds per batch size, as ratios.

    python scripts/bench_embed_batch.py --store /tmp/neoc-eval/reader-fema [--chunks 1280] [--rounds 3]

Takes ``--chunks`` consecutive chunks (document order) from a store's manifest, sends them to the
embedding model in calls of ``store.ingest_batch_chunks`` as the ingest does, once per batch size
per round (the order alternates between rounds), and prints wall and CPU seconds and each batch
size's median CPU as a ratio of batch 32's. CPU seconds, because the machine may be shared.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="a data dir whose manifest.sqlite3 holds the chunks")
    ap.add_argument("--chunks", type=int, default=1280)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="8,16,32")
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{Path(args.store) / 'manifest.sqlite3'}?mode=ro", uri=True)
    rows = [r[0] for r in db.execute("SELECT text FROM chunks ORDER BY doc_hash, chunk_index")]
    random.seed(0)
    start = random.randrange(0, max(1, len(rows) - args.chunks))
    texts = rows[start:start + args.chunks]
    container = Container(Settings(data_dir=Path(tempfile.mkdtemp(prefix="neoc-embed-batch-"))))
    per_call = container.settings.store.ingest_batch_chunks
    groups = [texts[i:i + per_call] for i in range(0, len(texts), per_call)]
    model = container.embedder.model
    model.encode(groups[0], batch_size=32)  # loaded and warm before the clock
    sizes = [int(s) for s in args.sizes.split(",")]
    cpu: dict[int, list[float]] = {b: [] for b in sizes}
    for rnd in range(args.rounds):
        for b in sizes if rnd % 2 == 0 else list(reversed(sizes)):
            c0, w0 = time.process_time(), time.perf_counter()
            for g in groups:
                model.encode(g, batch_size=b, normalize_embeddings=True)
            cpu[b].append(time.process_time() - c0)
            print(f"round {rnd + 1} batch {b}: wall {time.perf_counter() - w0:.1f} s, cpu {cpu[b][-1]:.1f} s", flush=True)
    base = statistics.median(cpu[32]) if 32 in cpu else statistics.median(cpu[sizes[-1]])
    for b in sizes:
        print(f"batch {b}: median CPU {statistics.median(cpu[b]):.1f} s = {statistics.median(cpu[b]) / base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
