"""A language model as the reader: it picks which of the composed extracts answers, or none.

Why a choice and not an answer: the small models installable here read well and write badly - on
the KB held-out set Qwen2.5-Coder-1.5B wrote "the documents do not contain this information" for
22 of 28 answerable questions whose passage was in its prompt, and verification removed most of
what it did write. Choosing among lettered extracts uses what it does well. Its output is
constrained by a llama.cpp grammar to letters it was offered (``none`` included), so it cannot
invent text; what it picks is quoted verbatim, and any output that is not a valid choice (a server
that ignores grammars, a cut-off stream) leaves the rule-based composition as the answer.
"""

from __future__ import annotations

import string
import threading
from dataclasses import dataclass

from neoc_assistant.compose.extracts import Extract, ExtractScorer
from neoc_assistant.compose.quotes import extract_text
from neoc_assistant.generate.backend import GenerationBackend

READER_PROMPT_VERSION = "reader-v1"
_SYSTEM = (
    "You help duty officers of an Emergency Operations Centre. You are shown a question and lettered "
    "extracts from the centre's documents. Pick the extract that answers the question. If two extracts "
    "are both needed, give both letters separated by a comma. If no extract answers the question, "
    "reply none. Reply with the letters or none only."
)


@dataclass
class Choice:
    picked: list[Extract] | None  # None: no valid choice (use the rules'); []: the model said none
    offered: list[Extract]
    raw: str = ""
    stats: dict | None = None


def offered_extracts(scorer: ExtractScorer, candidates: list[Extract], limit: int) -> list[Extract]:
    """The best ``limit`` candidates that do not overlap one another (the model sees distinct text)."""
    out: list[Extract] = []
    for cand in candidates:
        if len(out) >= limit:
            break
        if any(cand.overlaps(o) for o in out):
            continue
        out.append(cand)
    return out


def grammar_for(n: int) -> str:
    letters = "".join(string.ascii_uppercase[:n])
    return f'root ::= "none" | L | L "," L\nL ::= [{letters}]\n'


def messages_for(question: str, scorer: ExtractScorer, offered: list[Extract]) -> list[dict]:
    lines = [f"Question: {question.strip()}", "", "Extracts:"]
    for letter, extract in zip(string.ascii_uppercase, offered):
        text = " ".join(extract_text(extract, scorer.views[extract.passage]).split())
        lines.append(f"{letter}) {text}")
    lines += ["", "Which extract answers the question? Reply with the letter(s), or none."]
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def parse_choice(text: str, offered: list[Extract]) -> list[Extract] | None:
    raw = text.strip().strip(".").lower()
    if raw == "none":
        return []
    letters = [p.strip().upper() for p in raw.split(",")]
    index = {letter: i for i, letter in enumerate(string.ascii_uppercase[: len(offered)])}
    if not letters or any(letter not in index for letter in letters):
        return None
    return [offered[index[letter]] for letter in dict.fromkeys(letters)]


class ModelChooser:
    def __init__(self, engine: GenerationBackend, offered: int = 5):
        self.engine = engine
        self.offered = offered

    def choose(self, question: str, scorer: ExtractScorer, candidates: list[Extract],
               cancel: threading.Event | None = None) -> Choice:
        offered = offered_extracts(scorer, candidates, self.offered)
        if len(offered) < 2:
            return Choice(None, offered)
        self.engine.load()
        stream = self.engine.stream(messages_for(question, scorer, offered), max_tokens=6, cancel=cancel,
                                    grammar=grammar_for(len(offered)))
        with stream:
            raw = "".join(stream)
        stats = dict(stream.stats)
        return Choice(parse_choice(raw, offered), offered, raw, stats)
