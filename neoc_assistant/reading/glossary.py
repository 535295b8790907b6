"""The centre's own words: what an officer types ("khola", "DEOC", "distro") read with the words the
documents use ("stream river", "District EOC", "distribution").

Why: the documents are written in formal English, officers talk in Nepali-English EOC shorthand. A
word the knowledge base never uses made the whole question "not found" ("Nothing about 'khola'")
and pulled retrieval towards nothing. The glossary is data (``language/data/glossary.toml``); the
question is *read* with the expansions written in after each term - "a small khola (stream river)" -
while the officer's own wording is what is shown and cached.
"""

from __future__ import annotations

import re
from functools import lru_cache

from neoc_assistant.language.words import load


# a form number said bare: "the 204s", "the 215As", "the 221?" - not "ICS 204" (already said), not "the 250 people"
_BARE_FORM = re.compile(r"(?<![\w-])(?<!ICS )(?<!ICS-)(?:(?P<plural>(?P<n1>\d{3})(?P<l1>[A-Za-z]?)s)"
                        r"|(?<=\bthe )(?P<n2>\d{3})(?P<l2>[A-Za-z]?)(?=\s*(?:[?,.;:!)]|$|\s(?:form|forms|for|from|to|"
                        r"and|or|at|in|on|is|are|was|get|gets|go|goes|has|have|that|with|by|when|before|after)\b)))"
                        r"(?![\w-])", re.IGNORECASE)


class Glossary:
    def __init__(self, terms: dict[str, str], forms: dict | None = None):
        self.terms = {k.lower(): v for k, v in terms.items()}
        self.form_prefix = (forms or {}).get("prefix", "")
        self.form_numbers = frozenset(int(n) for n in (forms or {}).get("numbers", ()))
        # longest first, so "sat phone" is read before "sat"; whole words only
        alternatives = sorted(self.terms, key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<![\w-])(" + "|".join(re.escape(t) for t in alternatives) + r")(?![\w-])", re.IGNORECASE
        ) if alternatives else None

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.terms

    def found(self, text: str) -> list[tuple[str, str]]:
        """(term as written, what it means) for each glossary term in ``text``, in order, once each."""
        if self._pattern is None:
            return []
        out: list[tuple[str, str]] = []
        seen: set[str] = set()
        for m in self._pattern.finditer(text):
            key = m.group(1).lower()
            if key not in seen:
                seen.add(key)
                out.append((m.group(1), self.terms[key]))
        return out

    @staticmethod
    def alternatives(meaning: str) -> list[str]:
        """ "stream | river" -> ["stream", "river"]: the documents may write any one of them."""
        return [a.strip() for a in meaning.split("|") if a.strip()]

    def gloss(self, text: str) -> str:
        """``text`` with each term's meaning written in after it, unless the text already says it."""
        text = self._forms(text)
        if self._pattern is None:
            return text
        lowered = text.lower()

        def add(m: re.Match) -> str:
            options = self.alternatives(self.terms[m.group(1).lower()])
            if any(o in lowered for o in options):
                return m.group(0)
            return f"{m.group(0)} ({' '.join(options)})"

        return self._pattern.sub(add, text)

    def _forms(self, text: str) -> str:
        """"who signs off the 204s?" -> "who signs off the 204s (ICS 204)?": the documents name forms with
        their prefix, so a bare number finds nothing (and looks like a count to the reader)."""
        if not self.form_numbers:
            return text

        def add(m: re.Match) -> str:
            number, letter = (m.group("n1"), m.group("l1")) if m.group("plural") else (m.group("n2"), m.group("l2"))
            if int(number) not in self.form_numbers:
                return m.group(0)
            return f"{m.group(0)} ({self.form_prefix} {number}{letter.upper()})"

        return _BARE_FORM.sub(add, text)

    def known_words(self) -> frozenset[str]:
        """Single-word terms: not unknown words, whatever the knowledge base says."""
        return frozenset(t for t in self.terms if " " not in t)


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    data = load("glossary")
    return Glossary(data["terms"], data.get("forms"))
