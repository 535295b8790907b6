"""Cut passages and answers into the units that are checked, quoted and cited.

Passages (``split_passage``) are chunks of manuals: headings, prose, bullet
lists and Markdown tables. The unit is a *statement*: a prose sentence, one
list item, or one table row rendered as ``cell: cell`` (with the table's
header row kept as context). Headings are not statements; each statement
remembers the nearest heading above it, so "Quantity" + "15 litres per person
per day" can be scored together against a question about water.

Answers (``split_claims``) are model text: sentences, bullet or numbered
items, and ``[n]`` citation markers that may sit before or after the final
full stop. Each claim keeps its list marker so the verified answer can be put
back together in the model's own layout.

Both splitters are plain rules, not a library sentence tokenizer: the pieces
that matter here (table rows, list items, trailing citation markers, "e.g." and
"No. 5" inside sentences) are layout, which NLTK's Punkt or spaCy's sentencizer
do not know, and neither may download a model at run time.

Nepali (Devanagari) prose ends its sentences with the danda "।" (a verse or
section with "॥") and has no capital letters, so a sentence may start with any
Devanagari letter or digit, and a statement needs Devanagari words as it needs
English ones (``language/devanagari.py`` says what a Devanagari word is).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from neoc_assistant.language.citations import MARKER, MARKER_PATTERN, cited_numbers, format_citations, strip_citations
from neoc_assistant.language.devanagari import ABBREVIATIONS as _NEPALI_ABBREVIATIONS
from neoc_assistant.language.devanagari import DANDA, DOUBLE_DANDA, WORD_CHARS

_ABBREVIATIONS = (
    "e.g", "i.e", "etc", "approx", "no", "nos", "vs", "dr", "mr", "mrs", "ms", "st", "fig", "ref", "min",
    "max", "dept", "govt", "sec", "art", "para", "p", "pp", "vol", "incl", "est", "u.s", "a.m", "p.m",
)
# A sentence ends at . ! ? or a danda (optionally followed by closing quotes/brackets and citation
# markers) before whitespace and something that can start a sentence (Devanagari has no capitals).
_DEVANAGARI_START = WORD_CHARS + "\u0966-\u096f"
_SENTENCE_END = re.compile(
    rf"(?<=[.!?{DANDA}{DOUBLE_DANDA}])(?P<tail>[\"')\]]*(?:\s?{MARKER_PATTERN})*)"
    rf"\s+(?=[\"'(\[]?[A-Z0-9*•{_DEVANAGARI_START}])"
)
_ENDS = (".", "!", "?", DANDA, DOUBLE_DANDA)
_NEPALI_ABBREVIATION = re.compile(rf"([{WORD_CHARS}]+)\.$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)]|[a-z][.)])\s+")
_HEADING = re.compile(r"^\s*(?:#{1,6}\s+|\*\*[^*]+\*\*:?\s*$)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_MARKUP = re.compile(r"\*\*|__|`")


@dataclass
class Statement:
    """One checkable, quotable unit of a passage."""

    text: str  # clean text (markup removed), what is quoted and compared
    heading: str = ""  # nearest heading above it in the passage ("" if none)
    kind: str = "sentence"  # sentence | item | row
    # Where it stands, so that an answer can be composed from a run of statements with the context
    # they need: ``block`` numbers the paragraph, list or table it belongs to; ``marker`` is a numbered
    # item's step number ("3."); ``lead`` is the sentence that introduces its list ("Every order
    # states:") or the table's caption line.
    block: int = 0
    marker: str = ""
    lead: str = ""

    @property
    def with_context(self) -> str:
        return f"{self.heading}: {self.text}" if self.heading else self.text


@dataclass
class Claim:
    """One sentence or list item of a model answer."""

    text: str  # without citation markers
    cited: list[int] = field(default_factory=list)  # passage numbers the model wrote, in order
    marker: str = ""  # list marker and indentation it was written with ("- ", "2. ")
    lead_in: bool = False  # "The steps are:" - framing for the items that follow, not a fact by itself
    new_line: bool = True  # starts a line in the original layout


def clean_markup(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).split())


def _split_sentences(text: str) -> list[str]:
    """Split prose at sentence ends, not after abbreviations like 'e.g.' or 'No.'."""
    out: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        end = m.start("tail") + len(m.group("tail"))
        head = text[start:m.start("tail")]
        last_word = re.findall(r"([A-Za-z][A-Za-z.]*)\.$", head)
        if last_word and last_word[0].lower().rstrip(".") in _ABBREVIATIONS:
            continue
        if re.search(r"\b[A-Z]\.$", head):  # an initial: "J. Smith"
            continue
        nepali = _NEPALI_ABBREVIATION.search(head)
        if nepali and nepali.group(1) in _NEPALI_ABBREVIATIONS:  # "वडा नं. ५" (ward no. 5)
            continue
        out.append(text[start:end].strip())
        start = m.end()
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return [s for s in out if s]


def _table_cells(line: str) -> list[str]:
    return [clean_markup(c) for c in line.strip().strip("|").split("|")]


def split_passage(text: str) -> list[Statement]:
    """Statements of a passage, in order, each with its heading."""
    statements: list[Statement] = []
    heading = ""
    header_cells: list[str] | None = None
    paragraph: list[str] = []
    block = 0
    last_kind = ""  # kind of the block being read ("" after a blank line or a heading)
    lead = ""  # the sentence before a list or table that introduces it

    def start(kind: str) -> None:
        """A new block begins when the kind of line changes or after a blank line."""
        nonlocal block, last_kind, lead
        if kind != last_kind:
            if kind in ("item", "row") and statements and statements[-1].block == block and \
                    statements[-1].kind == "sentence" and statements[-1].text.endswith(":"):
                lead = statements[-1].text
            elif kind in ("item", "row"):
                lead = ""
            block += 1
            last_kind = kind

    def flush() -> None:
        if paragraph:
            start("sentence")
            for sentence in _split_sentences(" ".join(paragraph)):
                cleaned = clean_markup(sentence)
                if _has_words(cleaned):
                    statements.append(Statement(cleaned, heading, "sentence", block))
            paragraph.clear()

    def blank() -> None:
        nonlocal last_kind
        flush()
        last_kind = ""

    lines = text.splitlines()
    for i, raw in enumerate(lines):
        line = raw.strip()
        if i == 0 and _is_breadcrumb(line, lines):
            heading = _heading_text(line.rsplit(" > ", 1)[-1])
            continue
        if not line:
            blank()
            header_cells = None
            continue
        if line.startswith("|"):
            flush()
            if _TABLE_RULE.match(line):
                continue
            cells = [c for c in _table_cells(line)]
            nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
            start("row")
            if header_cells is None and _TABLE_RULE.match(nxt):
                header_cells = cells
                continue
            row = _render_row(cells, header_cells)
            if _has_words(row):
                statements.append(Statement(row, heading, "row", block, lead=lead))
            continue
        if _HEADING.match(line):
            blank()
            heading = _heading_text(line.lstrip("#").strip().rstrip(":"))
            continue
        marker = _LIST_MARKER.match(line)
        if marker:
            flush()
            start("item")
            number = marker.group(0).strip()
            item = clean_markup(_LIST_MARKER.sub("", line, count=1))
            for n, sentence in enumerate(_split_sentences(item)):
                if _has_words(sentence):
                    step = number if n == 0 and number[:1].isdigit() else ""
                    statements.append(Statement(sentence, heading, "item", block, step, lead))
            continue
        paragraph.append(line)
    flush()
    return statements


_SECTION_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[A-Z]\.)\s+")


def _heading_text(line: str) -> str:
    """Heading without its section number: "2.1 Quantity" -> "Quantity" (2.1 is not a figure)."""
    return _SECTION_NUMBER.sub("", clean_markup(line.strip()))


def _is_breadcrumb(first: str, lines: list[str]) -> bool:
    """The chunker starts each chunk with its section path ("Title > 4. Level 2 > 4.1 Triggers")."""
    if " > " in first:
        return True
    return len(lines) > 1 and len(first) < 120 and not first.endswith((*_ENDS, ":", "|"))


def _render_row(cells: list[str], header: list[str] | None) -> str:
    """``Station: Devghat; Warning level (m): 7.5; Danger level (m): 8.4`` - each value with its
    column name, so a figure keeps its meaning when the row is quoted or checked on its own."""
    if not header or len(header) != len(cells):
        return ": ".join(c for c in cells if c and c != "-")
    parts = []
    for name, value in zip(header, cells):
        if not value or value == "-":
            continue
        parts.append(value if not name or name.lower() == value.lower() else f"{name}: {value}")
    return "; ".join(parts)


def _has_words(text: str) -> bool:
    """Two words or figures at least: English words of 2+ letters, Devanagari ones of 2+ characters."""
    return len(re.findall(rf"[A-Za-z]{{2,}}|\d|[{WORD_CHARS}]{{2,}}", text)) >= 2


def split_claims(answer: str) -> list[Claim]:
    """Claims of a model answer, with the passage numbers each one cites."""
    claims: list[Claim] = []
    for raw in answer.splitlines():
        if not raw.strip():
            continue
        marker_match = _LIST_MARKER.match(raw)
        marker = marker_match.group(0) if marker_match else ""
        body = raw[len(marker):].strip() if marker else raw.strip()
        if _HEADING.match(body) and not MARKER.search(body):
            body = body.lstrip("#").strip()
            if not body:
                continue
        pieces = _split_sentences(body)
        for n, piece in enumerate(pieces):
            cited = cited_numbers(piece)
            text = clean_markup(strip_citations(piece)).strip()
            if not text or not re.search(rf"[A-Za-z0-9{WORD_CHARS}]", text):
                if cited and claims:  # a marker on its own after the full stop belongs to the claim before
                    claims[-1].cited.extend(k for k in cited if k not in claims[-1].cited)
                continue
            claims.append(Claim(
                text=text,
                cited=cited,
                marker=marker if n == 0 else "",
                lead_in=text.endswith(":") or (n == 0 and len(pieces) == 1 and _looks_like_heading(text)),
                new_line=n == 0,
            ))
    return claims


def _looks_like_heading(text: str) -> bool:
    """'Evacuation triggers' - a short line without a full stop or a figure: a title, not a fact."""
    return len(text.split()) <= 4 and not text.endswith(_ENDS) and not re.search(r"\d", text)


def complete_prefix(text: str) -> int:
    """Length of the part of a growing answer whose claims are complete: up to the last
    line break, or to the end of the last sentence that another sentence already follows."""
    line_start = text.rfind("\n") + 1
    last = None
    for m in _SENTENCE_END.finditer(text, line_start):
        last = m
    return last.start("tail") + len(last.group("tail")) if last is not None else line_start


def render_claim(claim: Claim, cites: list[int], first: bool) -> str:
    """The text a verified claim adds to the answer (streamed piece by piece, so the
    concatenation of every piece is exactly the final answer)."""
    text = claim.text
    marks = format_citations(cites)
    if marks and not claim.lead_in:
        text = f"{text[:-1]} {marks}{text[-1]}" if text.endswith(_ENDS) else f"{text} {marks}"
    if first:
        return f"{claim.marker}{text}"
    return f"\n{claim.marker}{text}" if claim.new_line else f" {text}"
