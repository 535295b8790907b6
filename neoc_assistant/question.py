"""What the chain's stages hand each other: the question, then what retrieval found.

Each stage receives what the one before produced and returns something new - the question as
asked (``Question``), the cache's verdict (``chain.Looked``), the passages found (``Retrieved``) -
instead of filling in one shared record, so a stage's signature says what it depends on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import SearchFilters


@dataclass(frozen=True)
class Question:
    text: str  # as the officer asked it: what is shown and logged
    resolved: str = ""  # standing alone, a follow-up read with the conversation (``reading/followup.py``): cached
    resolved_by: str = ""  # who read the follow-up so: "rules" | "model" (``reading/followup_model.py``)
    reading: str = ""  # as the stages read it: the resolved question with glossary terms written out
    history: tuple[tuple[str, str], ...] = ()
    filters: SearchFilters | None = None
    use_cache: bool = True
    cancel: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    timings_ms: dict[str, float] = field(default_factory=dict)  # each stage adds its own

    @property
    def read_as(self) -> str:
        return self.reading or self.standalone

    @property
    def standalone(self) -> str:
        return self.resolved or self.text

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


@dataclass(frozen=True)
class Retrieved:
    """The passages found for a question: ``hits`` ranked, ``relevant`` those above the floor."""

    hits: list[Hit]
    relevant: list[Hit]
    query_vector: np.ndarray
