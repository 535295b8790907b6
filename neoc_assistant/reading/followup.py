"""A follow-up question read as a standalone one, from the conversation so far (no model needed).

Duty officers talk in turns: "and for children?", "who do I call for that?", "same for Sindhuli?".
The cache and retrieval must see a question that stands alone, and the officer must see how it was
read ("Understood as ..."). The rules, in order:

1. **A new topic** - an explicit marker ("new topic:", "separate question", "switching", "unrelated")
   or a question with its own subject and no word pointing back - carries nothing over. Starting with
   "and"/"also" is not pointing back: "And what's the HEOC duty desk number?" is a new question.
2. **A slot replaced** - "same for X?", "and for X?", "what about X?", "and X?": the previous question
   with X put in place of its most similar part (a number for a number: Level 2 -> Level 1, ESF 8 ->
   ESF 9; otherwise the part whose meaning is closest, by the embedding model: "and laundry soap?"
   after "How much bathing soap...?" replaces "bathing soap"). If nothing is close enough, X is
   added to the previous question.
2a. **A topic put first** - "what about the 214s, where do they end up?", "And the assembly points -
   how far can they be?": the topic takes the place of the question's pronoun ("Where do the 214s end
   up?") and nothing else is carried; "one" in the topic is the thing the previous question asked about
   ("and a dry chem one, how long does it last?" after "...water extinguisher?").
3. **A condition added** - "and if ...?", "what if ...?", "and once ...?": the previous question with
   the condition added.
4. **"Them"** - "and how much water for them per day?" after "...has 300 people..." is "and how much
   water for 300 people per day?" (for/to/with them: the counted group; the count goes where the
   pronoun was, so a worked figure can use it); "who arranges them?" after "...how many buses?" is
   "who arranges the buses?". Nothing else is carried.
5. **A word pointing back** - it, that, this, they, them, there (as a place), those, these, he, she:
   the question is kept as asked and the previous question is carried with it, marked
   ("who arranges them? [after: How many buses to move 430 people from an assembly point]"), so
   retrieval and the reader see what "them" was, the reader weighs it as background, and the officer
   sees exactly what was carried. A pronoun that is the subject ("can they head home...?", "where does
   it go?") always points back; another one only when the question is short or close in meaning to the
   previous one. "And when ...?" is a question of its own, not a condition.

A question that is only a bare reply to nothing (no history) is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from neoc_assistant.language.words import GROUP_WORDS, HAZARD_SEED, QUESTION_STOPWORDS
from neoc_assistant.reading.asks import asking_clause, read_ask

_TOPIC_CHANGE = re.compile(
    r"^\s*(?:ok(?:ay)?[.,!]?\s*)?(?:new topic|new question|separate (?:question|thing|topic)|switching(?: topics?)?"
    r"|unrelated|different (?:question|topic|thing)|another (?:question|thing)|changing (?:the )?subject"
    r"|on another note|something else)\b\s*[-:,.\u2013\u2014]*\s*", re.IGNORECASE)
_OPENER = re.compile(r"^\s*(?:ok(?:ay)?|right|thanks|got it)?[.,!]?\s*(?:and|also|plus|oh and|so)?[,]?\s*",
                     re.IGNORECASE)
_PREPOSITION = r"(?:for|in|at|with|on|to|from|by|about|during|after|before)"
_SLOT = re.compile(r"^\s*(?:and\s+|also\s+)?(?:what about|how about|same " + _PREPOSITION + r"|and " + _PREPOSITION +
                   r"|" + _PREPOSITION + r"|and(?: the| a| an)?)\s+(?P<x>.+?)\s*\??\s*$", re.IGNORECASE)
_CONDITION = re.compile(r"^\s*(?:and\s+|but\s+)?(?:what if|and if|if|once|and once|what about if)\s+"
                        r"(?P<c>.+?)\s*\??\s*$", re.IGNORECASE)
_POINTING = re.compile(r"\b(?:it|its|that|this|they|them|their|those|these|he|she|him|her|one)\b(?!\s*(?:is|are)\s+there)"
                       r"|\b(?:go|get|send|move|reach|in|from|out|up|down|over|stay)\s+there\b", re.IGNORECASE)
# "that form", "this shelter": a determiner before its own noun, not a word pointing back - unless the
# next word is a verb ("what does that mean", "does this apply")
_VERBS_AFTER = ("is|are|was|were|'s|mean|means|meant|does|do|did|apply|applies|cover|covers|include|includes|count"
                "|counts|need|needs|work|works|go|goes|happen|happens|take|takes|require|requires|change|changes"
                "|affect|affects|leave|leaves|last|lasts|cost|costs|look|looks|sound|sounds")
_DETERMINER_THAT = re.compile(rf"\b(?:that|this|those|these)\s+(?!(?:{_VERBS_AFTER})\b)[a-z]{{3,}}", re.IGNORECASE)
# a counted group the previous question named: "them"/"they" are those people
_GROUP = re.compile(r"\b\d[\d,]*\s+(?:[a-z\-]+\s+)?(?:people|persons|residents|idps|evacuees|households|families|"
                    r"workers|staff|students|children|patients|volunteers)\b", re.IGNORECASE)
_THEM = re.compile(r"\b(?:them|they)\b", re.IGNORECASE)
_FOR_THEM = re.compile(r"\b(for|to|with|of|per)\s+(?:them|those people)\b", re.IGNORECASE)
_NUMBER_SLOT = re.compile(r"(?:\b(?P<head>[A-Za-z]+)\s+)?(?P<n>\d+[A-Za-z]?)\b")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+[A-Za-z]?")
_MIN_SIMILARITY = 0.2  # below this, a slot is added to the previous question instead of replacing a part
_RELATED = 0.25  # a question pointing back is read with the previous one only if this close to it (or short)
_CATEGORIES = (frozenset(HAZARD_SEED), frozenset(GROUP_WORDS))
_CARRIED = re.compile(r"\s*\[after: (.*)\]\s*$")
# "And the assembly points - how far from the houses can they be?": a topic put first, then its own
# question. The opener is required, so a situation told before a question is not read as a topic.
_FRONTING = re.compile(r"^\s*(?:(?:and|also|but|plus|oh and|now)\s+(?:(?:what|how) about\s+|as for\s+|for\s+)?"
                       r"|(?:what|how) about\s+|as for\s+|regarding\s+)(?P<x>[^?,:\u2013\u2014]+?)"
                       r"\s*(?:\s-\s|,|:|\u2013|\u2014)\s*(?P<q>[^?]+?)\s*\??\s*$", re.IGNORECASE)
_PRONOUN = re.compile(r"\b(?:it|that|this|they|them|those|these)\b", re.IGNORECASE)
_PRO_ONE = re.compile(r"\b(?:one|ones)\s*$", re.IGNORECASE)  # "a dry chem one": the previous thing
# "can they head home ...?", "where does it go after?": a pronoun as the subject always points back
_AUX = ("can|could|do|does|did|is|are|was|were|should|must|will|would|may|might|has|have|had|shall|'s|'re")
_SUBJECT_PRONOUN = re.compile(r"^\s*(?:(?:what|which|who|whom|where|when|why|how)(?:\s+(?:long|much|many|soon|far|often|"
                              r"quickly|fast|big|high))?\s*)?(?:" + _AUX + r")\s+(?:it|they|he|she)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Resolution:
    question: str  # what the cache, retrieval and the reader see
    asked: str  # the officer's own words
    kind: str  # standalone | topic-change | slot | condition | pointing
    previous: str = ""  # the earlier (resolved) question it draws on

    @property
    def changed(self) -> bool:
        return self.question != self.asked


Encode = Callable[[Sequence[str]], np.ndarray]


def _content(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in QUESTION_STOPWORDS]


def _strip_q(text: str) -> str:
    return text.strip().rstrip("?").rstrip()


def resolve(question: str, history: Sequence[str], encode: Encode | None = None) -> Resolution:
    """``history``: the earlier questions *as resolved*, oldest first; ``encode``: sentence vectors
    (normalised), for choosing which part of the previous question a slot replaces."""
    asked = question.strip()
    if not history:
        return Resolution(asked, asked, "standalone")
    previous = _flat(history[-1])
    marker = _TOPIC_CHANGE.match(asked)
    if marker:
        rest = asked[marker.end():].strip() or asked
        return Resolution(rest[:1].upper() + rest[1:], asked, "topic-change")
    condition = _CONDITION.match(asked)
    if condition:
        return Resolution(f"{_strip_q(previous)}, if {_strip_q(condition.group('c'))}?", asked, "condition", previous)
    fronted = _fronted_topic(asked, previous)
    if fronted is not None:
        return fronted
    slot = _SLOT.match(asked)
    if slot and len(_content(slot.group("x"))) <= 4 and not _has_own_question(slot.group("x")):
        return Resolution(_replace_slot(previous, slot.group("x"), encode), asked, "slot", previous)
    body = _OPENER.sub("", asked, count=1)
    group = _GROUP.search(previous)
    if group and _FOR_THEM.search(body):  # "and how much water for them per day?" after "... has 300 people ..."
        return Resolution(_FOR_THEM.sub(lambda m: f"{m.group(1)} {group.group(0)}", body, count=1), asked,
                          "pointing", previous)
    counted = read_ask(previous).counted
    if counted and _THEM.search(body):  # "who arranges them?" after "... how many buses?"
        return Resolution(_THEM.sub(f"the {counted[0]}", body, count=1), asked, "pointing", previous)
    points_back = _POINTING.search(body) and not _DETERMINER_THAT.search(body)
    related = points_back and (len(_content(body)) <= 3 or encode is None
                               or _similarity(encode, body, previous) >= _RELATED)
    if _SUBJECT_PRONOUN.search(body) or related:
        return Resolution(f"{_strip_q(asked)}? [after: {_strip_q(previous)}]", asked, "pointing", previous)
    if not _has_own_question(body) and len(_content(body)) <= 3:  # "and the night shift?"
        return Resolution(_replace_slot(previous, body, encode), asked, "slot", previous)
    return Resolution(asked, asked, "standalone")


def _fronted_topic(asked: str, previous: str) -> Resolution | None:
    """"What about the 214s, where do they end up?" -> "Where do the 214s end up?": the topic put
    first stands in for the question's pronoun and nothing else is carried - except the thing a
    pro-form "one" names ("and a dry chem one, how long does it last?" after "...water extinguisher?")."""
    m = _FRONTING.match(asked)
    if not m or not _has_own_question(m.group("q")) or _has_own_question(m.group("x")):
        return None
    topic, question = m.group("x").strip(), m.group("q").strip()
    if len(_content(topic)) > 6 or re.match(r"(?:if|once|when|whether)\b", topic, re.IGNORECASE):
        return None
    used = ""
    one = _PRO_ONE.search(topic)
    if one:
        named = _content(asking_clause(previous))
        if named:
            topic, used = f"{topic[:one.start()]}{named[-1]}", previous
    if _PRONOUN.search(question):
        text = _PRONOUN.sub(topic, question, count=1)
    else:
        text = f"{topic}: {question}"
    return Resolution(f"{text[:1].upper()}{text[1:]}?", asked, "slot" if used else "topic-change", used)


def _flat(resolved: str) -> str:
    """A resolved question that carried an earlier one, as one question: "Q? [after: P]" -> "Q? P"."""
    carried = _CARRIED.search(resolved)
    return f"{resolved[:carried.start()]} {carried.group(1)}" if carried else resolved


def _similarity(encode: Encode, a: str, b: str) -> float:
    va, vb = encode([a, b])
    return float(va @ vb)


def _has_own_question(text: str) -> bool:
    words = [w.lower().split("'")[0] for w in _WORD.findall(text)]
    return bool(words) and (words[0] in _ASKING or any(w in _WH for w in words))


_WH = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how"}
_ASKING = _WH | {"is", "are", "can", "do", "does", "should", "must", "may", "will", "could", "would", "did", "has",
                 "have", "shall"}


def _replace_slot(previous: str, slot: str, encode: Encode | None) -> str:
    """The previous question with ``slot`` in place of its most similar part (see the module docstring)."""
    slot = _strip_q(re.sub(r"^(?:" + _PREPOSITION + r"\s+)?(?:the|a|an)\s+|^" + _PREPOSITION + r"\s+", "",
                           slot.strip(), flags=re.IGNORECASE))
    base = _strip_q(previous)
    number = _NUMBER_SLOT.fullmatch(slot)
    if number:
        head = number.group("head")
        spots = [m for m in _NUMBER_SLOT.finditer(base) if not head or (m.group("head") or "").lower() == head.lower()]
        if spots:
            m = spots[-1]
            start = m.start("head") if head and m.group("head") else m.start("n")
            return f"{base[:start]}{slot}{base[m.end():]}?"
    category = next((c for c in _CATEGORIES if slot.lower() in c), None)
    if category:  # a hazard for a hazard, a group of people for a group: "and a fire?" after "...for an earthquake?"
        same = [m for m in _WORD.finditer(base) if m.group(0).lower() in category and m.group(0).lower() != slot.lower()]
        if same:
            m = same[-1]
            return f"{base[:m.start()]}{slot}{base[m.end():]}?"
    spans = _candidate_spans(base, capitalised=slot[:1].isupper())
    if encode is not None and spans:
        vectors = encode([slot] + [base[a:b] for a, b in spans])
        width = len(_content(slot))
        # a part as long as the slot is the likelier one to replace ("laundry soap" for "bathing soap")
        sims = vectors[1:] @ vectors[0] + np.array([0.05 if len(_content(base[a:b])) == width else 0.0
                                                    for a, b in spans])
        best = int(np.argmax(sims))
        if sims[best] >= _MIN_SIMILARITY:
            a, b = spans[best]
            return f"{base[:a]}{slot}{base[b:]}?"
    return f"{base} - for {slot}?"


def _candidate_spans(text: str, capitalised: bool) -> list[tuple[int, int]]:
    """Character spans of the parts a slot may replace, in the clause that asks: one or two
    consecutive content words; for a capitalised slot (a place, a role: "Chisapani", "the Chief"),
    the runs of capitalised words."""
    offset = text.rfind(asking_clause(text))
    clause = text[max(offset, 0):]
    words = [(m.start() + max(offset, 0), m.end() + max(offset, 0), m.group(0)) for m in _WORD.finditer(clause)]

    def is_content(w: str) -> bool:
        low = w.lower()
        return low not in QUESTION_STOPWORDS and low.split("'")[0] not in _ASKING

    content = [i for i, (_, _, w) in enumerate(words) if is_content(w)]
    if capitalised:
        runs, run = [], []
        for i in content:
            if words[i][2][:1].isupper() and i > 0 and (not run or run[-1] == i - 1):
                run.append(i)
            elif words[i][2][:1].isupper() and i > 0:
                runs.append(run)
                run = [i]
            elif run:
                runs.append(run)
                run = []
        runs = [r for r in runs + [run] if r]
        if runs:
            return [(words[r[0]][0], words[r[-1]][1]) for r in runs]
    spans = [(words[i][0], words[i][1]) for i in content]
    spans += [(words[i][0], words[j][1]) for i, j in zip(content, content[1:]) if j == i + 1]
    return spans


def resolve_conversation(questions: Sequence[str], encode: Encode | None = None, turns: int = 4) -> list[Resolution]:
    """Each question of a conversation resolved against the ones before it (the last ``turns`` of
    them are enough: a follow-up points back one or two turns)."""
    out: list[Resolution] = []
    for question in questions[-turns:]:
        out.append(resolve(question, [r.question for r in out], encode))
    return out
