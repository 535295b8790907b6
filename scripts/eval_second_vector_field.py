#!/usr/bin/env python3
"""Would a second vector field pay? MiniLM's pipeline with another model's vector list merged in by RRF.

    NEOC_EMBEDDING__TORCH_THREADS=1 python scripts/eval_second_vector_field.py all-mpnet-base-v2 /tmp/embed-fema-mpnet \\
        --questions tests/data/fema_officer_questions.jsonl --corpus /work/shared/corpora/fema \\
        --split heldout --data-dir /tmp/embed-fema-minilm --no-ingest

The first two arguments name the second model and a data dir holding the same
chunks embedded with it (a copy of the MiniLM store after ``kb reembed``);
the rest are ``eval_retrieval.py``'s. The vector stage of the MiniLM
retriever is replaced by the reciprocal-rank fusion (k = 60, equal weights)
of the two fields' nearest-chunk lists; everything after it (BM25 fusion, the
feature rerank on MiniLM's cosine, MMR) is unchanged, so the stage table
shows what the second field adds and what the later stages keep of it. An
experiment, not a product path: it was measured (README, Figures) and not
adopted.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eval_retrieval  # noqa: E402 - configures the process first

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

RRF_K = 60


def with_second_field(model: str, second_dir: str):
    build_first = eval_retrieval.build_container

    def build(data_dir, kb_dir, overrides):
        first = build_first(data_dir, kb_dir, overrides)
        second = Container(Settings(data_dir=second_dir, kb_dir=kb_dir, embedding={"model": model},
                                    cache={"enabled": False}))
        retriever, encode_first = first.retriever, first.embedder.encode_queries
        second_vector: dict[bytes, object] = {}  # first field's query vector -> second field's

        def encode_queries(texts):
            vectors = encode_first(texts)
            for a, b in zip(vectors, second.embedder.encode_queries(texts)):
                second_vector[a.astype("float32").tobytes()] = b
            return vectors

        search_first = retriever.filtered.search

        def search(query_vector, n, doc_hashes, k):
            lists = (search_first(query_vector, n, doc_hashes, k),
                     second.retriever.filtered.search(second_vector[query_vector.astype("float32").tobytes()],
                                                      n, doc_hashes, k))
            fused: dict[str, float] = {}
            for ranked in lists:
                for rank, (chunk_id, _) in enumerate(ranked, start=1):
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            return sorted(fused.items(), key=lambda item: -item[1])[:n]

        first.embedder.encode_queries = encode_queries
        retriever.filtered.search = search
        return first

    eval_retrieval.build_container = build


if __name__ == "__main__":
    with_second_field(sys.argv[1], sys.argv[2])
    sys.exit(eval_retrieval.main(sys.argv[3:]))
