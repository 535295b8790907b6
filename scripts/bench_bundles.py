#!/usr/bin/env python
"""Bundle benchmark: size and import time of a signed knowledge-base bundle vs re-ingesting the corpus.

    python scripts/bench_bundles.py [--corpus DIR] [--store DIR [--part text --part pdf/planning]]
                                    [--work DIR] [--keep]

Everything goes through the CLI (``python -m neoc_assistant ...``), each step in its own process, as
an officer would run it; the timed figures are the commands' own ``seconds`` (the work, without the
Python start) and the processes' wall time (with it).

* **Without --store**: the corpus is ingested into a fresh national data dir (the baseline, ~10 min
  on two shared cores; its progress is shown), then exported and imported.
* **With --store DIR**: that store is copied (``cp -a``, the original is never touched) and
  exported; the baseline is a fresh ingest of ``--part`` folders of the corpus, so ingest and
  import are compared **per chunk**: the baseline's fixed part (a one-chunk ingest's seconds, measured
  in the same run: process start, model load) counted once, the rest scaled to the bundle's chunks.
  The full bundle is imported twice into fresh laptops, before and after the baseline ingest (their
  mean is used: the machine may be shared).

Then a delta: one small document of the bench's own (``<work>/extra/field-note.md``, ingested into
the national store before the full export - the corpus is read-only) is modified and re-ingested,
``kb export --since`` makes the delta, and it is imported on the first laptop.

Printed: ingest and import seconds and their ratio (target: import >= 10x faster), full bundle bytes
against the data dir's (the store the bundle replaces: ``manifest.sqlite3`` with its ``-wal`` and
the whole ``chroma/`` folder; not the caches or logs; target <= 1.5x), the delta's bytes and import
time, and whether the laptop's top-5 search hits equal the national store's for FEMA questions.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path("/work/shared/corpora/fema")
QUESTIONS = [
    "What are the Command Staff positions in the Incident Command System?",
    "What is the ICS 201 Incident Briefing form used for?",
    "How much water should each person store for an emergency?",
    "What should you do when a tornado warning is issued?",
    "What does a Joint Information Center do?",
    "What are the steps of the planning process in CPG 101?",
    "How should you prepare your home before a wildfire?",
    "Who can activate the National Response Framework's Emergency Support Functions?",
    "How many field notes does the depot keep?",  # the bench's own document (changed by the delta)
]
NOTE_V1 = "# Depot Field Note\n\nThe Sunsari depot keeps fourteen inflatable rescue boats and 300 life jackets.\n"
NOTE_V2 = NOTE_V1 + "\n## Revision\n\nFrom December the depot also keeps 40 water purification kits.\n"


def cli(args: list[str], data_dir: Path, kb_dir: Path, *, show_stderr: bool = False) -> tuple[dict | list, float]:
    """Run ``python -m neoc_assistant ARGS`` on a data dir; (its JSON output, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "neoc_assistant", *args], cwd=REPO, env=_env(data_dir, kb_dir), text=True,
                          stdout=subprocess.PIPE, stderr=None if show_stderr else subprocess.PIPE)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"`{' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr or ''}\n{proc.stdout}")
    out = proc.stdout.strip()
    try:
        return json.loads(out), wall
    except json.JSONDecodeError:  # `search --queries`: one JSON line per query
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")], wall


def store_bytes(data_dir: Path) -> dict[str, int]:
    """What the bundle replaces: the manifest (with its WAL) and the Chroma folder."""
    manifest = sum(p.stat().st_size for p in data_dir.glob("manifest.sqlite3*") if not p.name.endswith("-shm"))
    chroma = sum(p.stat().st_size for p in (data_dir / "chroma").rglob("*") if p.is_file())
    return {"manifest": manifest, "chroma": chroma, "total": manifest + chroma}


def progress(data_dir: Path, label: str, stop: threading.Event, every: float = 60.0) -> None:
    """Every minute, the files and chunks committed so far (`ingest --json` shows no progress bar).
    Display only: the manifest is read read-only, nothing here is timed."""
    started = time.perf_counter()
    while not stop.wait(every):
        try:
            with sqlite3.connect(f"file:{data_dir / 'manifest.sqlite3'}?mode=ro", uri=True, timeout=5) as db:
                files, chunks = db.execute("SELECT (SELECT COUNT(*) FROM files), (SELECT COUNT(*) FROM chunks)").fetchone()
        except sqlite3.Error:
            continue
        print(f"[{label}]   ... {files} file(s), {chunks} chunks after {time.perf_counter() - started:.0f} s", flush=True)


def ingest(paths: list[Path], data_dir: Path, kb_dir: Path, label: str) -> dict:
    print(f"[{label}] ingest {', '.join(str(p) for p in paths)} ...", flush=True)
    stop = threading.Event()
    threading.Thread(target=progress, args=(data_dir, label, stop), daemon=True).start()
    try:
        summary, wall = cli(["ingest", *map(str, paths), "--json"], data_dir, kb_dir, show_stderr=True)
    finally:
        stop.set()
    assert isinstance(summary, dict)
    print(f"[{label}] {summary['added'] + summary['updated']} file(s), {summary['chunks']} chunks, "
          f"{summary['failed']} failed, {summary['seconds']:.1f} s (process {wall:.1f} s)", flush=True)
    return {"files": summary["added"] + summary["updated"], "chunks": summary["chunks"],
            "seconds": summary["seconds"], "wall": wall, "failed": summary["failed"]}


def import_bundle(bundle: Path, data_dir: Path, kb_dir: Path, key: Path, label: str) -> dict:
    _plain(["kb", "trust", str(key)], data_dir, kb_dir)
    summary, wall = cli(["kb", "import", str(bundle), "--json"], data_dir, kb_dir)
    assert isinstance(summary, dict)
    print(f"[{label}] import {bundle.name}: {summary['chunks']} chunks, {summary['seconds']:.2f} s "
          f"(process {wall:.1f} s), version {summary['previous_version']} -> {summary['kb_version']}", flush=True)
    return {"chunks": summary["chunks"], "seconds": summary["seconds"], "wall": wall,
            "kb_version": summary["kb_version"]}


def _env(data_dir: Path, kb_dir: Path) -> dict[str, str]:
    return {**os.environ, "NEOC_DATA_DIR": str(data_dir), "NEOC_KB_DIR": str(kb_dir), "PYTHONPATH": str(REPO)}


def _plain(args: list[str], data_dir: Path, kb_dir: Path) -> None:
    """A command that prints no JSON (`kb trust`, `kb keygen`)."""
    subprocess.run([sys.executable, "-m", "neoc_assistant", *args], cwd=REPO, env=_env(data_dir, kb_dir),
                   check=True, stdout=subprocess.DEVNULL)


def export(out: Path, data_dir: Path, kb_dir: Path, key: Path, since: str | None = None) -> dict:
    args = ["kb", "export", str(out), "--key", str(key), "--json"] + (["--since", since] if since else [])
    summary, wall = cli(args, data_dir, kb_dir)
    assert isinstance(summary, dict)
    kind = f"delta since {since}" if since else "full"
    print(f"[national] export {kind}: {summary['documents']} document(s), {summary['chunks']} chunks, "
          f"{summary['bytes']:,} bytes, {summary['seconds']:.2f} s (process {wall:.1f} s)", flush=True)
    return {"bytes": summary["bytes"], "seconds": summary["seconds"], "wall": wall, "chunks": summary["chunks"],
            "documents": summary["documents"], "kb_version": summary["kb_version"]}


def top_hits(data_dir: Path, kb_dir: Path, queries: Path) -> dict[str, list[tuple[str, str]]]:
    results, _ = cli(["search", "--queries", str(queries), "--k", "5"], data_dir, kb_dir)
    return {str(r["id"]): [(h["source"], h["chunk_id"]) for h in r["hits"]] for r in results}  # type: ignore[index]


def same_hits(national: Path, national_kb: Path, laptop: Path, laptop_kb: Path, queries: Path, label: str) -> bool:
    theirs, ours = top_hits(national, national_kb, queries), top_hits(laptop, laptop_kb, queries)
    equal = [q for q in theirs if theirs[q] == ours.get(q)]
    print(f"[{label}] top-5 search hits equal to the national store's for {len(equal)}/{len(theirs)} questions",
          flush=True)
    for q in theirs:
        if q not in equal:
            print(f"   differs for {q!r}: national {theirs[q][:2]} laptop {ours.get(q, [])[:2]}")
    return len(equal) == len(theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--store", type=Path, help="an existing store of the corpus to copy and export")
    parser.add_argument("--part", action="append", help="with --store: corpus sub-folders the baseline ingests "
                        "(default: text and pdf/planning)")
    parser.add_argument("--work", type=Path, help="where the data dirs go (default: a new /tmp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()
    work = opts.work or Path(tempfile.mkdtemp(prefix="bench-bundles-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = opts.corpus.resolve()
    national, laptop, laptop2 = work / "national", work / "laptop", work / "laptop2"
    laptop_kb = work / "laptop-kb"
    laptop_kb.mkdir(exist_ok=True)
    key = work / "keys" / "national.key"
    queries = work / "questions.jsonl"
    queries.write_text("".join(json.dumps({"id": q, "text": q}) + "\n" for q in QUESTIONS))
    note = work / "extra" / "field-note.md"
    note.parent.mkdir(exist_ok=True)
    note.write_text(NOTE_V1)
    print(f"work folder {work}; the machine may be shared: compare the ratios, not the seconds", flush=True)
    try:
        if opts.store:
            print(f"[national] copying {opts.store} (cp -a)", flush=True)
            subprocess.run(["cp", "-a", str(opts.store), str(national)], check=True)
            shutil.rmtree(national / "cache", ignore_errors=True)  # answers cached by another run
            baseline = None
        else:
            baseline = ingest([corpus], national, corpus, "national")
        fixed = ingest([note], national, corpus, "national")  # one chunk: what any ingest costs (model load, ...)
        _plain(["kb", "keygen", str(key)], national, corpus)
        full = export(work / "full.neockb", national, corpus, key)
        data = store_bytes(national)
        first = import_bundle(work / "full.neockb", laptop, laptop_kb, key.with_name(key.name + ".pub"), "laptop")
        imports = [first]
        if opts.store:
            parts = [corpus / p for p in (opts.part or ["text", "pdf/planning"])]
            baseline = ingest(parts, work / "ingest-part", corpus, "baseline")
            imports.append(import_bundle(work / "full.neockb", laptop2, laptop_kb, key.with_name(key.name + ".pub"),
                                         "laptop2"))
        assert baseline is not None
        equal_full = same_hits(national, corpus, laptop, laptop_kb, queries, "laptop, full")

        note.write_text(NOTE_V2)
        ingest([note], national, corpus, "national")
        delta = export(work / "delta.neockb", national, corpus, key, since=full["kb_version"])
        delta_import = import_bundle(work / "delta.neockb", laptop, laptop_kb, key.with_name(key.name + ".pub"),
                                     "laptop")
        equal_delta = same_hits(national, corpus, laptop, laptop_kb, queries, "laptop, delta")
    finally:
        if not opts.keep and not opts.work:
            shutil.rmtree(work, ignore_errors=True)

    import_s = sum(i["seconds"] for i in imports) / len(imports)
    import_wall = sum(i["wall"] for i in imports) / len(imports)
    per_chunk = bool(opts.store)
    scale = (first["chunks"] / baseline["chunks"]) if per_chunk else 1.0

    def as_many_chunks(measured: float, once: float) -> float:
        """The baseline's time for as many chunks as the bundle: its fixed part (the one-chunk ingest's:
        process, model load) once, the rest per chunk."""
        return once + max(measured - once, 0.0) * scale if per_chunk else measured

    ingest_s = as_many_chunks(baseline["seconds"], fixed["seconds"])
    ingest_wall = as_many_chunks(baseline["wall"], fixed["wall"])
    figures = {
        "mode": "store copy, baseline per chunk" if per_chunk else "full ingest",
        "chunks": first["chunks"], "baseline_chunks": baseline["chunks"], "baseline_files": baseline["files"],
        "ingest_seconds": round(ingest_s, 2), "baseline_seconds": baseline["seconds"],
        "one_chunk_ingest_seconds": fixed["seconds"], "import_seconds": round(import_s, 2),
        "import_speedup": round(ingest_s / import_s, 1),
        "import_speedup_wall": round(ingest_wall / import_wall, 1),
        "export_seconds": full["seconds"], "bundle_bytes": full["bytes"], "data_dir_bytes": data["total"],
        "manifest_bytes": data["manifest"], "chroma_bytes": data["chroma"],
        "bundle_over_data_dir": round(full["bytes"] / data["total"], 3),
        "delta_bytes": delta["bytes"], "delta_documents": delta["documents"], "delta_chunks": delta["chunks"],
        "delta_import_seconds": delta_import["seconds"], "delta_import_wall": round(delta_import["wall"], 2),
        "same_hits_full": equal_full, "same_hits_delta": equal_delta,
    }
    what = "per chunk, " if per_chunk else ""
    print(f"\nimport vs ingest ({what}same run): {figures['import_speedup']}x faster by the commands' own seconds "
          f"({import_s:.1f} s vs {ingest_s:.1f} s for {first['chunks']} chunks), {figures['import_speedup_wall']}x "
          "by process wall time (target >= 10x)")
    print(f"full bundle {full['bytes']:,} bytes / data dir {data['total']:,} bytes (manifest {data['manifest']:,} + "
          f"chroma {data['chroma']:,}) = {figures['bundle_over_data_dir']} (target <= 1.5)")
    print(f"delta: {delta['documents']} document(s), {delta['bytes']:,} bytes ({delta['bytes'] / full['bytes']:.4f} "
          f"of the full bundle), imported in {delta_import['seconds']:.2f} s")
    print(json.dumps(figures))
    return 0 if equal_full and equal_delta else 1


if __name__ == "__main__":
    sys.exit(main())
