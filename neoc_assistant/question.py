"""One question on its way through the chain: everything the stages hand each other."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import SearchFilters


@dataclass
class ChainState:
    question: str
    history: list[tuple[str, str]] = field(default_factory=list)
    filters: SearchFilters | None = None
    use_cache: bool = True
    cancel: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None
    cache_context: Any = None
    cached: Any = None  # CacheLookup with an answer
    hits: list[Hit] = field(default_factory=list)
    relevant: list[Hit] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)  # as the model saw them
    originals: dict[str, Hit] = field(default_factory=dict)  # chunk_id -> the whole passage (for sources)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000
