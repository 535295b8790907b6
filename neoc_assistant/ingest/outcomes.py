"""What an ingest run reports: one outcome per file, and the run's summary (CLI ``--json``, UI, API)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class FileOutcome:
    source: str
    status: str  # added | updated | unchanged | purged | failed | skipped
    chunks: int = 0
    pages: int = 0
    reason: str = ""


@dataclass
class IngestSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    kb_version: str = ""
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def chunks_added(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))

    def to_dict(self) -> dict:
        return {
            "added": self.count("added"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "purged": self.count("purged"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "chunks": self.chunks_added,
            "pages": sum(o.pages for o in self.outcomes if o.status in ("added", "updated")),
            "seconds": round(self.seconds, 3),
            "kb_version": self.kb_version,
            "failures": [{"source": o.source, "reason": o.reason} for o in self.failed],
            "skipped_files": [{"source": o.source, "reason": o.reason} for o in self.outcomes if o.status == "skipped"],
            "notes": self.notes,
            "files": [asdict(o) for o in self.outcomes],
        }


ProgressCallback = Callable[[int, int, str], None]  # (done, total, current source)
