"""Do the passages answer *this* question, or only its topic?

The relevance floor measures topic: a passage about shelters is on-topic for
"shelter capacity in Gorkha district" even if no document names Gorkha. A
small model then happily answers with another place's figure. So before the
model is asked, the question's **specific constraints** must be covered by the
passages:

- **names** - places, organisations, people, named plans: words the knowledge
  base always capitalises (``lexicon.names``), and words the knowledge base
  never uses that are written like a name (capitalised) or used like a place
  ("in gorkha", "gorkha district"). Only the clause that asks counts: in
  "120 kits approved for Bardiya. What form do we send?" and "Planning the
  IRA in Dolakha hills - how many wards can a team do in a day?" the place is
  background, not a condition of the answer. Any other unknown word ("khola",
  "distro") is no veto: the centre's glossary (``reading/glossary.py``)
  explains many, and the reader weighs the rest with the whole question
  (``compose/reader.py``: one unknown word lowers the coverage, it does not
  decide it);
- **identifiers** - years and editions (``2031 edition``), numbers that
  name something (``ward 5``, ``Level 2``, ``ICS 215``, ``phase 3``) and
  form codes (``215A``);
- what is asked for (a phone number, a figure, a time) is the reader's check,
  on the extract it shows (``reading/asks.py``, ``compose/reader.py``).

Quantities of the officer's own situation ("300 people") are not
constraints: they are inputs. The reading of the question is the response
cache guard's (``Guard.features``: typo correction towards KB words, number
contexts, acronyms), so both stages agree on what a question names.

An uncovered constraint means "not found", with the nearest sources and the
part that was not found ("nothing about 'Gorkha' in the documents").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from neoc_assistant.reading.asks import asking_clause, measured_words
from neoc_assistant.reading.guard import Guard
from neoc_assistant.language.normalize import light_stem, tokenize
from neoc_assistant.language.texts import answer_text
from neoc_assistant.language.words import CODE_HEADS, QUESTION_STOPWORDS

_YEAR = re.compile(r"^(19|20)\d\d$")
_IDENTIFYING_HEADS = CODE_HEADS | {
    "ics", "edition", "version", "rev", "revision", "no", "number", "district", "province", "route",
    "unit", "station", "camp", "site", "shelter", "area", "region", "municipality", "road", "highway",
}
@dataclass
class Answerability:
    answerable: bool
    missing: list[str] = field(default_factory=list)  # the constraints no passage covers, as the officer wrote them

    @property
    def message(self) -> str:
        return self.message_in("en")

    def message_in(self, lang: str) -> str:
        """The not-found notice in ``lang`` (the question's language), the constraints as the officer wrote them."""
        if self.answerable:
            return ""
        parts = [m if m.startswith(("a ", "an ")) else f"'{m}'" for m in self.missing]
        return answer_text("nothing_about", lang, names=answer_text("or", lang).join(parts))


def constraints(question: str, guard: Guard, known: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """(names, identifiers) the asking clause specifies; ``known``: words that are never unknown
    (the glossary's terms)."""
    lex = guard.lex
    clause = asking_clause(question)
    asking = set(guard.features(clause).surface)
    features = guard.features(question)
    caps = {w.lower() for w in re.findall(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-zA-Z]+", clause.strip())}
    names: list[str] = []
    for word in features.surface:
        if not word.isalpha() or len(word) < 3 or word in QUESTION_STOPWORDS or word in lex.acronyms or word in names:
            continue
        if word in known or word not in asking:
            continue
        if word in lex.names and (word in caps or not lex.common_or_english(word)):
            # a place/agency/person the KB names: the passages must name it too. An English word the
            # documents happen to capitalise ("Finance/Admin Section", "IAP Packet") is a name only if
            # the officer wrote it as one
            names.append(word)
        elif not lex.in_kb(word) and (word in caps or _placed(clause, word)) and (
            word in caps or not lex.common_or_english(word)
        ):
            names.append(word)  # written like a name, and no document uses it: "Gorkha", "Cox's Bazar"
    for word in measured_words(question):
        if len(word) > 3 and word not in known and word not in names and not lex.in_kb(word) \
                and not lex.in_kb(light_stem(word)) and word not in lex.acronyms:  # "cars": the guide says "car"
            names.append(word)  # the thing counted or measured, and no document uses the word: "leptospirosis cases"
    identifiers: list[str] = []
    for number, head in guard.features(clause).number_context:
        if number.startswith("code:"):
            identifiers.append(f"{head} {number[5:]}")
        elif _YEAR.match(number) or re.fullmatch(r"\d+[a-z]", number) or head in _IDENTIFYING_HEADS:
            identifiers.append(f"{head} {number}" if head and head not in QUESTION_STOPWORDS else number)
    return names, identifiers


def _placed(question: str, word: str) -> bool:
    """Used like a place: after in/at/from/for, or before district/province/village/..."""
    pattern = (rf"\b(?:in|at|from|for|of|near)\s+{re.escape(word)}\b"
               rf"|\b{re.escape(word)}\s+(?:district|province|municipality|village|ward|county|city|state|valley|camp)\b")
    return re.search(pattern, question, re.IGNORECASE) is not None


def check_answerable(question: str, passages: list[str], guard: Guard,
                     known: frozenset[str] = frozenset()) -> Answerability:
    names, identifiers = constraints(question, guard, known)
    text = "\n".join(passages)
    tokens = set(tokenize(text))
    acronyms = guard.lex.acronyms
    missing: list[str] = []
    for name in names:
        if name in tokens:
            continue
        expansion = acronyms.get(name)
        if expansion and all(w in tokens for w in expansion):
            continue
        missing.append(name)
    for ident in identifiers:
        number = ident.split()[-1]
        if number not in tokens:
            missing.append(ident)
    return Answerability(not missing, missing)
