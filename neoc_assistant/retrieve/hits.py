"""The one shape a retrieved passage has everywhere (CLI JSON, chain, UI)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Hit:
    chunk_id: str
    score: float  # the final ranking score, higher is better
    text: str
    source: str  # first source name (path relative to the ingested root)
    page: int | None
    section: str = ""
    doc_hash: str = ""
    sources: list[str] = field(default_factory=list)  # every name this content is stored under
    title: str = ""
    doc_type: str = ""
    scores: dict[str, float] = field(default_factory=dict)  # per-stage scores, for debugging/eval
    ocr_confidence: float | None = None  # 0-100 when its page was read by OCR: how far to trust its letters

    def add_sources(self, duplicate: "Hit") -> None:
        """Add the files of a duplicate that is not shown (same text in another file) to ``sources``;
        the first source stays first."""
        names = self.sources or [self.source]
        for name in duplicate.sources or [duplicate.source]:
            if name not in names:
                names.append(name)
        self.sources = names

    def to_json(self, rank: int) -> dict:
        """The stable `search --json` hit shape."""
        return {
            "rank": rank,
            "score": round(float(self.score), 6),
            "source": self.source,
            "page": self.page,
            "chunk_id": self.chunk_id,
            "text": self.text,
            **({} if self.ocr_confidence is None else {"ocr_confidence": self.ocr_confidence}),
        }
