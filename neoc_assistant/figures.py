"""Figures computed and shown the same way everywhere: latency percentiles and human-readable numbers.

The monitoring window, the response cache's own statistics and the load
test all summarise latencies with ``latency_summary``; the CLI (``stats``)
and the UI's System tab print memory, rates and durations with the
``format_*`` functions, so the two never disagree about what a figure says.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

MISSING = "–"  # what a figure that is not known (yet) shows as


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), numpy's default ``linear`` method; None when empty.

    The hand-written interpolation this replaces agreed with it to the last bit or two (numpy
    interpolates from the nearer neighbour), so every rounded figure is unchanged."""
    return _percentile(values, q) if values else None


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q, method="linear"))


def latency_summary(values: Iterable[float]) -> dict:
    """``{"n", "p50", "p95", "p99", "avg", "max"}`` of latencies (any unit), rounded to 3 decimals."""
    data = sorted(float(v) for v in values)
    if not data:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "avg": None, "max": None}
    return {
        "n": len(data),
        "p50": round(_percentile(data, 50), 3),
        "p95": round(_percentile(data, 95), 3),
        "p99": round(_percentile(data, 99), 3),
        "avg": round(sum(data) / len(data), 3),
        "max": round(data[-1], 3),
    }


def format_duration(ms: float | None) -> str:
    """``850 ms``, ``2.4 s``."""
    if ms is None:
        return MISSING
    return f"{ms / 1000:.1f} s" if ms >= 100 else f"{ms:.0f} ms"


def format_percent(fraction: float | None) -> str:
    """``0.5`` -> ``50%``."""
    return MISSING if fraction is None else f"{fraction * 100:.0f}%"


def format_megabytes(n_bytes: float | None) -> str:
    """Bytes as ``1,234 MB`` (binary megabytes, as memory is reported)."""
    return MISSING if n_bytes is None else f"{n_bytes / 1024 / 1024:,.0f} MB"
