"""The arithmetic of ranking: fusing two ranked lists, maximal marginal relevance, min-max scaling.

Pure functions over scores, kept apart from ``retriever.py`` (which fetches,
resolves and times) so the maths reads on its own and is tested without a store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from neoc_assistant.retrieve.hits import Hit


@dataclass
class Candidate:
    """A chunk on its way from fusion to the final list; each stage's score is kept for ``Hit.scores``."""

    chunk_id: str
    fused: float
    vector: float | None = None
    lexical: float | None = None
    hit: Hit = None  # type: ignore[assignment]  # resolved from the manifest before any stage reads it
    content_hash: str = ""
    coverage: float | None = None


def fuse(
    vector_list: list[tuple[str, float]],
    lexical_list: list[tuple[str, float]],
    method: str,
    vector_weight: float,
    rrf_k: int,
) -> list[Candidate]:
    """One candidate list from the vector and the BM25 lists, best first.

    ``weighted``: each list min-max normalised, then ``vector_weight`` :
    ``1 - vector_weight``; ``rrf``: reciprocal-rank fusion with the same
    weights. With one list only, its own scores and order are kept.
    """
    by_id: dict[str, Candidate] = {}
    for cid, score in vector_list:
        by_id.setdefault(cid, Candidate(cid, 0.0)).vector = score
    for cid, score in lexical_list:
        by_id.setdefault(cid, Candidate(cid, 0.0)).lexical = score
    if not (vector_list and lexical_list):
        only = vector_list or lexical_list
        return [replace(by_id[cid], fused=float(score)) for cid, score in only]

    w = vector_weight
    if method == "rrf":
        for weight, ranked in ((w, vector_list), (1.0 - w, lexical_list)):
            for rank, (cid, _) in enumerate(ranked, start=1):
                by_id[cid].fused += 2.0 * weight / (rrf_k + rank)
    else:
        for weight, ranked in ((w, vector_list), (1.0 - w, lexical_list)):
            for cid, norm in zip((c for c, _ in ranked), normalise(np.array([x for _, x in ranked]))):
                by_id[cid].fused += weight * float(norm)
    return sorted(by_id.values(), key=lambda c: c.fused, reverse=True)


def mmr(relevance: np.ndarray, similarity: np.ndarray, lambda_mult: float, k: int) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over precomputed scores.

    Same selection rule as ``langchain_core.vectorstores.utils.maximal_marginal_relevance``
    (``lambda * relevance - (1 - lambda) * max similarity to the selected``), but the
    relevance is the reranked score rather than the raw query cosine: LangChain's
    function recomputes relevance from the query embedding, which throws the
    fusion and rerank stages away (measured: see ``scripts/eval_retrieval.py``).
    """
    n = len(relevance)
    k = min(k, n)
    if k <= 0:
        return []
    selected = [int(np.argmax(relevance))]
    max_sim = similarity[selected[0]].copy()
    available = np.ones(n, dtype=bool)
    available[selected[0]] = False
    while len(selected) < k:
        gain = lambda_mult * relevance - (1.0 - lambda_mult) * max_sim
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        selected.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, similarity[best])
    return selected


def normalise(values: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant list maps to 1."""
    if values.size == 0:
        return values.astype(np.float64)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.ones_like(values, dtype=np.float64)
    return (values - lo) / (hi - lo)
