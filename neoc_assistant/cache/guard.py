"""The semantic-hit guard: may the answer cached for question A be served for question B?

Why a guard at all
------------------
Sentence embeddings place near-misses *closer* than many true paraphrases:
with all-MiniLM-L6-v2, "evacuation routes for ward 5" vs "... ward 6" scores
0.96 and "is isolation needed" vs "is isolation not needed" 0.99, while "who
approves full activation" vs "who authorises full activation" scores 0.84. No
cosine threshold separates them, so a similarity above the threshold only
nominates a candidate; this guard decides.

Design: strict by default, explained differences only
----------------------------------------------------
The guard does not look for a list of "dangerous" words. It reduces both
questions to comparable parts and refuses on **any** unexplained difference:

1. **Negation** - the number of negators (not, no, never, without, n't, ...)
   must match. (Refusal: ``negation``.)
2. **Numbers** - the multisets of numbers, ordinals (``first`` = ``1st``),
   times (``2 pm`` = ``14:00``) and codes (``ICS 215A``, ``category B``) must be
   equal. Ward 5/6, Level 1/2, magnitude 5.5/6.5, ICS 201/202, NEOC-F03/F07,
   NPR 200,000/2,000,000 all end here. (``number`` / ``form``.)
3. **Content words** - every other word that is not a function word is
   reduced to a canonical form, and the two multisets are compared. A word
   present in only one question is a difference *unless it is explained*:

   * **morphology** - inflections and ``-ation``/``-ate`` (``triggers``/
     ``trigger``, ``activation``/``activate``), British/American spelling,
     and derivations sharing a 6-letter stem with at most 3 extra letters
     (``registration``/``register``; ``manager``/``management`` stay apart);
   * **typos** - a token that is not a word (neither in the KB vocabulary nor
     in the embedding model's English vocabulary) within edit distance 1 (2
     for long words) of a *known* word in the other question; a known word
     only when it is an adjacent-letter swap of a KB word (``sings``/
     ``signs``). Two unknown tokens are never a typo of each other (they may
     be two places the KB never mentions), and a name is never reached by
     changing one letter (``Humla``/``Jumla``, ``Bara``/``Para``). Out-of-
     vocabulary tokens are also corrected *towards the KB vocabulary* before
     anything else (``activaton`` -> ``activation``, ``Katmandu`` ->
     ``Kathmandu``) under the same rules, never when two KB words are equally
     close, and a KB word is never "corrected";
   * **compounds** - ``re-order``/``reorder``, ``go bag``/``go-bag``;
   * **KB-derived equivalences** - acronyms verified against their
     definitions in the documents (``DHM`` = ``Department of Hydrology and
     Meteorology``), ``Level 2 - Partial Activation`` aliases;
   * **synonyms** - a small table of interchangeable words (``quake``/
     ``earthquake``, ``authorise``/``approve``, ``older``/``elderly``) that
     was grown only from paraphrases in the *dev* split of
     ``tests/data/cache_pairs.jsonl`` and checked against the near-misses;
   * **light words** - question framing that never changes the answer
     (``what``, ``do``, ``tell``, ``exactly``, ``include``...).

   Everything else - a different place, hazard, role, target group, time
   word, unit, antonym, question word (who vs when) or simply another noun
   (routes vs shelters, danger vs warning level) - is a refusal. Hand lists
   (hazards, groups, time words, antonyms) and KB-derived categories (names
   the KB always capitalises, ICS roles and forms, hazard terms from document
   titles) are used only to *label* the refusal for statistics; safety does
   not depend on their completeness, which is the point: an unknown place
   name or a new hazard is still an unexplained content word.
4. **Direction** - with the same words, a swapped relation (``district
   reports to province`` vs ``province reports to district``, ``from Level
   3 to Level 1``) is caught by comparing the objects of ``to``/``from``/
   ``than``/``by``/``into``. (``direction``.)

The price is recall on loose paraphrases ("who signs off on full activation"
vs "whose authorisation do we need for Level 1"), which miss and are answered
normally - a miss costs seconds, a wrong hit costs trust.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from neoc_assistant.cache.lexicon import KBLexicon
from neoc_assistant.language.words import (
    AMBIGUOUS_UNITS,
    AUXILIARIES,
    CODE_HEADS,
    DIRECTIONAL,
    EXPANSION_JOINERS,
    GROUP_WORDS,
    LIGHT,
    NEGATORS,
    PHRASES,
    QUESTION_STOPWORDS,
    SYNONYMS,
    TIME_UNITS,
    TIME_WORDS,
    UNITS,
    WH_SINGLE,
    is_antonym,
)
from neoc_assistant.language.normalize import (
    damerau_levenshtein,
    is_number,
    is_substitution,
    is_transposition,
    light_stem,
    strip_filler,
    tokenize,
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


@dataclass(frozen=True)
class Verdict:
    ok: bool
    category: str | None = None  # negation | number | form | antonym | name | hazard | ...
    detail: str = ""

    @property
    def reason(self) -> str | None:
        if self.ok:
            return None
        return f"{self.category}: {self.detail}" if self.detail else self.category


class Guard:
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
    def features(self, question: str) -> Features:
        caps = {w.lower() for w in re.findall(r"\b[A-Z][A-Z]+s?\b", question or "")}
        caps |= {w[:-1] for w in caps if w.endswith("s")}
        surface = [self.lex.correct(t) for t in strip_filler(tokenize(question))]
        text = self._embedding_text(surface, caps)

        # stems, then multi-word replacements (longest first)
        stems = [t if is_number(t) or not t.isalpha() else _stem(t) for t in surface]
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

        for idx, (item, word) in enumerate(items):
            nxt = items[idx + 1][0] if idx + 1 < len(items) else ""
            if item.startswith(("acr:", "wh:", "u:")) or item in ("level", "tier", "phase", "category"):
                canon = item
            elif is_number(item) or re.fullmatch(r"\d+[a-z]", item) or re.fullmatch(r"\d+(?:[.:]\d+)+", item):
                numbers.append(item)
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
        )

    # -- comparison -------------------------------------------------------------------------------------------
    def compare(self, cached: Features, incoming: Features) -> Verdict:
        a, b = cached, incoming
        if a.negations != b.negations:
            return Verdict(False, "negation", f"{a.negations} vs {b.negations} negations")
        if Counter(a.numbers) != Counter(b.numbers):
            only_a = sorted((Counter(a.numbers) - Counter(b.numbers)).elements())
            only_b = sorted((Counter(b.numbers) - Counter(a.numbers)).elements())
            ctx = {w for n, w in a.number_context + b.number_context if n in set(only_a) | set(only_b)}
            category = "form" if ctx & {"ics", "f", "form"} else "number"
            return Verdict(False, category, f"{only_a} vs {only_b}")

        if a.polar != b.polar:
            return Verdict(False, "question_type", "yes/no question vs open question")
        left_a = Counter(a.content) - Counter(b.content)
        left_b = Counter(b.content) - Counter(a.content)
        surf_a = _surface_map(a)
        surf_b = _surface_map(b)
        self._explain(left_a, left_b, surf_a, surf_b, a, b)
        rest_a = [w for w in left_a.elements() if w not in LIGHT]
        rest_b = [w for w in left_b.elements() if w not in LIGHT]
        if rest_a or rest_b:
            category = self._categorise(rest_a, rest_b)
            return Verdict(False, category, f"{rest_a} vs {rest_b}")

        swap = relation_swap(a, b)
        if swap:
            return Verdict(False, "direction", swap)
        return Verdict(True)

    def _explain(self, left_a: Counter, left_b: Counter, surf_a: dict, surf_b: dict, a: Features, b: Features) -> None:
        # compounds: "reorder" vs "re order", "gobag" vs "go bag"
        for left, other_feat, other_left in ((left_a, b, left_b), (left_b, a, left_a)):
            seq = list(other_feat.surface)
            joined = {seq[i] + seq[i + 1]: (other_feat.content[i], other_feat.content[i + 1]) for i in range(len(seq) - 1)}
            surf = surf_a if left is left_a else surf_b
            for w in list(left.elements()):
                s = surf.get(w, w)
                if s in joined:
                    left[w] -= 1
                    for part in joined[s]:
                        if other_left[part] > 0:
                            other_left[part] -= 1
            _prune(left)
            _prune(other_left)
        # morphology beyond the stemmer: a shared 6-letter stem, at most 3 extra letters each
        for x in list(left_a.elements()):
            for y in list(left_b.elements()):
                if left_a[x] <= 0 or left_b[y] <= 0 or is_antonym(x, y):
                    continue
                if ":" in x or ":" in y:
                    continue
                common = _common_prefix(x, y)
                if common >= 6 and len(x) - common <= 3 and len(y) - common <= 3:
                    left_a[x] -= 1
                    left_b[y] -= 1
        _prune(left_a)
        _prune(left_b)
        # typos
        for left, surf, other, other_left, other_surf in (
            (left_a, surf_a, b, left_b, surf_b),
            (left_b, surf_b, a, left_a, surf_a),
        ):
            for w in list(left.elements()):
                if left[w] <= 0 or ":" in w:
                    continue
                s = surf.get(w, w)
                match = self._typo_partner(s, other)
                if match is None:
                    continue
                left[w] -= 1
                for canon, srf in other_surf.items():
                    if srf == match and other_left[canon] > 0:
                        other_left[canon] -= 1
                        break
            _prune(left)
            _prune(other_left)

    def _typo_partner(self, word: str, other: Features) -> str | None:
        if not word.isalpha() or len(word) < 3:
            return None
        word_known = self.lex.known(word)
        limit = 2 if len(word) >= 8 else 1
        for cand in other.words:
            if not cand.isalpha() or cand == word or len(cand) < 3:
                continue
            if is_antonym(_stem(word), _stem(cand)):
                continue
            cand_known = self.lex.known(cand)
            if not word_known and not cand_known:
                continue  # two unknown words (names the KB never mentions?) - may be two places
            if (word in self.lex.names or cand in self.lex.names) and is_substitution(word, cand):
                continue  # Humla/Jumla: names differing by a letter are different names
            if not word_known or not cand_known:
                if damerau_levenshtein(word, cand, limit) <= limit:
                    return cand
            elif is_transposition(word, cand) and (self.lex.in_kb(word) != self.lex.in_kb(cand)):
                return cand
        return None

    def _categorise(self, rest_a: list[str], rest_b: list[str]) -> str:
        for x in rest_a:
            for y in rest_b:
                if is_antonym(x, y):
                    return "antonym"
        words = rest_a + rest_b
        lex = self.lex
        checks = [
            ("hazard", lambda w: w in lex.hazards or _unstem_in(w, lex.hazards)),
            ("date_time", lambda w: w in TIME_WORDS or _unstem_in(w, TIME_WORDS)),
            ("target_group", lambda w: w in GROUP_WORDS or _unstem_in(w, GROUP_WORDS)),
            ("name", lambda w: w.startswith("acr:") or w in lex.names or _unstem_in(w, lex.names)),
            ("unit", lambda w: w.startswith("u:")),
            ("role", lambda w: w in lex.roles or _unstem_in(w, lex.roles)),
            ("question_type", lambda w: w.startswith("wh:")),
        ]
        for category, test in checks:
            if any(test(w) for w in words):
                return category
        if any(w.isalpha() and not lex.known(w) and not _unstem_in(w, lex.vocab) for w in words):
            return "unknown_word"
        return "term"


def _stem(word: str) -> str:
    return light_stem(word)


def _surface_map(f: Features) -> dict[str, str]:
    out: dict[str, str] = {}
    for canon, srf in zip(f.content, f.surface):
        out.setdefault(canon, srf)
    return out


def _prune(counter: Counter) -> None:
    for k in [k for k, v in counter.items() if v <= 0]:
        del counter[k]


def _common_prefix(x: str, y: str) -> int:
    n = 0
    for cx, cy in zip(x, y):
        if cx != cy:
            break
        n += 1
    return n


def _unstem_in(stem: str, vocabulary: set[str]) -> bool:
    return any(light_stem(v) == stem for v in vocabulary if v[:3] == stem[:3])


def relation_swap(a: Features, b: Features) -> str:
    preps = {p for p, _ in a.relations} & {p for p, _ in b.relations}
    for p in sorted(preps):
        objs_a = {o for q, o in a.relations if q == p}
        objs_b = {o for q, o in b.relations if q == p}
        only_a = objs_a - objs_b
        only_b = objs_b - objs_a
        for x in only_a:
            for y in only_b:
                if x != y and _present(x, b) and _present(y, a):
                    return f"'{p} {x}' vs '{p} {y}'"
    return ""


def _present(obj: str, f: Features) -> bool:
    return obj in f.items
