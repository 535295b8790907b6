"""What a caller says around a question: courtesy, introductions, filler - and the exact-match key.

Why whole discourse acts rather than listed words
-------------------------------------------------
Duty officers wrap questions in conversation: "Namaste, I need some help: ...",
"This is Ram from the Kaski District EOC - ...", "... Thanks in advance!",
"..., over." Dropping listed words ("hi", "thanks") leaves the rest of such a
phrase behind ("this is ram from the kaski district eoc"), which the cache guard
then reads as content that differs between two questions, and which pulls the
embedding away. So a message is cut into segments (at sentence marks, colons,
dashes and commas) and a segment at either *edge* is removed only when the whole
of it is one discourse act from ``data/discourse.toml`` (greeting, thanks,
radio procedure, apology, wish, announcement, introduction). The question in
the middle is never cut, and a segment that is anything else stops the
stripping, so "The landline is working but the radio is down - how do we ...?"
keeps its first half.

An introduction names the speaker's place ("... from the Kaski District EOC").
It is dropped only when the question does not point back at the speaker ("our",
"here", "we", ...): "This is the Kaski EOC - what is our danger level?" keeps it.

``strip_filler`` then removes framing inside the question ("can you tell me",
"please"), and ``normalize_key`` - tokens of what remains - is the response
cache's exact-match key, so it must only ever drop what cannot change an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from neoc_assistant.language.normalize import tokenize
from neoc_assistant.language.words import AUXILIARIES, WH_SINGLE, load

_data = load("discourse")
SPEAKER_WORDS = frozenset(_data["speaker"]["nouns"])
ADDRESSEE_WORDS = frozenset(_data["speaker"]["addressee"])
DEICTIC = frozenset(_data["deictic"]["words"])
FILLER_ANYWHERE = frozenset(_data["filler"]["anywhere"])
FILLER_PREFIXES = sorted((tuple(p.split()) for p in _data["filler"]["prefixes"]), key=len, reverse=True)
FILLER_SUFFIXES = sorted((tuple(p.split()) for p in _data["filler"]["suffixes"]), key=len, reverse=True)

# Segment boundaries: after . ! ? (followed by space), at : ; and commas, and at a spaced dash.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|\s*[:;,]\s*|\s+[-\u2013\u2014]+\s+|\s*[!?]+\s*(?=\S)")
_CONJUNCTIONS = ("but", "so", "and", "well", "anyway")


# -- patterns ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Word:
    options: frozenset[str]


@dataclass(frozen=True)
class _Slot:
    kind: str  # who | addressee | rest


@dataclass(frozen=True)
class _Optional:
    parts: tuple


def _parse(pattern: str) -> tuple:
    """``"sorry [to bother you] {who}"`` -> a tuple of _Word/_Slot/_Optional (see the data file)."""
    tokens = pattern.replace("[", " [ ").replace("]", " ] ").split()
    stack: list[list] = [[]]
    for tok in tokens:
        if tok == "[":
            stack.append([])
        elif tok == "]":
            group = stack.pop()
            stack[-1].append(_Optional(tuple(group)))
        elif tok.startswith("{") and tok.endswith("}"):
            stack[-1].append(_Slot(tok[1:-1]))
        else:
            stack[-1].append(_Word(frozenset(tok.split("|"))))
    if len(stack) != 1:
        raise ValueError(f"unbalanced [ ] in discourse pattern {pattern!r}")
    return tuple(stack[0])


_PATTERNS: dict[str, tuple[tuple, ...]] = {
    act: tuple(_parse(p) for p in patterns) for act, patterns in _data["segments"].items()
}


def _match(parts: tuple, i: int, tokens: list[str], who_ok: list[bool]) -> list[int]:
    """Every end position reachable by matching ``parts`` from token ``i`` (small backtracking matcher)."""
    if not parts:
        return [i]
    head, rest = parts[0], parts[1:]
    ends: list[int] = []
    if isinstance(head, _Word):
        if i < len(tokens) and tokens[i] in head.options:
            ends = _match(rest, i + 1, tokens, who_ok)
    elif isinstance(head, _Optional):
        for mid in _match(head.parts, i, tokens, who_ok):
            ends += _match(rest, mid, tokens, who_ok)
        ends += _match(rest, i, tokens, who_ok)
    else:
        stop = i
        limit = {"addressee": 2}.get(head.kind, len(tokens))
        while stop < len(tokens) and stop - i < limit and _slot_takes(head.kind, tokens[stop], who_ok[stop]):
            stop += 1
            ends += _match(rest, stop, tokens, who_ok)
    return ends


def _slot_takes(kind: str, token: str, who_ok: bool) -> bool:
    if kind == "who":
        return who_ok
    if kind == "addressee":
        return token in ADDRESSEE_WORDS
    return True


def discourse_act(segment: str) -> str | None:
    """The discourse act a whole segment is ("greeting", "thanks", "introduce", ...), or None."""
    tokens = tokenize(segment)
    if not tokens:
        return "empty"
    names = {w.lower() for w in re.findall(r"\b[A-Z][\w]*", segment)}
    who_ok = [t in names or t[0].isdigit() or t in SPEAKER_WORDS for t in tokens]
    for act, patterns in _PATTERNS.items():
        for parts in patterns:
            if len(tokens) in _match(parts, 0, tokens, who_ok):
                return act
    return None


# -- stripping ---------------------------------------------------------------------------------------
def _segments(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.start() > start:
            spans.append((start, m.start()))
        start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


@lru_cache(maxsize=4096)
def strip_discourse(text: str) -> str:
    """``text`` without the discourse acts at its edges (module docstring); unchanged if it is all discourse."""
    text = text or ""
    spans = _segments(text)
    if len(spans) < 2:
        return text
    acts = [discourse_act(text[a:b]) for a, b in spans]
    for allow_intro in (True, False):
        lo, hi = 0, len(spans)
        while lo < hi and acts[lo] and (allow_intro or acts[lo] != "introduce"):
            lo += 1
        while hi > lo and acts[hi - 1] and (allow_intro or acts[hi - 1] != "introduce"):
            hi -= 1
        if lo == hi:
            return text
        core = text[spans[lo][0] : spans[hi - 1][1]]
        dropped_intro = "introduce" in acts[:lo] + acts[hi:]
        if not (dropped_intro and DEICTIC & set(tokenize(core))):
            break
    words = core.split(None, 1)
    if lo > 0 and len(words) == 2 and words[0].lower().strip(",") in _CONJUNCTIONS:
        core = words[1]
    return core


def edge_statements(text: str) -> str:
    """The statements around the question once discourse acts are gone ("Good evening, shelter
    team here. How many ...?" -> "shelter team here"), joined; "" when there are none.

    A segment is a statement when it does not end in "?" and does not open with a question word
    or an auxiliary. Only segments before the first and after the last question segment count,
    and only when some segment is a question. Such words may be courtesy the patterns above do
    not know ("thanks for holding", "apologies if this is a silly question") or context that
    changes the answer ("the road is blocked"); the cache guard treats them as neither: they
    may be set aside only as a relaxed match the knowledge base must corroborate
    (``reading/guard.py``)."""
    core = strip_discourse(text or "")
    spans = _segments(core)
    if len(spans) < 2:
        return ""
    is_question = [_is_question(core[a:b], core[b:b + 2]) for a, b in spans]
    if not any(is_question):
        return ""
    first = is_question.index(True)
    last = len(is_question) - 1 - is_question[::-1].index(True)
    outside = [core[a:b] for i, (a, b) in enumerate(spans) if i < first or i > last]
    return " ".join(outside)


def _is_question(segment: str, after: str) -> bool:
    tokens = tokenize(segment)
    if "?" in segment or after.startswith("?"):
        return True
    return bool(tokens) and (tokens[0] in WH_SINGLE or tokens[0] in AUXILIARIES)


def strip_filler(tokens: list[str]) -> list[str]:
    """Tokens without ``please`` & co. anywhere and without framing prefixes/suffixes ("can you tell me")."""
    toks = [t for t in tokens if t not in FILLER_ANYWHERE]
    for edge in (FILLER_PREFIXES, FILLER_SUFFIXES):
        changed = True
        while changed and toks:
            changed = False
            for phrase in edge:
                n = len(phrase)
                part = toks[:n] if edge is FILLER_PREFIXES else toks[-n:]
                if len(toks) > n and tuple(part) == phrase:
                    toks = toks[n:] if edge is FILLER_PREFIXES else toks[:-n]
                    changed = True
                    break
    return toks


def question_tokens(question: str) -> list[str]:
    """The tokens of the question itself: discourse acts and filler removed."""
    return strip_filler(tokenize(strip_discourse(question)))


def normalize_key(question: str) -> str:
    """The exact-match key: case, whitespace, punctuation, discourse and filler removed; nothing else."""
    return " ".join(question_tokens(question))
