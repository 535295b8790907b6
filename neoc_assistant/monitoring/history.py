"""The rolling history file every assistant process appends its requests to, and ``stats`` reads back.

``stats`` runs in its own process, not the server's, so it reads the last
window of requests from this file: it works while the server is down
(after-action review), across restarts, and includes requests answered by
one-shot CLI ``ask`` runs. The server's sampler also writes a ``sample`` line
(RSS, system memory, CPU, pool) so ``stats`` can show the server's memory and
how old that reading is.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from neoc_assistant.monitoring.window import clean_timings, summarize

log = logging.getLogger(__name__)


class HistoryLog:
    """Append-only JSONL with size-based rotation (``requests.jsonl`` -> ``requests.jsonl.1``).

    One ``write()`` per line on an ``O_APPEND`` file, so lines from several
    processes (server + CLI ``ask``) do not interleave. A process whose file
    was rotated away by another notices (inode check at most once a second)
    and reopens.
    """

    def __init__(self, path: Path, max_bytes: int = 2_000_000):
        self.path = Path(path)
        self.max_bytes = max(4096, int(max_bytes))
        self._fh: TextIO | None = None
        self._ino: int | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.failed = False

    @property
    def backup(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)
        self._ino = os.fstat(self._fh.fileno()).st_ino

    def append(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self.failed:
                return
            try:
                now = time.monotonic()
                if self._fh is None:
                    self._open()
                elif now - self._checked > 1.0:
                    self._checked = now
                    try:
                        current = os.stat(self.path).st_ino
                    except FileNotFoundError:
                        current = None
                    if current != self._ino:  # rotated by another process
                        self._fh.close()
                        self._open()
                self._fh.write(line)  # type: ignore[union-attr]  # opened above
                if self._fh.tell() >= self.max_bytes:  # type: ignore[union-attr]
                    self._fh.close()  # type: ignore[union-attr]
                    os.replace(self.path, self.backup)
                    self._open()
            except OSError as exc:  # a full or read-only disk must not break answering
                self.failed = True
                log.warning("metrics history disabled: cannot write %s: %s", self.path, exc)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def read(self, limit: int | None = None) -> list[dict]:
        """The last ``limit`` parseable records (backup first, then current), oldest first."""
        lines: list[str] = []
        for path in (self.path, self.backup):
            try:
                chunk = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except FileNotFoundError:
                continue
            lines = chunk + lines
            if limit is not None and len(lines) >= limit * 2:  # enough even with sample lines
                break
        records = []
        for line in lines:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line after a crash
            if isinstance(item, dict):
                records.append(item)
        return records


def history_path(log_dir: Path) -> Path:
    return Path(log_dir) / "metrics" / "requests.jsonl"


def history_snapshot(log_dir: Path, window: int) -> dict:
    """The ``snapshot()`` shape of the last ``window`` requests, from the rolling history file (any process)."""
    path = history_path(log_dir)
    items = HistoryLog(path).read(limit=window)
    requests = [i for i in items if "outcome" in i and "kind" not in i]
    samples = [i for i in items if i.get("kind") == "sample"]
    guards = [i for i in items if i.get("kind") == "guard"]
    records = [(float(i.get("ts", 0.0)), str(i["outcome"]), clean_timings(i.get("t"))) for i in requests[-window:]]
    snap = summarize(records, window)
    tokens: Counter[str] = Counter()
    for i in requests[-window:]:
        for kind, n in (i.get("tok") or {}).items():
            tokens[kind] += int(n)
    since = records[0][0] if records else None
    snap["totals"] = {
        "tokens": dict(tokens),
        "guard_actions": dict(Counter(g.get("action", "?") for g in guards if since is None or g["ts"] >= since)),
    }
    snap["processes"] = sorted({int(i["pid"]) for i in requests[-window:] if "pid" in i})
    snap["server_sample"] = None
    if samples:
        last = samples[-1]
        snap["server_sample"] = {**{k: last.get(k) for k in ("pid", "rss_bytes", "system_percent", "cpu_percent",
                                                              "pool")},
                                 "age_seconds": round(time.time() - float(last.get("ts", 0.0)), 1)}
    snap["source"] = str(path)
    return snap
