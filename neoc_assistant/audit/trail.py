"""The audit trail: every answer given, appended to JSON Lines files that form one hash chain.

Why: an EOC must be able to show afterwards who asked what, what they were told
and from which version of the documents - and that the record was not edited
since. Each record holds the SHA-256 of the one before (``prev``) and its own
(``hash``, over its canonical JSON), and a sequence number; ``verify`` recomputes
them, so one edited, removed, inserted or reordered line is found and named.
What a hash chain cannot show by itself is records cut off at the end; the
``head`` file (the last seq and hash) catches that unless it was cut too, so
``audit verify`` prints the head for an operator to note (or send elsewhere).

* Files: ``<log_dir>/audit/audit-YYYY-MM.jsonl`` (one a month, UTC), so that
  retention (``audit.retention_days``) deletes whole files and never rewrites
  one; a ``retention`` record then says which files went and the hash the
  chain continued from, and ``verify`` accepts the chain starting there.
* Several processes append (the server, ``ask`` in a terminal): one file lock
  around "read the last record, append the next".
* Nothing secret is written: the caller is a name (``key:openwebui``,
  ``user:duty``), never a password or key; sources are named with their chunk
  ids, pages and scores, not their whole text.
* Feedback is a record of its own pointing at the answer's id: an answer's
  record is never changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from neoc_assistant.answer import Answer, shorten

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_SEGMENT = re.compile(r"^audit-(\d{4})-(\d{2})\.jsonl$")
EXCERPT_CHARS = 240


@dataclass(frozen=True)
class Asker:
    """Who asked and through what: ``who`` is a name, never a secret; ``conversation`` groups turns
    (the UI's session, a CLI conversation, an API caller's ``X-Conversation-Id``); without one, the turns of
    one caller that open with the same question (``opening``) are grouped."""

    who: str = "local"
    channel: str = "cli"  # cli | ui | api | openai
    conversation: str = ""
    opening: str = ""

    def conversation_id(self, question: str) -> str:
        if self.conversation:
            return self.conversation
        basis = f"{self.channel}\n{self.who}\n{self.opening or question}"
        return "c-" + hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()[:16]


def _canonical(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def record_hash(record: dict) -> str:
    """The hash of a record: SHA-256 over its canonical JSON without the ``hash`` field."""
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def answer_fields(asker: Asker, answer: Answer, history_turns: int) -> dict:
    verification = answer.verification or {}
    return {
        "kind": "answer", "who": asker.who, "channel": asker.channel,
        "conversation": asker.conversation_id(answer.question), "turn": history_turns + 1,
        "question": answer.question, "understood_as": answer.understood_as, "understood_by": answer.understood_by,
        "answer": answer.answer,
        "mode": answer.mode, "cached": answer.cached, "complete": answer.complete, "notice": answer.notice,
        "kb_version": answer.kb_version,
        "sources": [{"n": s.get("n"), "source": s.get("source"), "page": s.get("page"),
                     "chunk_id": s.get("chunk_id"), "score": s.get("score"),
                     "excerpt": shorten(s.get("excerpt") or "", EXCERPT_CHARS)} for s in answer.sources],
        "verification": {"status": verification.get("status"),
                         "claims": len(verification.get("claims") or []),
                         "unsupported": [c.get("text") for c in answer.unsupported_claims]},
        "worked": list(answer.worked),
    }


class AuditTrail:
    def __init__(self, folder: Path, *, retention_days: int = 0, clock=time.time):
        """``folder``: where the monthly files, the head and the lock live (created on the first record)."""
        self.folder = Path(folder)
        self.retention_days = retention_days
        self.clock = clock
        self._lock = threading.Lock()
        self._pruned_day = ""

    # -- writing ----------------------------------------------------------------------------------------
    def record_answer(self, asker: Asker, answer: Answer, history_turns: int = 0) -> str:
        """Append the answer; returns its record id (``Answer.audit_id``, which feedback points at)."""
        return self._append(answer_fields(asker, answer, history_turns))

    def record_feedback(self, answer_id: str, helpful: bool, comment: str = "", who: str = "local") -> str:
        return self._append({"kind": "feedback", "answer_id": answer_id, "helpful": bool(helpful),
                             "comment": comment, "who": who})

    def _append(self, fields: dict) -> str:
        now = self.clock()
        record_id = uuid.uuid4().hex[:20]
        with self._lock:
            self.folder.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.folder / "audit.lock"), timeout=30):
                self._prune(now)
                seq, prev = self._last()
                record = {"seq": seq + 1, "id": record_id, "ts": round(now, 3), "time": _iso(now), **fields,
                          "prev": prev}
                record["hash"] = record_hash(record)
                line = json.dumps(record, ensure_ascii=False) + "\n"
                with open(self._segment(now), "a", encoding="utf-8") as fh:
                    fh.write(line)
                    fh.flush()
                (self.folder / "head.json").write_text(json.dumps({"seq": record["seq"], "hash": record["hash"]}))
        return record_id

    def _segment(self, ts: float) -> Path:
        day = datetime.fromtimestamp(ts, timezone.utc)
        return self.folder / f"audit-{day.year:04d}-{day.month:02d}.jsonl"

    def segments(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _SEGMENT.match(p.name))

    def _last(self) -> tuple[int, str]:
        """The last record's (seq, hash), from the end of the newest file (0, GENESIS when there is none)."""
        for path in reversed(self.segments()):
            line = _last_line(path)
            if line:
                record = json.loads(line)
                return int(record["seq"]), str(record["hash"])
        head = self._head()
        return (head["seq"], head["hash"]) if head else (0, GENESIS)

    def _head(self) -> dict | None:
        try:
            return json.loads((self.folder / "head.json").read_text())
        except (OSError, ValueError):
            return None

    def _prune(self, now: float) -> None:
        """Delete whole monthly files older than the retention, once a day, and say so in the chain."""
        day = _iso(now)[:10]
        if not self.retention_days or self._pruned_day == day:
            return
        self._pruned_day = day
        cutoff = now - self.retention_days * 86400
        current = self._segment(now)
        old = [p for p in self.segments() if p != current and _newest_ts(p) < cutoff]
        if not old:
            return
        last_line = _last_line(old[-1])
        continued_from = json.loads(last_line)["hash"] if last_line else GENESIS
        for path in old:
            path.unlink()
        seq, prev = self._last()
        if not self.segments():  # every file went: the chain continues from the head
            seq, prev = int((self._head() or {}).get("seq", seq)), continued_from
        record = {"seq": seq + 1, "id": uuid.uuid4().hex[:20], "ts": round(now, 3), "time": _iso(now),
                  "kind": "retention", "removed": [p.name for p in old], "continued_from": continued_from,
                  "retention_days": self.retention_days, "prev": prev}
        record["hash"] = record_hash(record)
        with open(current, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.info("audit: removed %s (older than %d days)", ", ".join(p.name for p in old), self.retention_days)

    # -- reading ---------------------------------------------------------------------------------------------
    def records(self) -> Iterator[dict]:
        for path in self.segments():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        try:
                            yield json.loads(line)
                        except ValueError:
                            continue  # verify reports it

    def answers(self, *, conversation: str | None = None, since: float | None = None,
                until: float | None = None, who: str | None = None) -> list[dict]:
        """Answer records (each with its ``feedback`` list) of one conversation and/or a time range."""
        found: dict[str, dict] = {}
        feedback: dict[str, list[dict]] = {}
        for record in self.records():
            if record.get("kind") == "feedback":
                feedback.setdefault(record.get("answer_id", ""), []).append(
                    {k: record.get(k) for k in ("time", "helpful", "comment", "who")})
                continue
            if record.get("kind") != "answer":
                continue
            ts = float(record.get("ts") or 0)
            if (conversation and record.get("conversation") != conversation) or (since and ts < since) \
                    or (until and ts >= until) or (who and record.get("who") != who):
                continue
            found[record["id"]] = record
        return [{**record, "feedback": feedback.get(record_id, [])} for record_id, record in found.items()]

    def verify(self) -> dict:
        """Recompute the chain: ``{"ok", "records", "files", "head", "problems": [{"file", "line", "why"}]}``."""
        problems: list[dict] = []
        prev, seq, count, anchors = None, None, 0, set()
        last_hash = first_prev = None
        for path in self.segments():
            with open(path, encoding="utf-8") as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    where = {"file": path.name, "line": number}
                    try:
                        record = json.loads(line)
                    except ValueError:
                        problems.append({**where, "why": "not a JSON record (edited or cut)"})
                        prev = seq = None
                        continue
                    count += 1
                    if record.get("kind") == "retention":
                        anchors.add(record.get("continued_from"))
                    if record_hash(record) != record.get("hash"):
                        problems.append({**where, "why": f"record {record.get('seq')} was changed: its hash does "
                                                         "not match its content"})
                    if count == 1:
                        first_prev = record.get("prev")
                    elif prev is not None and record.get("prev") != prev:
                        problems.append({**where, "why": f"record {record.get('seq')} does not follow the one "
                                                         "before it (a record was removed, inserted or reordered)"})
                    if seq is not None and record.get("seq") != seq + 1:
                        problems.append({**where, "why": f"sequence jumps from {seq} to {record.get('seq')}"})
                    prev, seq, last_hash = record.get("hash"), record.get("seq"), record.get("hash")
        if count and first_prev != GENESIS and first_prev not in anchors:
            problems.insert(0, {"file": self.segments()[0].name, "line": 1,
                                "why": "the chain's beginning is missing (records removed without a retention "
                                       "record)"})
        head = self._head()
        if head and last_hash is not None and head.get("hash") != last_hash:
            problems.append({"file": "head.json", "line": 1,
                             "why": f"the last record is {seq}, the head says {head.get('seq')}: records at the "
                                    "end were removed (or the head was changed)"})
        if head and last_hash is None and head.get("seq"):
            problems.append({"file": "head.json", "line": 1, "why": "the head names records but no file holds any"})
        return {"ok": not problems, "records": count, "files": [p.name for p in self.segments()],
                "head": head or {}, "problems": problems}


def _last_line(path: Path) -> str:
    """The file's last non-empty line, read from its end (a month's file may be large)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        block = 65536
        while True:
            start = max(0, size - block)
            fh.seek(start)
            lines = [line for line in fh.read(size - start).split(b"\n") if line.strip()]
            if lines and (start == 0 or len(lines) > 1):
                return lines[-1].decode("utf-8")
            if start == 0:
                return ""
            block *= 4


def _newest_ts(path: Path) -> float:
    line = _last_line(path)
    try:
        return float(json.loads(line).get("ts") or 0) if line else 0.0
    except ValueError:
        return float("inf")  # unreadable: never deleted by retention (verify reports it)
