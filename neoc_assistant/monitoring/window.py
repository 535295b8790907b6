"""Request outcomes and the statistics of a window of requests: shared by the live metrics and the history file.

An outcome is what became of one request - ``llm``, ``extractive``,
``extractive_busy`` (quoted because the model was busy), ``not-found``,
``cached_l1``/``cached_l2``, ``cancelled`` or ``error:<kind>``.
``summarize`` turns a list of them (with their stage timings) into the
figures ``stats`` and the System tab show: latency percentiles per stage, hit
rate over answers the cache could have served, error rate over what the
assistant was asked to answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from neoc_assistant.figures import latency_summary

#: Latency stages the chain reports in ``Answer.timings_ms``.
STAGES = ("cache", "embed", "retrieve", "rerank", "generate", "total")
#: Answer outcomes (errors are ``error:<kind>``).
OUTCOMES = ("llm", "extractive", "extractive_busy", "not-found", "cached_l1", "cached_l2")
CACHED_OUTCOMES = frozenset({"cached_l1", "cached_l2"})
#: Not failures of the assistant: the user stopped the answer, or the question was rejected (empty/too long).
CANCELLED_OUTCOMES = frozenset({"cancelled", "error:cancelled"})
INPUT_OUTCOMES = frozenset({"error:input", "error:InputError"})

_LABEL_RE = re.compile(r"[^A-Za-z0-9_.:-]+")
RECENT_POINTS = 500  # (timestamp, total_ms, outcome) triples kept in a snapshot for the latency plot


def label(value: str, limit: int = 48) -> str:
    """Bound label values: safe characters, short (label cardinality stays small)."""
    text = _LABEL_RE.sub("_", str(value).strip())[:limit]
    return text or "unknown"


def error_outcome(kind: str) -> str:
    return "error:" + label(kind, 40)


def outcome_of(answer) -> str:
    """The outcome label of an ``Answer`` (or its ``to_json()`` dict)."""
    get = answer.get if isinstance(answer, dict) else lambda k, d=None: getattr(answer, k, d)
    if get("cached", False):
        tier = get("cache_tier") or "l1"
        return f"cached_{tier}"
    mode = str(get("mode") or "unknown")
    if mode == "extractive" and (get("generation") or {}).get("admission") == "busy":
        return "extractive_busy"  # quoted because every model slot was taken (admission control)
    return mode


def summarize(records: list[tuple[float, str, dict]], capacity: int) -> dict:
    """Window statistics from ``(timestamp, outcome, timings_ms)`` records, oldest first."""
    outcomes: Counter[str] = Counter(outcome for _, outcome, _ in records)
    stages: dict[str, list[float]] = {}
    for _, _, timings in records:
        for stage, ms in timings.items():
            stages.setdefault(stage, []).append(ms)
    cancelled = sum(outcomes.get(o, 0) for o in CANCELLED_OUTCOMES)
    rejected = sum(outcomes.get(o, 0) for o in INPUT_OUTCOMES)
    errors = sum(n for o, n in outcomes.items() if o.startswith("error")) - cancelled - rejected
    # hit rate over completed answers; error rate over everything the assistant was asked to answer
    answered = len(records) - errors - cancelled - rejected
    attempted = len(records) - cancelled - rejected
    hits = sum(outcomes.get(o, 0) for o in CACHED_OUTCOMES)
    # Only model-written answers are stored in the cache, so only they (and hits) could have hit:
    # extractive and not-found answers never can, and must not drag the cache's own hit rate down.
    cacheable = hits + outcomes.get("llm", 0)
    ordered = [s for s in STAGES if s in stages] + sorted(s for s in stages if s not in STAGES)
    recent = records[-RECENT_POINTS:]
    return {
        "window": {
            "requests": len(records),
            "capacity": capacity,
            "since": records[0][0] if records else None,
            "until": records[-1][0] if records else None,
        },
        "latency_ms": {stage: latency_summary(stages[stage]) for stage in ordered},
        "outcomes": dict(sorted(outcomes.items())),
        "errors": errors,
        "cancelled": cancelled,
        "rejected_input": rejected,
        "error_rate": round(errors / attempted, 4) if attempted else None,
        "answered": answered,
        "cache_hits": hits,
        "hit_rate": round(hits / answered, 4) if answered else None,
        "cacheable_answers": cacheable,
        "cacheable_hit_rate": round(hits / cacheable, 4) if cacheable else None,
        "recent": [(round(ts, 3), timings.get("total"), outcome) for ts, outcome, timings in recent],
    }


def clean_timings(timings_ms: dict | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for stage, value in (timings_ms or {}).items():
        try:
            ms = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(ms) and ms >= 0:
            out[label(stage, 24)] = round(ms, 3)
    return out
