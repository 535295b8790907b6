#!/usr/bin/env python3
"""Retrieval latency on a 50,000-chunk store: p50/p95 per stage and in total.

The store is built (once; reused from ``--data-dir`` afterwards) through the
real store classes -- ``Manifest.commit_file`` (chunks + FTS5 rows in one
transaction) and ``VectorStore.upsert`` (Chroma cosine HNSW with the settings'
M / ef parameters) -- but with synthetic content, because embedding 50k chunks
with all-MiniLM-L6-v2 takes hours on this 2-core machine:

* chunk text: ~150-word windows of sentences drawn at random from the FEMA
  plain-text corpus (real vocabulary and term statistics for BM25);
* chunk vectors: a fixed random projection of each chunk's IDF-weighted
  bag of words into 384 dimensions, normalised (a "hashing embedding"): texts
  sharing words get nearby vectors, so the HNSW graph sees clustered,
  realistic neighbourhoods rather than uniform noise, which is HNSW's best case
  for recall and worst for nothing in particular; queries are projected the
  same way.

``--cross-encoder minilm-shape`` also times the cross-encoder path with a
random-weight model of the shape of ms-marco-MiniLM-L-6-v2 (what a deployment
would typically use), for the windows in ``--ce-top-n`` and max lengths
``rerank_max_length`` and 128 (torch threads: ``torch_threads`` / all cores).

Queries: the in-domain question sets (``tests/data/*questions*.jsonl``),
repeated to ``--queries``. Query embedding is excluded (it is measured in
``eval_retrieval.py``); the figure is the ``retrieval`` total of
``RetrievalResult.timings_ms``: filter + vector + lexical + fuse + resolve +
rerank + mmr + relevance, at the production ``k`` (``retrieval.top_k``),
as wall-clock time and as the query thread's CPU time (``time.thread_time``;
what the stage costs on an idle machine -- on a shared, busy machine the wall
clock mostly measures waiting for a core). Prints a table and ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from pathlib import Path

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

import numpy as np  # noqa: E402

from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever, SearchFilters  # noqa: E402
from neoc_assistant.settings import PROJECT_ROOT, Settings  # noqa: E402
from neoc_assistant.store.manifest import ChunkRecord, FileRecord, Manifest  # noqa: E402
from neoc_assistant.store.factory import open_vector_store  # noqa: E402

DIM = 384
FEMA_TEXT = PROJECT_ROOT.parent / "shared" / "corpora" / "fema" / "text"


class HashingEmbedder:
    """Bag-of-words random projection; stands in for the model in this benchmark only."""

    def __init__(self, texts: list[str], seed: int = 7):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=True, min_df=2, stop_words="english")
        self.vectorizer.fit(texts)
        vocab = len(self.vectorizer.vocabulary_)
        rng = np.random.default_rng(seed)
        self.projection = rng.standard_normal((vocab, DIM)).astype(np.float32) / np.sqrt(DIM)

    def encode(self, texts: list[str]) -> np.ndarray:
        x = self.vectorizer.transform(texts) @ self.projection
        x = np.asarray(x, dtype=np.float32)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms == 0, 1.0, norms)


def fema_sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(FEMA_TEXT.glob("*.txt")))
    sentences = [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", text)]
    return [s for s in sentences if 4 <= len(s.split()) <= 80]


def synthetic_chunks(n_chunks: int, seed: int = 11) -> list[str]:
    sentences = fema_sentences()
    rng = random.Random(seed)
    chunks = []
    for _ in range(n_chunks):
        start = rng.randrange(len(sentences))
        words, parts = 0, []
        i = start
        while words < 150:
            s = sentences[i % len(sentences)] if rng.random() < 0.7 else sentences[rng.randrange(len(sentences))]
            parts.append(s)
            words += len(s.split())
            i += 1
        chunks.append(" ".join(parts))
    return chunks


def build_store(settings: Settings, n_chunks: int, per_doc: int, embedder: HashingEmbedder, chunks: list[str]) -> None:
    manifest = Manifest(settings.paths.manifest_path)
    vectors = open_vector_store(settings.store, settings.paths.chroma_dir)
    folders = ["plans", "sops", "forms", "guides", "reports"]
    types = ["pdf", "txt", "md", "docx"]
    started = time.perf_counter()
    for d, start in enumerate(range(0, n_chunks, per_doc)):
        texts = chunks[start : start + per_doc]
        doc_hash = hashlib.sha256(f"synthetic-{d}".encode()).hexdigest()[:32]
        ids = [f"{doc_hash[:16]}-{i:05d}" for i in range(len(texts))]
        title = f"Synthetic document {d}"
        vectors.upsert(ids, embedder.encode(texts), doc_hash, [i // 3 + 1 for i in range(len(texts))])
        source = f"{folders[d % len(folders)]}/doc-{d:04d}.{types[d % len(types)]}"
        record = FileRecord(source, str(settings.paths.kb_dir), str(settings.paths.kb_dir / source), 1000 + d, d, doc_hash, time.time())
        document = {
            "doc_hash": doc_hash,
            "title": title,
            "doc_type": types[d % len(types)],
            "n_pages": len(texts) // 3 + 1,
            "n_chunks": len(texts),
            "ingested_at": time.time(),
        }
        records = [
            ChunkRecord(cid, doc_hash, i, i // 3 + 1, title, f"{title}\n{t}", hashlib.sha256(t.encode()).hexdigest()[:16])
            for i, (cid, t) in enumerate(zip(ids, texts))
        ]
        manifest.commit_file(record, document=document, chunks=records)
        if d % 50 == 0:
            print(f"# built {start + len(texts)}/{n_chunks} chunks ({time.perf_counter() - started:.0f}s)", file=sys.stderr)
    manifest.set_meta("bench_chunks", str(n_chunks))


def build_minilm_shaped_cross_encoder(directory: Path) -> Path:
    """Random weights, ms-marco-MiniLM-L-6-v2 shape, the bundled MiniLM tokenizer (nothing downloaded)."""
    if (directory / "config.json").exists():
        return directory
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from neoc_assistant.settings import bundled_embedding_model_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_embedding_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        num_labels=1,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def load_queries(n: int) -> list[str]:
    texts = []
    for path in sorted((PROJECT_ROOT / "tests" / "data").glob("*questions*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return [texts[i % len(texts)] for i in range(n)]


def stage_table(timings: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict:
    """Wall and CPU p50/p95 per retrieval stage."""
    return {
        stage: {
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p95": round(float(np.percentile(ms, 95)), 3),
            "cpu_p50": round(float(np.percentile(cpu[stage], 50)), 3),
            "cpu_p95": round(float(np.percentile(cpu[stage], 95)), 3),
        }
        for stage, ms in timings.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="/tmp/neoc-bench/50k")
    parser.add_argument("--chunks", type=int, default=50_000)
    parser.add_argument("--per-doc", type=int, default=100, help="chunks per synthetic document")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=0, help="hits per query (default: retrieval_top_k)")
    parser.add_argument("--filtered", action="store_true", help="also time a run with a source-folder filter")
    parser.add_argument(
        "--cross-encoder",
        metavar="DIR|minilm-shape",
        help="also time the cross-encoder path with this local model; 'minilm-shape' builds a random-weight "
        "model with the shape of ms-marco-MiniLM-L-6-v2 (6 layers, 384 wide): real cost, meaningless scores",
    )
    parser.add_argument("--ce-top-n", default="10,20", help="cross-encoder windows to time (comma-separated)")
    args = parser.parse_args()

    settings = Settings(data_dir=Path(args.data_dir), kb_dir=Path(args.data_dir) / "kb")
    started = time.perf_counter()
    chunks = synthetic_chunks(args.chunks)
    embedder = HashingEmbedder(chunks)
    manifest = Manifest(settings.paths.manifest_path)
    if manifest.get_meta("bench_chunks") != str(args.chunks):
        if manifest.counts()["chunks"]:
            raise SystemExit(f"{args.data_dir} holds a different store; remove it or pass another --data-dir")
        build_store(settings, args.chunks, args.per_doc, embedder, chunks)
    build_s = time.perf_counter() - started
    vectors = open_vector_store(settings.store, settings.paths.chroma_dir)
    retriever = KnowledgeBaseRetriever(settings.retrieval, manifest, vectors, embedder=None)
    t0 = time.perf_counter()
    ready = retriever.term_stats.wait_ready(300)
    stats_s = time.perf_counter() - t0
    print(f"# term statistics {'loaded' if ready else 'NOT loaded'} in {stats_s:.1f}s", file=sys.stderr)
    queries = load_queries(args.queries)
    qvecs = embedder.encode(queries)
    k = args.k or settings.retrieval.top_k

    runs = {"full": None}
    if args.filtered:
        runs["filtered"] = SearchFilters(sources=("sops",))
    report = {}
    for name, filters in runs.items():
        for q, v in list(zip(queries, qvecs))[:10]:  # warm-up: connections, temp tables, HNSW pages
            retriever.retrieve(q, k=k, query_vector=v, filters=filters)
        timings: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        for q, v in zip(queries, qvecs):
            result = retriever.retrieve(q, k=k, query_vector=v, filters=filters)
            for stage, ms in result.timings_ms.items():
                if stage != "embed":
                    timings.setdefault(stage, []).append(ms)
                    cpu.setdefault(stage, []).append(result.cpu_ms[stage])
        report[name] = stage_table(timings, cpu)

    if args.cross_encoder:
        ce_dir = Path(args.cross_encoder)
        if args.cross_encoder == "minilm-shape":
            ce_dir = build_minilm_shaped_cross_encoder(Path(args.data_dir) / "minilm-shaped-ce")
        ce_queries = list(zip(queries, qvecs))[: max(20, len(queries) // 5)]
        for top_n in [int(x) for x in args.ce_top_n.split(",") if x]:
            for max_length in (settings.retrieval.rerank_max_length, 128):
                ce_settings = settings.retrieval.model_copy(
                    update={"reranker_model_path": str(ce_dir), "rerank_top_n": top_n, "rerank_max_length": max_length}
                )
                ce_retriever = KnowledgeBaseRetriever(ce_settings, manifest, vectors, embedder=None)
                ce_retriever.term_stats = retriever.term_stats
                for q, v in ce_queries[:3]:
                    ce_retriever.retrieve(q, k=k, query_vector=v)  # load the model, warm up
                timings, cpu = {}, {}
                for q, v in ce_queries:
                    result = ce_retriever.retrieve(q, k=k, query_vector=v)
                    for stage in ("rerank", "retrieval"):
                        timings.setdefault(stage, []).append(result.timings_ms[stage])
                        cpu.setdefault(stage, []).append(result.cpu_ms[stage])
                report[f"cross-encoder top_n={top_n} max_length={max_length}"] = stage_table(timings, cpu)

    chunks_in_store = manifest.counts()["chunks"]
    for name, stages in report.items():
        print(f"{name}: {chunks_in_store} chunks, {len(queries)} queries, k={k} (ms; query embedding excluded)")
        print(f"{'stage':<12}{'p50':>9}{'p95':>9}{'cpu p50':>9}{'cpu p95':>9}")
        for stage, row in stages.items():
            print(f"{stage:<12}{row['p50']:>9.2f}{row['p95']:>9.2f}{row['cpu_p50']:>9.2f}{row['cpu_p95']:>9.2f}")
    print(
        json.dumps(
            {
                "chunks": chunks_in_store,
                "vectors": vectors.count(),
                "queries": len(queries),
                "k": k,
                "setup_s": round(build_s, 1),
                "term_stats_load_s": round(stats_s, 2),
                "cpu_count": os.cpu_count(),
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "stages_ms": report,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
