"""Pure formatting for the UI: answers, sources, banners, health and ingest summaries.

No Gradio here, so every function is unit-testable and cheap. Everything that
comes from a document (source names, excerpts) is escaped before it is put
into Markdown: a passage must never turn into a link, an image fetch or HTML.
The escaping here keeps the Markdown readable; the guarantee is the next step:
the page's components render all of it to inert HTML on the server
(``safe_html.py`` via ``safe_components.py``), escaped or not.

The fixed words come from ``language/data/texts.toml``: the labels ("Sources", "Understood as",
"Stopped") in the UI's language (``lang``), an answer's own notices in its question's language.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any, Iterable

from neoc_assistant.answer import NOT_A_FACT, shorten
from neoc_assistant.errors import NeocError
from neoc_assistant.figures import MISSING, format_duration, format_megabytes, format_percent
from neoc_assistant.language.texts import answer_text, question_language, ui_text

EXCERPT_CHARS = 220

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|~])")


def md_escape(text: str) -> str:
    """Escape Markdown/HTML so document text renders literally (no links, images, tags)."""
    escaped = _MD_SPECIAL.sub(r"\\\1", html.unescape(str(text)))
    return escaped.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code span (literal by definition; only backticks need care)."""
    return "`" + str(text).replace("`", "'").replace("\n", " ") + "`"


_TABLE_RULE = re.compile(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?")


def short_excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of plain text: Markdown emphasis and table rules removed, cells joined with ' · '."""
    flat = " ".join(str(text or "").split())
    flat = _TABLE_RULE.sub(" ", flat).replace("**", "").replace("__", "")
    flat = re.sub(r"\s*\|\s*(\|\s*)*", " · ", flat).strip(" ·")
    return shorten(flat, limit + 2, " …")


def error_kind(exc: BaseException) -> str:
    """The name ``error_markdown`` shows an error under: ours by class, anything else as "Error"."""
    return type(exc).__name__ if isinstance(exc, NeocError) else "Error"


def _get(obj: Any, name: str, default=None):
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


# ---------------------------------------------------------------------------
# answers
# ---------------------------------------------------------------------------
def banner(answer: Any) -> str:
    """The note above an answer: quoted (extractive), not-found, partly removed, cut off (in the
    question's language, as the answer's notice is)."""
    mode = _get(answer, "mode", "llm")
    notice = (_get(answer, "notice", "") or "").strip()
    lang = question_language(_get(answer, "question", "") or "")
    if mode == "extractive":
        text = notice or answer_text("quoted", lang)
        return f"> ⚠ **{md_escape(text)}**"
    if mode == "not-found":
        text = notice or answer_text("not_found_short", lang)
        return f"> ℹ **{md_escape(text)}**"
    if notice:
        return f"> ℹ {md_escape(notice)}"
    return ""


def sources_block(sources: Iterable[dict], *, excerpts: bool = True, title: str | None = None, lang: str = "en") -> str:
    """Numbered like the [n] markers in the answer (each source carries its ``n``)."""
    title = title or ui_text("sources", lang)
    lines, wholes = [], []
    for position, src in enumerate(sources or [], start=1):
        number = _get(src, "n") or position
        name = md_escape(_get(src, "source", "?"))
        page = _get(src, "page")
        where = f"**{name}**" + (ui_text("page", lang, page=page) if page not in (None, "", 0) else "")
        excerpt = short_excerpt(_get(src, "excerpt", "") or "") if excerpts else ""
        line = f"{number}. {where}"
        if excerpt:
            line += f" — “{md_escape(excerpt)}”"
        whole = passage_markdown(_get(src, "text", "") or "", _get(src, "quoted") or [])
        if whole and excerpts:  # after the list: an HTML block inside a list item loses its content
            summary = ui_text("whole_passage", lang, n=number, name=name)
            wholes.append(f"<details><summary>{summary}</summary>\n\n{whole}\n\n</details>")
        lines.append(line)
    if not lines:
        return ""
    return f"**{title}**\n\n" + "\n".join(lines) + "".join(f"\n\n{w}" for w in wholes)


_WORDS = re.compile(r"[a-z0-9]+")


def _holds(line: str, statement: str) -> bool:
    """The passage line a quoted statement comes from: most of its words are on it (a table row is
    quoted with its column names, which the row itself does not repeat)."""
    words = set(_WORDS.findall(line.lower()))
    wanted = _WORDS.findall(statement.lower())
    return bool(wanted) and sum(w in words for w in wanted) >= 0.7 * len(wanted)


def passage_markdown(text: str, quoted: list[str]) -> str:
    """The whole passage as escaped text, one line per line of the document, the lines the answer
    quotes marked: the rest of the passage is one click away from the quote (empty if nothing was
    quoted from it)."""
    if not quoted:
        return ""
    out = []
    for raw in str(text).splitlines():
        line = raw.strip()
        if not line or _TABLE_RULE.fullmatch(line):
            continue
        shown = md_escape(short_excerpt(line, 10_000))
        out.append(f"<mark>{shown}</mark>" if any(_holds(line, q) for q in quoted) else shown)
    return "  \n".join(out)


def removed_claims_block(answer: Any, lang: str = "en") -> str:
    """A collapsed note listing what the model wrote that the documents do not support."""
    claims = [c for c in (_get(answer, "verification") or {}).get("claims", [])
              if not c.get("supported") and c.get("reason") not in NOT_A_FACT]
    if not claims:
        return ""
    items = "\n".join(f"- {md_escape(c.get('text', ''))}" + (f" _({md_escape(c['reason'])})_" if c.get("reason") else "")
                      for c in claims)
    summary = ui_text("removed_one", lang) if len(claims) == 1 else ui_text("removed_many", lang, n=len(claims))
    return f"<details><summary>{summary}</summary>\n\n{items}\n\n</details>"


_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_REF_IMAGE = re.compile(r"!\[([^\]]*)\]\[[^\]]*\]")


def safe_markdown(text: str) -> str:
    """Model output as Markdown, minus anything the browser would fetch (images, raw HTML)."""
    text = _IMAGE.sub(lambda m: f"[image: {m.group(1)}]", str(text or ""))
    text = _REF_IMAGE.sub(lambda m: f"[image: {m.group(1)}]", text)
    return text.replace("<", "&lt;")


def badges(answer: Any, lang: str = "en") -> str:
    parts = []
    if _get(answer, "cached", False):
        tier = (_get(answer, "cache_tier") or "").upper()
        where = {"L1": "L1 memory", "L2": "L2 disk"}.get(tier, tier)
        cached = ui_text("cached", lang)
        parts.append(f"⚡ **{cached} {tier}** ({where})" if tier else f"⚡ **{cached}**")
    total = (_get(answer, "timings_ms", {}) or {}).get("total")
    if total is not None:
        parts.append(ui_text("answered_in", lang, time=format_duration(total)))
    mode = _get(answer, "mode", "")
    if mode and mode != "llm":
        parts.append(ui_text("mode", lang, mode=md_escape(mode)))
    return " · ".join(parts)


def answer_markdown(answer: Any, *, stopped: bool = False, lang: str = "en") -> str:
    """The whole chat bubble for a finished answer: banner, text, sources, badges (labels in ``lang``,
    the UI's language; the banner and the not-found list in the question's, as the chain wrote them).

    Model answers and quoted passages render as sanitised Markdown (no images,
    no raw HTML, so nothing is fetched); the not-found list is plain text.
    """
    mode = _get(answer, "mode", "llm")
    text = (_get(answer, "answer", "") or "").strip()
    notice = (_get(answer, "notice", "") or "").strip()
    sources = _get(answer, "sources", []) or []
    parts = []
    understood = (_get(answer, "understood_as", "") or "").strip()
    if understood:  # a follow-up: how it was read with the conversation (the ✎ button corrects it)
        parts.append(f"<sub>{ui_text('understood', lang, text=md_escape(understood))}</sub>")
    top = banner(answer)
    if top:
        parts.append(top)
    if mode == "not-found":
        if notice and text.startswith(notice):
            text = text[len(notice):].strip()
        body, src = md_escape(text), ""
    else:
        body, src = safe_markdown(text), sources_block(sources, lang=lang)
    if body:
        parts.append(body)
    removed = removed_claims_block(answer, lang)
    if removed:
        parts.append(removed)
    if stopped:
        parts.append(ui_text("stopped", lang))
    if src:
        parts.append("---\n" + src)
    meta = badges(answer, lang)
    if meta:
        parts.append(f"<sub>{meta}</sub>")
    return "\n\n".join(parts)


def streaming_markdown(text: str) -> str:
    return safe_markdown(text) + " ▌"


def stopped_markdown(partial: str, lang: str = "en") -> str:
    partial = (partial or "").rstrip().removesuffix("▌").rstrip()
    return (partial + "\n\n" if partial else "") + ui_text("stopped", lang)


_ERROR_HINTS = ("InputError", "BusyError", "MemoryGuardError", "ModelError", "StoreError")


def error_markdown(kind: str, message: str, lang: str = "en") -> str:
    hint = ui_text(f"error_{kind if kind in _ERROR_HINTS else 'Error'}", lang)
    return f"> ⚠ **{hint}:** {md_escape(message)}"


# ---------------------------------------------------------------------------
# knowledge base
# ---------------------------------------------------------------------------
DOC_COLUMNS = ["source", "title", "type", "pages", "chunks", "ingested", "version"]


def document_rows(docs: Iterable[Any]) -> list[list]:
    rows = []
    for d in docs:
        when = _get(d, "ingested_at", 0) or 0
        stamp = dt.datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M") if when else ""
        rows.append([
            ", ".join(_get(d, "sources", ()) or ()),
            _get(d, "title", ""),
            _get(d, "doc_type", ""),
            _get(d, "n_pages", 0),
            _get(d, "n_chunks", 0),
            stamp,
            _get(d, "version", "") or "",  # current / superseded by ... (ingest/versions.py)
        ])
    rows.sort(key=lambda r: r[0].lower())
    return rows


def ingest_summary_markdown(data: dict, rejected: list[tuple[str, str]] | None = None, title: str = "Ingest") -> str:
    """Summary of an ``IngestSummary.to_dict()`` plus files refused before ingest."""
    lines = [
        f"**{title}:** added {data.get('added', 0)} · updated {data.get('updated', 0)} · "
        f"unchanged {data.get('unchanged', 0)} · removed {data.get('purged', 0)} · "
        f"failed {data.get('failed', 0) + len(rejected or [])} · chunks {data.get('chunks', 0)} · "
        f"{data.get('seconds', 0):.1f} s"
    ]
    changed = [f for f in data.get("files", []) if f.get("status") in ("added", "updated", "purged")]
    for f in changed:
        extra = f" ({md_escape(f['reason'])})" if f.get("reason") else ""
        lines.append(f"- ✓ {f['status']}: {code(f['source'])}{extra}")
    for name, reason in rejected or []:
        lines.append(f"- ✗ refused {code(name)}: {md_escape(reason)}")
    for item in data.get("failures", []):
        lines.append(f"- ✗ failed {code(item['source'])}: {md_escape(item['reason'])}")
    for item in data.get("skipped_files", []):
        lines.append(f"- – skipped {code(item['source'])}: {md_escape(item['reason'])}")
    for note in data.get("notes", []):
        lines.append(f"- ℹ {md_escape(note)}")
    if data.get("kb_version"):
        lines.append(f"\nKnowledge-base version now `{data['kb_version']}`.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# system
# ---------------------------------------------------------------------------
def _flatten(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.extend(_flatten(value, name))
            elif isinstance(value, (list, tuple)) and len(value) > 8:
                out.append((name, f"[{len(value)} items]"))
            else:
                out.append((name, value))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "✓ yes" if value else "✗ no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:.3g}"
    return md_escape(value) if isinstance(value, str) else md_escape(repr(value)) if isinstance(value, (list, tuple)) else str(value)


def kv_table(data: dict, limit: int = 60) -> str:
    rows = _flatten(data)[:limit]
    if not rows:
        return "_nothing reported_"
    body = "\n".join(f"| {md_escape(k)} | {_fmt(v)} |" for k, v in rows)
    return "| item | value |\n|---|---|\n" + body


def health_markdown(health: dict) -> str:
    """Overall status plus one row per check (ok, message)."""
    ok = bool(health.get("healthy"))
    status = health.get("status") or ("healthy" if ok else "unhealthy")
    head = f"### ✓ Healthy ({md_escape(status)})" if ok else f"### ✗ Unhealthy ({md_escape(status)})"
    rows = []
    for name, check in (health.get("checks") or {}).items():
        if isinstance(check, dict):
            mark = "✓" if check.get("ok", True) else "✗"
            if check.get("degraded"):
                mark += " degraded"
            message = check.get("message") or ", ".join(
                f"{k}={v}" for k, v in check.items() if k not in ("ok", "degraded") and not isinstance(v, (dict, list)))
        else:
            mark, message = ("✓" if check else "✗"), ""
        message = " ".join(str(message).split())  # a newline would end the table row mid-message
        rows.append(f"| {md_escape(name)} | {mark} | {md_escape(message)} |")
    table = "| check | status | detail |\n|---|---|---|\n" + "\n".join(rows) if rows else ""
    return "\n\n".join(p for p in (head, table) if p)


def metrics_markdown(stats: dict, queue: dict | None = None) -> str:
    """The handful of numbers a duty officer or admin looks at."""
    total = (stats.get("latency_ms") or {}).get("total") or {}
    window = stats.get("window") or {}
    memory = stats.get("memory") or {}
    pool = stats.get("pool") or {}
    rows = [
        ("requests in window", f"{window.get('requests', 0)} (answered {stats.get('answered', 0)})"),
        ("latency p50 / p95 / p99", " / ".join(format_duration(total.get(p)) for p in ("p50", "p95", "p99"))),
        ("cache hit rate", f"{format_percent(stats.get('hit_rate'))} ({stats.get('cache_hits', 0)} hits)"),
        ("error rate", f"{format_percent(stats.get('error_rate'))} ({stats.get('errors', 0)} errors, "
                       f"{stats.get('cancelled', 0)} stopped)"),
        ("CPU", MISSING if stats.get("cpu_percent") is None else f"{stats['cpu_percent']:.0f}%"),
        ("memory (this process / system)",
         f"{format_megabytes(memory.get('rss_bytes'))} / {_system_percent(memory)} used"),
    ]
    if pool:
        kind = "answer slots (one batched context)" if pool.get("batching") else "model contexts"
        wait = f", expected wait {pool['expected_wait_seconds']:.0f} s" if pool.get("expected_wait_seconds") else ""
        rows.append((f"{kind} in use / size", f"{pool.get('in_use', 0)} / {pool.get('size', 0)}"
                                              f" ({pool.get('waiting', 0)} queued{wait})"))
        if pool.get("refused_busy"):
            rows.append(("answered with quotes because the model was busy", str(pool["refused_busy"])))
    else:
        rows.append(("model contexts", "model not loaded"))
    for server in pool.get("servers") or ():  # generation on LLM servers: each one's state
        state = (f"up, {server['in_flight']} answering" if server["up"] else
                 f"down ({server['last_error']}), retry in {server['retry_in_seconds']:.0f} s")
        rows.append((f"LLM server {server['url']}", state))
    if queue:
        rows.append(("UI queue (waiting / running)", f"{queue.get('waiting', 0)} / {queue.get('running', 0)}"))
    if stats.get("uptime_seconds") is not None:
        rows.append(("uptime", f"{stats['uptime_seconds'] / 60:.0f} min"))
    alerts = stats.get("alerts") or []
    body = "| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {md_escape(v)} |" for k, v in rows)
    if alerts:
        body += "\n\n**Alerts**\n\n" + "\n".join(
            f"- ⚠ {md_escape(a.get('message', a) if isinstance(a, dict) else a)}" for a in alerts)
    return body


def _system_percent(memory: dict) -> str:
    percent = memory.get("system_percent")
    return MISSING if percent is None else f"{percent}%"
