"""Do the passages answer *this* question, or only its topic?

The relevance floor measures topic: a passage about shelters is on-topic for
"shelter capacity in Gorkha district" even if no document names Gorkha. A
small model then happily answers with another place's figure. So before the
model is asked, the question's **specific constraints** must be covered by the
passages:

- **names** - places, organisations, people, named plans: words the knowledge
  base always capitalises (``lexicon.names``), capitalised words the
  knowledge base never uses, and unknown words used like a place ("in
  gorkha", "gorkha district"). Only the sentence that asks counts: in
  "120 kits approved for Bardiya. What form do we send?" Bardiya is
  background, not a condition of the answer;
- **identifiers** - years and editions (``2031 edition``), numbers that
  name something (``ward 5``, ``Level 2``, ``ICS 215``, ``phase 3``) and
  form codes (``215A``);
- **what is asked for** - a phone number, e-mail or radio frequency must be
  present as such in the passages.

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

from neoc_assistant.reading.guard import Guard
from neoc_assistant.language.normalize import tokenize
from neoc_assistant.language import wordnet
from neoc_assistant.language.words import CODE_HEADS, QUESTION_STOPWORDS

_YEAR = re.compile(r"^(19|20)\d\d$")
_IDENTIFYING_HEADS = CODE_HEADS | {
    "ics", "edition", "version", "rev", "revision", "no", "number", "district", "province", "route",
    "unit", "station", "camp", "site", "shelter", "area", "region", "municipality", "road", "highway",
}
_CONTACT_ASKS = {
    "phone": re.compile(r"(?:\+?\(?\d[\d\s\-()]{5,}\d)"),
    "telephone": re.compile(r"(?:\+?\(?\d[\d\s\-()]{5,}\d)"),
    "hotline": re.compile(r"(?:\+?\(?\d[\d\s\-()]{2,}\d)"),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "e-mail": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "frequency": re.compile(r"\d+(?:\.\d+)?\s*(?:mhz|khz)", re.IGNORECASE),
}
_ASK_WORDS = {"phone": "a phone number", "telephone": "a phone number", "hotline": "a hotline number",
              "email": "an e-mail address", "e-mail": "an e-mail address", "frequency": "a radio frequency"}


@dataclass
class Answerability:
    answerable: bool
    missing: list[str] = field(default_factory=list)  # the constraints no passage covers, as the officer wrote them

    @property
    def message(self) -> str:
        if self.answerable:
            return ""
        parts = [m if m.startswith(("a ", "an ")) else f"'{m}'" for m in self.missing]
        return "Nothing about " + " or ".join(parts) + " in the documents."


def asking_part(question: str) -> str:
    """The sentence(s) that ask: "Logistics approved 120 kits for Bardiya. What paper do we send?"
    names Bardiya as background, not as a condition of the answer."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", question.strip()) if s]
    asking = [s for s in sentences if s.endswith("?")]
    return " ".join(asking or sentences[-1:])


def constraints(question: str, guard: Guard) -> tuple[list[str], list[str], list[str]]:
    """(names, identifiers, asked-for kinds) the question specifies."""
    lex = guard.lex
    asking = set(guard.features(asking_part(question)).surface)
    features = guard.features(question)
    caps = {w.lower() for w in re.findall(r"(?<!^)(?<![.?!]\s)\b[A-Z][a-zA-Z]+", question.strip())}
    names: list[str] = []
    for word in features.surface:
        if not word.isalpha() or len(word) < 3 or word in QUESTION_STOPWORDS or word in lex.acronyms or word in names:
            continue
        if word in lex.names and word in asking:
            names.append(word)  # a place/agency/person the KB names: the passages must name it too
        elif not lex.in_kb(word) and not lex.common_or_english(word) and (
            wordnet.available() or word in caps or _placed(question, word)
        ):
            names.append(word)  # a word no document uses and no dictionary knows: "Gorkha", "temephos"
    identifiers: list[str] = []
    for number, head in features.number_context:
        if number.startswith("code:"):
            identifiers.append(f"{head} {number[5:]}")
        elif _YEAR.match(number) or re.fullmatch(r"\d+[a-z]", number) or head in _IDENTIFYING_HEADS:
            identifiers.append(f"{head} {number}" if head and head not in QUESTION_STOPWORDS else number)
    words = set(tokenize(question))
    asks = [w for w in _CONTACT_ASKS if w in words or (w == "e-mail" and "mail" in words)]
    return names, identifiers, asks


def _placed(question: str, word: str) -> bool:
    """Used like a place: after in/at/from/for, or before district/province/village/..."""
    pattern = (rf"\b(?:in|at|from|for|of|near)\s+{re.escape(word)}\b"
               rf"|\b{re.escape(word)}\s+(?:district|province|municipality|village|ward|county|city|state|valley|camp)\b")
    return re.search(pattern, question, re.IGNORECASE) is not None


def check_answerable(question: str, passages: list[str], guard: Guard) -> Answerability:
    names, identifiers, asks = constraints(question, guard)
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
    for ask in asks:
        if not _CONTACT_ASKS[ask].search(text):
            label = _ASK_WORDS[ask]
            if label not in missing:
                missing.append(label)
    return Answerability(not missing, missing)
