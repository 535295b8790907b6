"""Percentiles as every summary computes them: numpy's linear method, checked against hand values
and against the interpolation it replaced."""

from __future__ import annotations

import math
import random

import pytest

from neoc_assistant.figures import latency_summary, percentile


def _hand_interpolated(sorted_values: list[float], q: float) -> float:
    """The formula figures.percentile used before numpy did it (kept here as the reference)."""
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@pytest.mark.parametrize("values, q, expected", [
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
    ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
    ([10.0, 20.0], 95, 19.5),
    ([0.0, 100.0, 200.0, 300.0, 400.0], 25, 100.0),
    ([0.0, 100.0, 200.0, 300.0, 400.0], 90, 360.0),
    ([3.0, 1.0, 2.0], 50, 2.0),  # numpy sorts: an unsorted list is no longer misread
    ([7.0], 95, 7.0),
])
def test_percentile_hand_values(values, q, expected):
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None
    assert latency_summary([]) == {"n": 0, "p50": None, "p95": None, "p99": None, "avg": None, "max": None}


def test_every_rounded_summary_is_what_the_hand_formula_gave():
    rng = random.Random(7)
    for _ in range(2000):
        data = sorted(rng.uniform(0, 5000) for _ in range(rng.randint(1, 200)))
        for q in (50, 95, 99, rng.uniform(0, 100)):
            ours, reference = percentile(data, q), _hand_interpolated(data, q)
            assert ours == pytest.approx(reference, rel=1e-12, abs=1e-9)
            assert round(ours, 3) == round(reference, 3)


def test_latency_summary_hand_values():
    assert latency_summary([0.4, 0.1, 0.3, 0.2]) == {"n": 4, "p50": 0.25, "p95": 0.385, "p99": 0.397, "avg": 0.25,
                                                      "max": 0.4}
