"""What a question produces: the ``Answer`` and the stream of events leading to it."""

from __future__ import annotations

from dataclasses import dataclass, field

MODES = ("llm", "retrieval-only", "not-found")

NO_MODEL_NOTICE = (
    "No language model is installed — showing the most relevant passages instead of a written answer. "
    "To get written answers, copy a GGUF chat model into models/ (see models/README.md) "
    "or set NEOC_MODEL_PATH, then restart."
)
NOT_FOUND_NOTICE = "Not in the knowledge base: no passage is relevant enough to answer this."


@dataclass
class Answer:
    question: str
    answer: str
    mode: str  # one of MODES
    cached: bool = False
    cache_tier: str | None = None
    sources: list[dict] = field(default_factory=list)  # source, page, chunk_id, score, excerpt
    timings_ms: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    notice: str = ""
    complete: bool = True  # False when the stream was cancelled part-way

    def to_json(self) -> dict:
        """The `ask --json` object."""
        return {
            "answer": self.answer,
            "mode": self.mode,
            "cached": self.cached,
            "cache_tier": self.cache_tier,
            "sources": [
                {k: s.get(k) for k in ("source", "page", "chunk_id", "score")} for s in self.sources
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "tokens": self.tokens,
            "notice": self.notice,
        }


@dataclass
class StreamEvent:
    kind: str  # "token" | "done"
    text: str = ""
    answer: Answer | None = None
