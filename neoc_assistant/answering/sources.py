"""How an answer carries its sources and its model figures (the same shape on every answer path)."""

from __future__ import annotations

from neoc_assistant.answer import shorten
from neoc_assistant.retrieve.hits import Hit

EXCERPT_CHARS = 300


def source_dict(hit: Hit, n: int, quoted: list[str] | None = None) -> dict:
    """A source as answers carry it: ``n`` is the number its citations use in the text; ``quoted``
    the statements of it the answer shows (the source view highlights them in the whole passage)."""
    return {
        "n": n,
        "text": hit.text,
        "source": hit.source,
        "page": hit.page,
        "chunk_id": hit.chunk_id,
        "score": round(float(hit.score), 4),
        "excerpt": shorten(hit.text, EXCERPT_CHARS),
        "section": hit.section,
        "quoted": list(quoted or []),
    }


def distinct_documents(hits: list[Hit], limit: int = 3) -> list[Hit]:
    """The best hit of each document, at most ``limit``: a list of nearest documents names each once."""
    out: list[Hit] = []
    seen: set[tuple[str, int | None]] = set()
    for hit in hits:
        key = (hit.source, hit.page)
        if key in seen or any(h.source == hit.source for h in out):
            continue
        seen.add(key)
        out.append(hit)
        if len(out) >= limit:
            break
    return out


def generation_stats(stats: dict) -> dict:
    keys = ("ttft_seconds", "prefill_seconds", "decode_seconds", "evaluated_tokens", "reused_tokens", "stopped_on", "loop")
    return {k: (round(v, 4) if isinstance(v, float) else v) for k in keys if (v := stats.get(k)) is not None}
