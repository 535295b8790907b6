"""What the response cache stores and returns, and how its keys are made.

``CacheContext`` is everything besides the question that changes an answer;
its ``key()`` - with the cache's own format version - separates entries, so a
change to any part makes the old entries unreachable. ``CacheEntry`` is one
stored answer with the question's vector and guard features, in the shape it
is written to the shared (L2) tier.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from neoc_assistant.reading.question_features import Features

CACHE_FORMAT = "rc3"  # rc2: answers carry their claim verification; rc3: and their notice
# "extractive": the documents' quotes that replaced a model answer which failed verification (the
# chain decides which quotes qualify); "not-found" and errors are never stored.
CACHEABLE_MODES = frozenset({"llm", "extractive"})


@dataclass(frozen=True)
class CacheContext:
    """Everything besides the question that changes the answer."""

    kb_version: str
    model_id: str
    prompt_version: str
    retrieval_key: str
    filters_key: str

    def key(self) -> str:
        raw = "\x1f".join([CACHE_FORMAT, self.kb_version, self.model_id, self.prompt_version, self.retrieval_key, self.filters_key])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


@dataclass
class CachedAnswer:
    question: str
    answer: str
    mode: str
    sources: list[dict]
    created_at: float = field(default_factory=time.time)
    verification: dict | None = None
    notice: str = ""  # why the answer is quotes, or that sentences were removed: shown on every hit


@dataclass
class CacheLookup:
    answer: CachedAnswer | None
    tier: str | None  # "l1" | "l2"
    similarity: float | None  # of the served entry; on a miss, of the nearest cached question (None: none)
    guard_refusal: str | None  # why a similar entry was refused
    query_vector: np.ndarray
    latency_ms: float
    match: str | None = None  # "exact" | "semantic"
    cached_question: str | None = None  # the question the served answer was stored for

    @property
    def hit(self) -> bool:
        return self.answer is not None


@dataclass
class CacheEntry:
    key: str  # L2 entry key (also the L1 key)
    ctx_hash: str
    kb_version: str
    question: str
    norm_key: str
    answer: CachedAnswer
    vector: np.ndarray
    features: Features
    created_at: float

    def to_value(self) -> dict:
        return {
            "fmt": CACHE_FORMAT,
            "ctx": self.ctx_hash,
            "kb": self.kb_version,
            "question": self.question,
            "norm": self.norm_key,
            "answer": asdict(self.answer),
            "vector": self.vector.astype(np.float32).tobytes(),
            "features": self.features,
            "created_at": self.created_at,
        }

    @classmethod
    def from_value(cls, key: str, value: dict) -> "CacheEntry":
        return cls(
            key=key,
            ctx_hash=value["ctx"],
            kb_version=value["kb"],
            question=value["question"],
            norm_key=value["norm"],
            answer=CachedAnswer(**value["answer"]),
            vector=np.frombuffer(value["vector"], dtype=np.float32).copy(),
            features=value["features"],
            created_at=float(value["created_at"]),
        )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
