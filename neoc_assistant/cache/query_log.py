"""Local log of the questions asked (never the answers), for ``cache warm``.

One JSON line per question in ``<log_dir>/queries.jsonl``:
``{"ts": <unix time>, "q": <question>, "key": <normalised key>}`` (plus
``"cache": "l1"|"l2"`` when the caller knows it was served from the cache).
Lines are appended with a single ``write`` on an ``O_APPEND`` descriptor under
an advisory ``flock``, so several processes can log at once without
interleaving. The file is rotated to ``queries.jsonl.1`` beyond
``MAX_BYTES``. Nothing leaves the machine; ``cache.query_log_enabled = false``
turns logging off.

``top(n)`` groups questions by their normalised key (case, punctuation and
filler ignored) and returns the most frequent, each with its most common
wording - what ``warming.warm`` replays.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from neoc_assistant.language.discourse import normalize_key

try:  # POSIX advisory locks; elsewhere O_APPEND alone
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class FrequentQuestion:
    question: str
    count: int
    last_seen: float


class QueryLog:
    def __init__(self, log_dir: Path, *, enabled: bool = True, filename: str = "queries.jsonl"):
        self.enabled = bool(enabled)
        self.path = Path(log_dir) / filename
        self._lock = threading.Lock()

    def record(self, question: str, *, cache: str | None = None, ts: float | None = None) -> None:
        if not self.enabled:
            return
        question = (question or "").strip()
        if not question:
            return
        item = {"ts": round(ts if ts is not None else time.time(), 3), "q": question, "key": normalize_key(question)}
        if cache:
            item["cache"] = cache
        line = (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._rotate_if_needed()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_EX)
                    os.write(fd, line)
                finally:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
        except OSError as exc:  # a full disk must not fail a question
            log.warning("query log: could not write %s: %s", self.path, exc)

    def _rotate_if_needed(self) -> None:
        try:
            if self.path.stat().st_size > MAX_BYTES:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass

    def entries(self) -> Iterator[dict]:
        """Every readable record, oldest first (rotated file included); corrupt lines are skipped."""
        for path in (self.path.with_name(self.path.name + ".1"), self.path):
            if not path.exists():
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        item = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if isinstance(item, dict) and isinstance(item.get("q"), str):
                        yield item

    def top(self, n: int = 50, *, min_count: int = 1, since: float | None = None) -> list[FrequentQuestion]:
        counts: Counter = Counter()
        wordings: dict[str, Counter] = defaultdict(Counter)
        last: dict[str, float] = {}
        for item in self.entries():
            ts = float(item.get("ts") or 0.0)
            if since is not None and ts < since:
                continue
            key = item.get("key") or normalize_key(item["q"])
            if not key:
                continue
            counts[key] += 1
            wordings[key][item["q"]] += 1
            last[key] = max(last.get(key, 0.0), ts)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -last[kv[0]], kv[0]))
        return [
            FrequentQuestion(wordings[key].most_common(1)[0][0], count, last[key])
            for key, count in ranked
            if count >= min_count
        ][: max(0, n)]

    def __len__(self) -> int:
        return sum(1 for _ in self.entries())
