"""A follow-up rewritten into a standalone question by a language model, used only when it is safe.

Why a model at all: the rules of ``followup.py`` read a follow-up by its shape ("and X?", "them",
"what if ..."), and miss the ones whose shape they do not know ("so for a shelter of 500 people, per
day?", "data cut-off for those?"). A model reads the conversation, not the shape. Why not the model
alone: the small models that fit a laptop invent ("Level 3" where the officer said nothing of it),
drop what was asked, refuse, or run on - and the officer would only see it in "Understood as". So:

* the rules always run first (they cost milliseconds) and are the answer whenever the model's is
  not safe to use: no model, still loading (it loads in the background; the rules read meanwhile),
  busy past ``timeout_seconds``, cut off, empty, not one question, too long, a refusal, a number or
  a capitalised name that appears nowhere in the conversation, a word of the follow-up itself
  dropped, or the follow-up handed back unchanged where the rules saw it needed the conversation;
* a topic change the rules recognise (an explicit marker, "New question: ...") stays a topic change:
  the model is not asked, nothing can be carried over;
* the model sees the earlier questions only (never the answers: they are long, and a quoted passage
  is not the officer's words) and writes one line ending in "?" (a GBNF grammar, where the backend
  supports it; the guard checks the same in any case);
* every reading says who made it (``Reading.by``: "rules", "model", or "rules" with the reason the
  model's was refused in ``note``), so the answer and the audit trail can show it.

``scripts/eval_dialogues.py --resolver model`` measures it against the rules (README).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol, Sequence

from neoc_assistant.errors import NeocError
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.language.normalize import light_stem
from neoc_assistant.language.words import QUESTION_STOPWORDS
from neoc_assistant.reading.followup import Encode, Resolution, resolve_conversation
from neoc_assistant.settings import ConversationSettings

log = logging.getLogger(__name__)

FOLLOWUP_PROMPT_VERSION = "followup-v1"
# One line, not starting with a space, ending in "?" (nothing after it can be generated).
GRAMMAR = 'root ::= [^\\n? ] [^\\n?]* "?"\n'
_SYSTEM = (
    "You rewrite the last question of an Emergency Operations Centre conversation so that it can be "
    "understood on its own. Keep the officer's own words and what the question asks. From the earlier "
    "questions take only what the follow-up leaves out or points to (a number of people, a place, a "
    "form, the thing it asks about). If the follow-up starts a new topic, return it as it is. "
    "Reply with the one rewritten question only."
)
# Worked examples, written for this prompt (none is from tests/data/dialogues.jsonl): earlier
# questions, the follow-up, the rules' draft ("" when they left it as asked), the rewrite.
_EXAMPLES = (
    (("A school shelter has 300 people. How many toilets do we need?",), "and how much water for them per day?",
     "how much water for 300 people per day?", "How much water per day do 300 people in a shelter need?"),
    (("Who approves the release of tents from the district store?",), "and what form is it on?",
     "and what form is it on? [after: Who approves the release of tents from the district store]",
     "What form is the release of tents from the district store approved on?"),
    (("What is the flood warning level at the Sunkoshi bridge?",), "same for Dolalghat?",
     "What is the flood warning level at Dolalghat?", "What is the flood warning level at Dolalghat?"),
    (("How many blankets per person go in the winter kit?",), "and who chairs the district disaster committee?",
     "", "Who chairs the district disaster committee?"),
)
_REFUSAL = re.compile(r"\b(?:sorry|apolog|I (?:can ?not|can't|am unable|'m unable|don't know)|as an ai|language model"
                      r"|please (?:provide|clarify|specify)|could you (?:clarify|specify)|not sure)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
# words of a follow-up that point back or only join it to the conversation: the rewrite may drop them
_DROPPABLE = frozenset(
    "and also plus so then ok okay right same about what how it its that this they them their those these he she "
    "him her one there here folks people what's how's".split())
_MAX_WORDS = 45
# what a small model copies from the worked examples into an unrelated rewrite ("What does the district
# disaster committee have to put in it?"): the examples' own words, unless the conversation has them
_GENERIC = frozenset("need many much per day person people question go".split())


@dataclass(frozen=True)
class Reading:
    """A question as the cache, retrieval and the reader see it, and who read it so."""

    question: str
    kind: str  # the rules' kind: standalone | topic-change | slot | condition | pointing
    by: str  # "rules" | "model"
    note: str = ""  # why the model's reading was not used ("" when it was, or was never asked)
    rejected: str = ""  # the model's reading that was not used (for the log and the evaluation)


class FollowupReader(Protocol):
    def read(self, questions: Sequence[str]) -> Reading:
        """The last of ``questions`` (the conversation's, oldest first, as asked) read as a standalone one."""
        ...


class RulesFollowups:
    """``followup.py`` alone: no model, the laptop default."""

    def __init__(self, encode: Encode | None, turns: int = 4):
        self.encode = encode
        self.turns = turns

    def read(self, questions: Sequence[str]) -> Reading:
        last = resolve_conversation(questions, self.encode, self.turns)[-1]
        return Reading(last.question, last.kind, "rules")


def _stems(text: str) -> set[str]:
    return {light_stem(w.lower().split("'")[0]) for w in _WORD.findall(text)}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def problem_with(text: str, conversation: Sequence[str], rules: Resolution) -> str:
    """Why ``text`` (a model's rewrite of ``rules.asked``) must not be used, or "" if it may.
    ``conversation``: every question so far, the follow-up included; ``rules``: the rules' reading."""
    text = text.strip()
    if not text:
        return "empty"
    if "\n" in text or not text.endswith("?") or text.count("?") > 1:
        return "not one question"
    words = _WORD.findall(text)
    source = " ".join([*conversation, rules.question])
    if len(words) > _MAX_WORDS or len(text) > len(source) + 40:
        return "too long"
    if _REFUSAL.search(text):
        return "a refusal"
    invented = sorted(_numbers(text) - _numbers(source))
    if invented:
        return f"invented number {invented[0]}"
    known = _stems(source)
    for word in words[1:]:
        if any(c.isupper() for c in word) and word != "I" and light_stem(word.lower().split("'")[0]) not in known:
            return f"invented name {word}"
    copied = sorted((_example_words() - known) & _stems(text))
    if copied:
        return f"copied '{copied[0]}' from the examples"
    own = _own_words(rules.asked)
    # the follow-up's own words and numbers, and every count the rules carried, must be kept
    missing = sorted(own - _stems(text)) or sorted(_numbers(rules.question) - _numbers(text))
    if missing:
        return f"dropped '{missing[0]}'"
    if rules.changed and _own_words(text) | _numbers(text) <= own | _numbers(rules.asked):
        return "unchanged"  # nothing taken from the conversation where the rules saw it was needed
    return ""


@cache
def _example_words() -> frozenset[str]:
    text = " ".join(" ".join([*before, rewritten]) for before, _, _, rewritten in _EXAMPLES)
    return frozenset(w for w in _own_words(text) if w not in _GENERIC and light_stem(w) not in _GENERIC)


def _own_words(text: str) -> set[str]:
    """The content words of ``text``, by light stem (what a rewrite must keep)."""
    words = (w.lower().split("'")[0] for w in _WORD.findall(text))
    return {light_stem(w) for w in words if w and w not in QUESTION_STOPWORDS and w not in _DROPPABLE}


def messages_for(earlier: Sequence[str], follow_up: str, draft: str = "", hint: bool = True) -> list[dict]:
    """System prompt, the worked examples as earlier chat turns, then this conversation; with
    ``hint``, the rules' reading as a draft (when it differs from the follow-up)."""
    messages = [{"role": "system", "content": _SYSTEM}]
    for before, asked, rules, rewritten in _EXAMPLES:
        messages += [{"role": "user", "content": _user_turn(before, asked, rules if hint else "")},
                     {"role": "assistant", "content": rewritten}]
    messages.append({"role": "user", "content": _user_turn(earlier, follow_up, draft if hint else "")})
    return messages


def _user_turn(earlier: Sequence[str], follow_up: str, draft: str) -> str:
    lines = [f"Follow-up: {' '.join(follow_up.split())}", "It comes after:"]
    lines += [f"- {' '.join(q.split())}" for q in earlier]
    if draft and draft != follow_up:
        lines.append(f"Draft (may be wrong): {' '.join(draft.split())}")
    return "\n".join(lines + ["Rewrite the follow-up so it stands alone:"])


class ModelFollowups:
    """The rules' reading, replaced by a model's rewrite when that passes ``problem_with``."""

    def __init__(self, engine: GenerationBackend, encode: Encode | None, settings: ConversationSettings,
                 turns: int = 4, hint: bool = True):
        self.engine = engine
        self.hint = hint
        self.encode = encode
        self.settings = settings
        self.turns = turns
        self._loading: threading.Thread | None = None
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Load the model now (an evaluation, a server that wants its first follow-up read by the model)."""
        if self.engine.available():
            self.engine.load()

    def read(self, questions: Sequence[str]) -> Reading:
        questions = list(questions)[-self.turns:]
        rules = resolve_conversation(questions, self.encode, self.turns)[-1]
        if len(questions) < 2 or rules.kind == "topic-change":
            return Reading(rules.question, rules.kind, "rules")
        try:
            text = self._rewrite(messages_for(questions[:-1], questions[-1], rules.question, self.hint))
        except _NotNow as exc:
            return Reading(rules.question, rules.kind, "rules", str(exc))
        except (NeocError, OSError, RuntimeError, ValueError) as exc:  # a model that fails never fails the question
            log.warning("follow-up rewrite failed, using the rules' reading: %s", exc)
            return Reading(rules.question, rules.kind, "rules", f"model failed: {str(exc)[:80]}")
        problem = problem_with(text, questions, rules)
        if problem:
            log.info("follow-up rewrite %r not used (%s); rules: %r", text, problem, rules.question)
            return Reading(rules.question, rules.kind, "rules", problem, rejected=text)
        return Reading(" ".join(text.split()), rules.kind, "model")

    def _rewrite(self, messages: list[dict]) -> str:
        if not self.engine.available():
            raise _NotNow("no model")
        if not self.engine.model_loaded:
            self._load_in_background()
            raise _NotNow("model loading")
        cancel = threading.Event()
        timer = threading.Timer(self.settings.timeout_seconds, cancel.set)
        timer.daemon = True
        timer.start()
        t0 = time.perf_counter()
        try:
            stream = self.engine.stream(messages, max_tokens=self.settings.max_tokens,
                                        cancel=cancel, grammar=GRAMMAR)
            with stream:
                text = "".join(stream)
            stats = dict(stream.stats)
        finally:
            timer.cancel()
        if cancel.is_set():
            raise _NotNow(f"timed out after {time.perf_counter() - t0:.1f} s")
        if stats.get("finish_reason") not in (None, "stop"):
            raise _NotNow(f"cut off ({stats.get('finish_reason')})")
        return text

    def _load_in_background(self) -> None:
        with self._lock:
            if self._loading is None or not self._loading.is_alive():
                self._loading = threading.Thread(target=self._load_quietly, name="followup-model-load", daemon=True)
                self._loading.start()

    def _load_quietly(self) -> None:
        try:
            self.engine.load()
        except Exception as exc:  # noqa: BLE001 - the next follow-up tries again; the rules read meanwhile
            log.warning("follow-up model could not be loaded: %s", exc)


class _NotNow(Exception):
    """The model cannot give a reading this time (none, loading, timed out, cut off)."""
