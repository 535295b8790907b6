"""The fixed texts people read - the notices around an answer and the UI's labels - in English or Nepali.

One home for each sentence: ``data/texts.toml``, a table per language (``en``, ``ne``) with an
``answer`` part (what the chain writes around an answer: not-found, busy, conflict, superseded...)
and a ``ui`` part (the browser UI's labels, buttons and messages). The code names a sentence by its
key and fills in its ``{fields}``; a document's own words never pass through here.

The two parts follow different languages, on purpose: an answer's notices are in *the question's*
language (``question_language``: a question mostly in Devanagari is read by an officer who reads
Nepali, whatever the UI shows), on every path - CLI, UI, ``/api/ask``, ``/v1``; the UI's texts are in
``serve.ui_language``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from neoc_assistant.language.devanagari import mostly_devanagari

Language = Literal["en", "ne"]
LANGUAGES: tuple[Language, ...] = ("en", "ne")

with open(Path(__file__).resolve().parent / "data" / "texts.toml", "rb") as _fh:
    TABLES: dict[str, dict[str, dict]] = tomllib.load(_fh)


def question_language(question: str) -> Language:
    """The language an answer's notices are written in: Nepali for a question mostly in Devanagari."""
    return "ne" if mostly_devanagari(question or "") else "en"


def _table(part: str, lang: str) -> dict:
    return TABLES[lang if lang in TABLES else "en"][part]


def answer_text(key: str, lang: str = "en", **fields) -> str:
    """A notice or lead line around an answer (``[<lang>.answer]``), its ``{fields}`` filled in."""
    text = _table("answer", lang)[key]
    return text.format(**fields) if fields else text


def ui_text(key: str, lang: str = "en", **fields) -> str:
    """A label, button or message of the UI (``[<lang>.ui]``), its ``{fields}`` filled in."""
    text = _table("ui", lang)[key]
    return text.format(**fields) if fields else text


def ui_list(key: str, lang: str = "en") -> list[str]:
    """A list of the UI (the example questions, the document table's column names)."""
    return list(_table("ui", lang)[key])


def every_language(part: str, key: str) -> set[str]:
    """The key's text in every language: what a handler recognises, whichever language showed it."""
    return {TABLES[lang][part][key] for lang in LANGUAGES}
