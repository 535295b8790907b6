"""Citation markers (``[1]``, ``[1, 2]``, ``[1-3]``): the one place that parses them.

Why: small local models sometimes cite ``[7]`` when only five passages were in
the prompt, or copy a marker from an earlier answer. A citation that points
nowhere is worse than none for a duty officer, so markers are parsed into
passage numbers here and re-written by the claim verifier from the passages
that actually support each claim. History answers lose their markers
(``strip_citations``): old ``[k]`` refer to old passages.
"""

from __future__ import annotations

import re

# [1]  [1, 2]  [1,2; 3]  [1-3]  [1–3]  - digits only, so "[a]" or "[2024 report]" are left alone
# unless they are purely numeric (a bare "[2024]" is a marker out of range and goes).
_BODY = r"\s*\d+(?:\s*(?:[,;]|[-–—])\s*\d+)*\s*"
MARKER_PATTERN = rf"\[(?:{_BODY})\]"  # for building other patterns (no groups)
MARKER = re.compile(rf"(?P<space>[ \t]?)\[(?P<body>{_BODY})\]")
_ITEM = re.compile(r"(\d+)\s*[-–—]\s*(\d+)|(\d+)")
_MAX_RANGE = 50


def parse_marker(body: str) -> list[int]:
    """``"1, 3-4"`` -> ``[1, 3, 4]`` (ranges wider than 50 are read as their two ends)."""
    out: list[int] = []
    for m in _ITEM.finditer(body):
        if m.group(3) is not None:
            out.append(int(m.group(3)))
        else:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo <= hi and hi - lo <= _MAX_RANGE:
                out.extend(range(lo, hi + 1))
            else:
                out.extend((lo, hi))
    return out


def cited_numbers(text: str) -> list[int]:
    """Every passage number cited in ``text``, first mention first."""
    return list(dict.fromkeys(k for m in MARKER.finditer(text) for k in parse_marker(m.group("body"))))


def strip_citations(text: str) -> str:
    return MARKER.sub("", text)


def format_citations(numbers: list[int]) -> str:
    return "".join(f"[{k}]" for k in numbers)


def check_citations(answer: str, n_passages: int) -> tuple[str, list[int]]:
    """Remove markers outside ``1..n_passages``; return (clean text, sorted distinct cited indices)."""
    cited: set[int] = set()

    def repl(m: re.Match) -> str:
        seen: list[int] = []
        for k in parse_marker(m.group("body")):
            if 1 <= k <= n_passages and k not in seen:
                seen.append(k)
        if not seen:
            return ""  # drop the marker and the space before it
        cited.update(seen)
        return m.group("space") + "[" + ", ".join(str(k) for k in seen) + "]"

    cleaned = MARKER.sub(repl, answer)
    return cleaned, sorted(cited)
