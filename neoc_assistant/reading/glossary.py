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


class Glossary:
    def __init__(self, terms: dict[str, str]):
        self.terms = {k.lower(): v for k, v in terms.items()}
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
        if self._pattern is None:
            return text
        lowered = text.lower()

        def add(m: re.Match) -> str:
            options = self.alternatives(self.terms[m.group(1).lower()])
            if any(o in lowered for o in options):
                return m.group(0)
            return f"{m.group(0)} ({' '.join(options)})"

        return self._pattern.sub(add, text)

    def known_words(self) -> frozenset[str]:
        """Single-word terms: not unknown words, whatever the knowledge base says."""
        return frozenset(t for t in self.terms if " " not in t)


@lru_cache(maxsize=1)
def default_glossary() -> Glossary:
    return Glossary(load("glossary")["terms"])
