"""How a question is read for comparison: the parts of it that decide what the answer is.

``QuestionReader.features`` reduces a question to comparable parts - numbers
and codes, negations, canonical content words, the objects of directional
words - after typo correction towards the knowledge base's own words, with
acronyms, aliases, synonyms and multi-word phrases put in canonical form (see
``guard.py`` for why each part exists). It also gives the text that is
embedded: filler-free, typo-corrected, with acronyms written out. The cache
guard compares two readings; the answerability check reads the question the
same way, so both stages agree on what a question names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neoc_assistant.reading.lexicon import KBLexicon
from neoc_assistant.language.discourse import edge_statements, question_tokens
from neoc_assistant.language.devanagari import is_word
from neoc_assistant.language.normalize import is_number, light_stem
from neoc_assistant.language.words import (
    AMBIGUOUS_UNITS,
    AUXILIARIES,
    CODE_HEADS,
    DIRECTIONAL,
    EXPANSION_JOINERS,
    NEGATORS,
    PARTICLES,
    PHRASES,
    QUESTION_STOPWORDS,
    SYNONYMS,
    TIME_UNITS,
    UNITS,
    WH_SINGLE,
)


@dataclass(frozen=True)
class Features:
    """A question reduced for comparison (computed once per cached question)."""

    text: str  # typo-corrected, filler-free text: what gets embedded
    numbers: tuple[str, ...]
    negations: int
    content: tuple[str, ...]  # canonical content tokens, in order
    surface: tuple[str, ...]  # the surface word behind each content token
    words: frozenset[str]  # every surface token (typo candidates)
    relations: tuple[tuple[str, str], ...]  # (directional preposition, its object)
    items: frozenset[str]  # content + numbers + "head:number" combos + "<end>"
    polar: bool = False  # a yes/no question ("Is the Koshi at danger level?")
    number_context: tuple[tuple[str, str], ...] = ()  # (number, preceding word)
    order: tuple[tuple[str, str], ...] = ()  # (canonical, surface) of content, numbers, particles, in order
    context: tuple[str, ...] = ()  # content tokens of the statements around the question (discourse.edge_statements)


class QuestionReader:
    def __init__(self, lexicon: KBLexicon | None = None):
        self.lex = lexicon or KBLexicon()
        self._phrases = self._build_phrases()
        self._max_phrase = max((len(k) for k in self._phrases), default=1)

    # -- phrase table ----------------------------------------------------------------------------------
    def _build_phrases(self) -> dict[tuple[str, ...], list[str]]:
        table: dict[tuple[str, ...], list[str]] = {}
        for words, repl in PHRASES:
            table[tuple(_stem(w) for w in words.split())] = [r if ":" in r else _stem(r) for r in repl]
        for acr, expansion in self.lex.acronyms.items():
            key = tuple(_stem(w) for w in expansion)
            if len(key) >= 2:
                table.setdefault(key, [f"acr:{acr}"])
                content_only = tuple(_stem(w) for w in expansion if w not in EXPANSION_JOINERS)
                if len(content_only) >= 2:
                    table.setdefault(content_only, [f"acr:{acr}"])
        for name, target in self.lex.aliases:
            table.setdefault(tuple(_stem(w) for w in name), list(target))
        return table

    # -- embedding text ------------------------------------------------------------------------------------
    def _embedding_text(self, surface: list[str], caps: set[str]) -> str:
        """The text that is embedded: filler-free and typo-corrected, with KB acronyms and
        aliases written out in both forms, so "DHM" and "Department of Hydrology and
        Meteorology" (or "Level 2" and "Partial Activation") embed alike. The embedding
        model knows the long forms far better, which also helps retrieval reuse the vector."""
        expansions = self._expansions
        out: list[str] = []
        i = 0
        while i < len(surface):
            tok = surface[i]
            matched = False
            for phrase, acr, words in expansions:
                n = len(phrase)
                if tuple(surface[i : i + n]) == phrase:
                    if not out or out[-1] != acr:
                        out.append(acr)
                    out.extend(words)
                    i += n
                    matched = True
                    break
            if matched:
                continue
            if tok not in self.lex.acronyms and tok.endswith("s") and tok[:-1] in self.lex.acronyms and tok in caps:
                tok = tok[:-1]  # "ORPs"
            if tok in self.lex.acronyms and (tok in caps or tok not in self.lex.common):
                expansion = self.lex.acronyms[tok]
                if tuple(out[-len(expansion) :]) == expansion:  # "... Centre (NEOC)": already written out
                    i += 1
                    continue
                out.append(tok)
                nxt = surface[i + 1 : i + 1 + len(self.lex.acronyms[tok])]
                if tuple(nxt) != self.lex.acronyms[tok]:
                    out.extend(self.lex.acronyms[tok])
                i += 1
                continue
            if tok in self._alias_heads and i + 1 < len(surface):
                name = self._alias_heads[tok].get(surface[i + 1])
                if name is not None:
                    out.extend([tok, surface[i + 1], *name])
                    i += 2 + (len(name) if tuple(surface[i + 2 : i + 2 + len(name)]) == name else 0)
                    continue
            out.append(tok)
            i += 1
        return " ".join(out)

    @property
    def _expansions(self) -> list[tuple[tuple[str, ...], str, tuple[str, ...]]]:
        cached = getattr(self, "_expansions_cache", None)
        if cached is None:
            cached = []
            for acr, expansion in self.lex.acronyms.items():
                cached.append((tuple(expansion), acr, tuple(expansion)))
            for name, (head, number) in self.lex.aliases:
                cached.append((tuple(name), head, (number, *name)))
            cached.sort(key=lambda item: -len(item[0]))
            self._expansions_cache = cached
        return cached

    @property
    def _alias_heads(self) -> dict[str, dict[str, tuple[str, ...]]]:
        cached = getattr(self, "_alias_heads_cache", None)
        if cached is None:
            cached = {}
            for name, (head, number) in self.lex.aliases:
                cached.setdefault(head, {})[number] = tuple(name)
            self._alias_heads_cache = cached
        return cached

    # -- features -----------------------------------------------------------------------------------------
    def features(self, question: str, *, with_context: bool = True) -> Features:
        caps = {w.lower() for w in re.findall(r"\b[A-Z][A-Z]+s?\b", question or "")}
        caps |= {w[:-1] for w in caps if w.endswith("s")}
        surface = [self.lex.correct(t) for t in question_tokens(question)]
        text = self._embedding_text(surface, caps)

        # stems, then multi-word replacements (longest first)
        stems = [t if is_number(t) or not is_word(t) else _stem(t) for t in surface]
        items: list[tuple[str, str]] = []  # (canonical item, surface)
        i = 0
        while i < len(stems):
            matched = False
            for n in range(min(self._max_phrase, len(stems) - i), 1, -1):
                key = tuple(stems[i : i + n])
                repl = self._phrases.get(key)
                if repl is not None:
                    # "how many hours" is "how long"
                    if repl == ["wh:howmany"] and i + n < len(surface) and surface[i + n] in TIME_UNITS:
                        items.append(("wh:howlong", " ".join(surface[i : i + n + 1])))
                        i += n + 1
                    else:
                        for r in repl:
                            items.append((r, " ".join(surface[i : i + n])))
                        i += n
                    matched = True
                    break
            if not matched:
                items.append((stems[i], surface[i]))
                i += 1

        numbers: list[str] = []
        number_context: list[tuple[str, str]] = []
        negations = 0
        content: list[str] = []
        surf: list[str] = []
        relations: list[tuple[str, str]] = []
        combos: set[str] = set()
        pending_preps: list[str] = []
        prev_word = ""
        prev_canon = ""

        def attach(obj: str) -> None:
            for p in pending_preps:
                relations.append((p, obj))
            pending_preps.clear()

        order: list[tuple[str, str]] = []
        for idx, (item, word) in enumerate(items):
            nxt = items[idx + 1][0] if idx + 1 < len(items) else ""
            if word in PARTICLES:
                order.append((word, word))
            if item.startswith(("acr:", "wh:", "u:")) or item in ("level", "tier", "phase", "category"):
                canon = item
            elif is_number(item) or re.fullmatch(r"\d+[a-z]", item) or re.fullmatch(r"\d+(?:[.:]\d+)+", item):
                numbers.append(item)
                order.append((item, word))
                number_context.append((item, prev_word))
                if prev_canon:
                    combos.add(f"{prev_canon}:{item}")
                if pending_preps:
                    attach(item)
                prev_word, prev_canon = word, ""
                continue
            elif len(word) == 1 and word.isalpha() and prev_word in CODE_HEADS and word not in ("i",):
                code = f"code:{word}"
                numbers.append(code)
                number_context.append((code, prev_word))
                prev_word, prev_canon = word, ""
                continue
            elif word in NEGATORS:
                negations += 1
                prev_word, prev_canon = word, ""
                continue
            elif word in UNITS and (word not in ("second", "seconds") or (prev_word and is_number(prev_word))):
                canon = UNITS[word]
            elif word in AMBIGUOUS_UNITS and prev_word and is_number(prev_word):
                canon = AMBIGUOUS_UNITS[word]
            elif word in WH_SINGLE:
                canon = WH_SINGLE[word]
            elif word in DIRECTIONAL:
                pending_preps.append(word)
                prev_word, prev_canon = word, ""
                continue
            elif word in QUESTION_STOPWORDS or word in ("not",):
                prev_word = word
                continue
            elif word == "duties":  # not "duty" - that is the Duty Officer
                canon = SYNONYMS[light_stem("role")]
            else:
                canon = SYNONYMS.get(item, item)
                if not canon.startswith("acr:") and item in self.lex.acronyms and (
                    item in caps or item not in self.lex.common
                ):
                    canon = f"acr:{item}"
            content.append(canon)
            if word not in PARTICLES:
                order.append((canon, word))
            surf.append(word)
            if pending_preps:
                # object = the head plus a directly following number ("level 3")
                obj = canon
                if nxt and is_number(nxt):
                    obj = f"{canon}:{nxt}"
                attach(obj)
            prev_word, prev_canon = word, canon
        if pending_preps:
            attach("<end>")

        all_items = set(content) | set(numbers) | combos | {"<end>"}
        polar = bool(surface) and surface[0] in AUXILIARIES and not any(c.startswith("wh:") for c in content)
        return Features(
            text=text,
            numbers=tuple(numbers),
            negations=negations,
            content=tuple(content),
            surface=tuple(surf),
            words=frozenset(surface),
            relations=tuple(relations),
            items=frozenset(all_items),
            number_context=tuple(number_context),
            polar=polar,
            order=tuple(order),
            context=self._context(question) if with_context else (),
        )

    def _context(self, question: str) -> tuple[str, ...]:
        statements = edge_statements(question)
        return self.features(statements, with_context=False).content if statements else ()

    # -- comparison -------------------------------------------------------------------------------------------


def _stem(word: str) -> str:
    return light_stem(word)
