"""Check the model's citation markers against the passages it was actually given.

Why: small local models sometimes cite ``[7]`` when only five passages were in
the prompt, or copy a marker from an earlier answer. A citation that points
nowhere is worse than none for a duty officer, so such markers are removed
(and lists like ``[1, 7]`` are reduced to their valid members), and the
caller gets the sorted list of passages really cited to show as sources.
"""

from __future__ import annotations

import re

# [1]  [1, 2]  [1,2; 3]  [1-3]  [1–3]  - digits only, so "[a]" or "[2024 report]" are left alone
# unless they are purely numeric (a bare "[2024]" is a marker out of range and goes).
_MARKER = re.compile(r"(?P<space>[ \t]?)\[(?P<body>\s*\d+(?:\s*(?:[,;]|[-–—])\s*\d+)*\s*)\]")
_ITEM = re.compile(r"(\d+)\s*[-–—]\s*(\d+)|(\d+)")
_MAX_RANGE = 50


def _parse(body: str) -> list[int]:
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


def check_citations(answer: str, n_passages: int) -> tuple[str, list[int]]:
    """Remove markers outside ``1..n_passages``; return (clean text, sorted distinct cited indices)."""
    cited: set[int] = set()

    def repl(m: re.Match) -> str:
        seen: list[int] = []
        for k in _parse(m.group("body")):
            if 1 <= k <= n_passages and k not in seen:
                seen.append(k)
        if not seen:
            return ""  # drop the marker and the space before it
        cited.update(seen)
        return m.group("space") + "[" + ", ".join(str(k) for k in seen) + "]"

    cleaned = _MARKER.sub(repl, answer)
    return cleaned, sorted(cited)
