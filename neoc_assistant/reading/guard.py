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
   (hazards, groups, time words, antonyms: ``language/data/*.toml``, like every
   word list above) and KB-derived categories (names
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

How a question is reduced to those parts: ``question_features.py``; this
module compares two reductions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from neoc_assistant.reading.question_features import Features, QuestionReader
from neoc_assistant.language.normalize import damerau_levenshtein, is_substitution, is_transposition, light_stem
from neoc_assistant.language import wordnet
from neoc_assistant.language.words import GROUP_WORDS, LIGHT, PARTICLES, TIME_WORDS, is_antonym


@dataclass(frozen=True)
class Verdict:
    ok: bool
    category: str | None = None  # negation | number | form | antonym | name | hazard | ...
    detail: str = ""
    needs_evidence: bool = False  # ok only through WordNet relations: the cache must corroborate it

    @property
    def reason(self) -> str | None:
        if self.ok:
            return None
        return f"{self.category}: {self.detail}" if self.detail else self.category


class Guard(QuestionReader):
    """Reads questions (``QuestionReader``) and decides whether two readings ask the same thing."""

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
        relaxed = ""
        if rest_a or rest_b:
            category = self._categorise(rest_a, rest_b)
            relaxed = self._relaxed(category, rest_a, rest_b, surf_a, surf_b) or self._context_only(
                category, rest_a, rest_b, a, b
            )
            if not relaxed:
                return Verdict(False, category, f"{rest_a} vs {rest_b}")

        swap = relation_swap(a, b) or order_swap(a, b)
        if swap:
            return Verdict(False, "direction", swap)
        if relaxed:
            return Verdict(True, "related_words", relaxed, needs_evidence=True)
        return Verdict(True)

    def _relaxed(self, category: str, rest_a: list[str], rest_b: list[str], surf_a: dict, surf_b: dict) -> str:
        """A relaxed explanation for the remaining words, or "".

        Plain terms may pair up through any WordNet relation ``_related`` accepts. A word the KB
        always capitalises ("Procedure" in a document title) or a listed target group ("family")
        is labelled ``name``/``target_group`` although it may be ordinary English; such words may
        pair up only as WordNet *synonyms* ("procedure"/"process", "family"/"household") and only
        when every word is ordinary lower-case English - never an acronym or a place name, which
        WordNet does not list as common words ("Humla"/"Jumla" stay apart)."""
        if category in ("term", "unknown_word"):
            return self._related(rest_a, rest_b, surf_a, surf_b)
        if category in ("name", "target_group"):
            words = [surf_a.get(w, w) for w in rest_a] + [surf_b.get(w, w) for w in rest_b]
            if all(":" not in w for w in rest_a + rest_b) and all(wordnet.common_word(w) for w in words):
                return self._related(rest_a, rest_b, surf_a, surf_b, kinds=("synonym",))
        return ""

    @staticmethod
    def _context_only(category: str, rest_a: list[str], rest_b: list[str], a: Features, b: Features) -> str:
        """A relaxed explanation when every remaining word stands in a statement around one question
        and in nothing else of it ("Good evening, shelter team here. How many ...?"), or "".

        Courtesy outruns any list of discourse acts, but a statement can also be context that
        changes the answer ("The road is blocked. Which route ...?"), so only plain terms qualify
        (no number, negation, name, place, hazard, role, time or group word: those were compared
        or categorised before this) and the match ``needs_evidence`` like a WordNet one."""
        if category not in ("term", "unknown_word"):
            return ""
        for rest, feat in ((rest_a, a), (rest_b, b)):
            if Counter(rest) - Counter(feat.context):
                return ""
        return "context: " + " ".join(rest_a + rest_b)

    @staticmethod
    def _related(rest_a: list[str], rest_b: list[str], surf_a: dict, surf_b: dict,
                 kinds: tuple[str, ...] = ("synonym", "broader")) -> str:
        """Pair every remaining word of one question with a word of the other that WordNet relates
        (same common sense, or one is the other's direct hypernym: "procedure"/"process",
        "warn"/"alert"); "" unless all pair up. Such a match is only a candidate - ``needs_evidence``:
        WordNet knows English senses, not what this knowledge base means by a word."""
        if len(rest_a) != len(rest_b) or not rest_a:
            return ""
        pairs = []
        left = list(rest_b)
        for x in rest_a:
            sx = surf_a.get(x, x)
            partner = next((y for y in left if wordnet.relation(sx, surf_b.get(y, y)) in kinds), None)
            if partner is None:
                return ""
            left.remove(partner)
            pairs.append(f"{sx}~{surf_b.get(partner, partner)}")
        return ", ".join(pairs)

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
            if is_antonym(light_stem(word), light_stem(cand)):
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


def order_swap(a: Features, b: Features) -> str:
    """Same words, swapped roles: "the landline is up but the radio is down" vs "the radio is up
    but the landline is down", "does the Chief call the PIO" vs "does the PIO call the Chief".

    Who or what a state word or verb attaches to is read from word order. Around each pivot - a
    particle ("up", "above") or a word WordNet knows as a verb or adjective, said as often in
    both questions - the words before and after it are compared. A swap moves one word from
    before the pivot to after it *and* another the other way; moving one phrase to the front or
    the back ("At Level 1, how many ...?" vs "How many ... at Level 1?") moves words in one
    direction only, so reordering is still allowed. Question words are left out (they move
    freely between the two ends); a word said twice is told apart by its occurrence.
    """
    seq_a, seq_b = _occurrences(a.order), _occurrences(b.order)
    common = {w for w, _ in seq_a} & {w for w, _ in seq_b}
    if len(common) < 3:
        return ""
    pos_a = {w: i for i, (w, _) in enumerate(seq_a) if w in common}
    pos_b = {w: i for i, (w, _) in enumerate(seq_b) if w in common}
    for pivot, surface in seq_a:
        if pivot not in common or not (surface in PARTICLES or wordnet.predicate_word(surface)):
            continue
        before_a = {w for w in common if pos_a[w] < pos_a[pivot]}
        before_b = {w for w in common if pos_b[w] < pos_b[pivot]}
        went_after, came_before = before_a - before_b, before_b - before_a
        if went_after and came_before:
            return f"'{min(went_after)}' and '{min(came_before)}' swap around '{surface}'"
    return ""


def _occurrences(order: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """("call", "call"), ("down", ..), ("call", ..) -> "call#1", "down#1", "call#2"; question words dropped."""
    seen: Counter = Counter()
    out = []
    for canon, surface in order:
        if canon.startswith("wh:"):
            continue
        seen[canon] += 1
        out.append((f"{canon}#{seen[canon]}", surface))
    return out
