"""What a search is asked for (filters, which stages run) and what it returns."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.retrieve.hits import Hit


@dataclass(frozen=True)
class SearchFilters:
    """Restrict retrieval to sources under these paths and/or of these document types."""

    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sources or self.doc_types)

    def cache_key(self) -> str:
        return f"src={','.join(sorted(self.sources))};type={','.join(sorted(self.doc_types))}"


@dataclass(frozen=True)
class DocumentScope:
    """Which documents a search may return beyond its filters: none of ``excluded`` (superseded
    revisions), and when ``only`` is given, only those (the superseded ones, when no current
    document answers: ``answering/versions.py``)."""

    excluded: frozenset[str] = frozenset()
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class Stages:
    """Which stages run. The default is the full pipeline; the others exist for evaluation."""

    vector: bool = True
    lexical: bool = True
    rerank: bool = True
    mmr: bool = True

    @classmethod
    def named(cls, name: str) -> "Stages":
        return STAGE_CONFIGS[name]


STAGE_CONFIGS: dict[str, Stages] = {
    "bm25": Stages(vector=False, lexical=True, rerank=False, mmr=False),
    "vector": Stages(vector=True, lexical=False, rerank=False, mmr=False),
    "fused": Stages(vector=True, lexical=True, rerank=False, mmr=False),
    "fused+rerank": Stages(vector=True, lexical=True, rerank=True, mmr=False),
    "fused+rerank+mmr": Stages(vector=True, lexical=True, rerank=True, mmr=True),
}


@dataclass
class RetrievalResult:
    hits: list[Hit]
    query_vector: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)  # wall clock per stage; "retrieval" = all but embed
    cpu_ms: dict[str, float] = field(default_factory=dict)  # this thread's CPU time per stage
    relevance_floor: float = 0.0
    reranker: str = ""  # "cross-encoder", "features" or "" (not run)

    @property
    def relevant(self) -> list[Hit]:
        """Hits whose calibrated relevance reaches the floor; empty = not in the knowledge base."""
        return [h for h in self.hits if h.scores.get("relevance", 0.0) >= self.relevance_floor]


class StageClock:
    """Wall-clock and this thread's CPU time per stage (CPU time is what the stage costs
    on an idle machine; the wall clock also counts waiting for a busy CPU)."""

    def __init__(self, timings: dict[str, float], cpu: dict[str, float]):
        self._timings = timings
        self._cpu = cpu
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()

    def lap(self, name: str) -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        self._timings[name] = round((now - self._last) * 1000.0, 3)
        self._cpu[name] = round((now_cpu - self._last_cpu) * 1000.0, 3)
        self._last, self._last_cpu = now, now_cpu
