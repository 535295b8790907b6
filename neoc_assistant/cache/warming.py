"""Cache warming: replay frequent questions so the first officer to ask gets a hit.

``warm(answer_fn, questions)`` calls ``answer_fn(question)`` once per question,
in order, with a progress bar, and reports what happened. ``answer_fn`` is
whatever answers a question *through the cache* - the CLI passes
``lambda q: assistant().ask(q, use_cache=True)`` - so warming needs no chain
of its own and is testable with a stub. A question whose answer came back
``cached`` counts as already warm; an exception counts as a failure and the
run continues (one bad question must not stop a warm-up before a shift).

Questions come from the query log (``QueryLog.top``) or a file:
``.txt`` (one per line, ``#`` comments) or ``.jsonl`` (``"question"``,
``"text"`` or ``"q"`` field per line).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from neoc_assistant.language.discourse import normalize_key
from neoc_assistant.errors import InputError


@dataclass
class WarmReport:
    total: int = 0
    answered: int = 0  # freshly answered (and stored if grounded)
    already_cached: int = 0
    not_cacheable: int = 0  # answered, but not a grounded llm answer (will not be stored)
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "answered": self.answered,
            "already_cached": self.already_cached,
            "not_cacheable": self.not_cacheable,
            "failed": self.failed,
            "errors": self.errors[:20],
            "seconds": round(self.seconds, 2),
        }


def load_questions_file(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Question file not found: {path}")
    questions: list[str] = []
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() in (".jsonl", ".json"):
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not valid JSON ({exc.msg}); expected one object per line") from exc
            if isinstance(item, str):
                questions.append(item)
            elif isinstance(item, dict):
                value = item.get("question") or item.get("text") or item.get("q")
                if isinstance(value, str):
                    questions.append(value)
    else:
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                questions.append(line)
    return dedupe(questions)


def dedupe(questions: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for q in questions:
        key = normalize_key(q)
        if key and key not in seen:
            seen.add(key)
            out.append(q.strip())
    return out


def _field(result: Any, name: str):
    if isinstance(result, dict):
        return result.get(name)
    return getattr(result, name, None)


def warm(
    answer_fn: Callable[[str], Any],
    questions: Iterable[str],
    *,
    progress: bool = True,
    on_progress: Callable[[int, int, str], None] | None = None,
) -> WarmReport:
    questions = list(questions)
    report = WarmReport(total=len(questions))
    t0 = time.perf_counter()
    bar = None
    if progress and questions:
        from tqdm import tqdm

        bar = tqdm(total=len(questions), desc="warming cache", unit="q", file=sys.stderr, leave=True)
    try:
        for i, question in enumerate(questions, 1):
            try:
                result = answer_fn(question)
            except Exception as exc:  # noqa: BLE001 - report and carry on
                report.failed += 1
                report.errors.append(f"{question[:80]}: {exc}")
            else:
                if _field(result, "cached"):
                    report.already_cached += 1
                elif _field(result, "mode") not in (None, "llm") or _field(result, "complete") is False:
                    report.not_cacheable += 1
                else:
                    report.answered += 1
            if bar is not None:
                bar.update(1)
            if on_progress is not None:
                on_progress(i, len(questions), question)
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - t0
    return report
