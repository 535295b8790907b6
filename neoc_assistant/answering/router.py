"""Which answer a question gets once its passages are known - not-found, quoted, or written.

The last stage of the chain (``chain.py``):

0. the current documents are read first; superseded revisions only when they do not answer
   (``versions.py``);
1. no passage above the relevance floor, or the question names something no passage mentions (a
   district, a year, a phone number: ``verify/answerability.py``) -> **not-found**;
2. the reader composes the answer from the passages' extracts (``compose/reader.py``); if no
   extract gives what was asked, or none covers the question -> **not-found** with the nearest
   documents (never related quotes);
3. no model (or its servers are down) -> the composition, **quoted**;
4. ``reader.mode = "model"`` -> the model *chooses* among the extracts (``compose/model_choice.py``)
   and its choice is quoted; an invalid choice leaves the rules' composition;
5. otherwise the model **writes** over the reader's extracts, verified claim by claim
   (``written.py``); if nothing survives or it does not answer, the composition is quoted instead.
Every model failure that happens before text (busy, servers down) quotes the composition at once.
Every notice is in the question's language (``language/texts.py``: Nepali for a question in Devanagari).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Iterator

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.answering.not_found import not_found
from neoc_assistant.answering.quoted import Composed, quoted_answer
from neoc_assistant.answering.sources import generation_stats
from neoc_assistant.answering.written import WrittenWriter
from neoc_assistant.compose.model_choice import ModelChooser
from neoc_assistant.compose.reader import Reader
from neoc_assistant.errors import BusyError, UnavailableError
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.language.texts import answer_text, question_language
from neoc_assistant.question import Question, Retrieved
from neoc_assistant.reading.asks import named, read_ask
from neoc_assistant.reading.glossary import Glossary
from neoc_assistant.reading.vocabulary import KBVocabulary
from neoc_assistant.reading.weights import WeightRules, question_weights
from neoc_assistant.settings import ReaderSettings, VerificationSettings
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.verify.answerability import check_answerable
from neoc_assistant.verify.support import SupportChecker

class AnswerWriter:
    def __init__(self, *, engine: GenerationBackend, checker: SupportChecker, reader: Reader,
                 written: WrittenWriter, chooser: ModelChooser, vocabulary: KBVocabulary, manifest: Manifest,
                 glossary: Glossary, reading: ReaderSettings, verification: VerificationSettings):
        """``vocabulary`` + ``manifest``: the KB's words for the current kb version, which the
        answerability check reads questions with; ``checker`` cuts passages into statements."""
        self.engine = engine
        self.checker = checker
        self.reader = reader
        self.written = written
        self.chooser = chooser
        self.vocabulary = vocabulary
        self.manifest = manifest
        self.glossary = glossary
        self.known = glossary.known_words()
        self.weight_rules = WeightRules(reading.common_weight, reading.background_weight)
        self.reading = reading
        self.verification = verification

    def write(self, question: Question, retrieved: Retrieved,
              older: Callable[[], Retrieved | None] | None = None) -> Iterator[StreamEvent]:
        """``older``: the passages of superseded revisions, asked for only when ``retrieved`` (the
        current documents') does not answer (``versions.py``); their answer is used when it is one."""
        t0 = time.perf_counter()
        outcome = self._read(question, retrieved)
        if isinstance(outcome, Answer) and older is not None:
            fallback = older()
            second = self._read(question, fallback) if fallback is not None else outcome
            if not isinstance(second, Answer):
                outcome = second
        if isinstance(outcome, Answer):
            yield from _finish(question, outcome)
            return
        composed = outcome
        question.timings_ms["compose"] = (time.perf_counter() - t0) * 1000
        if not self.engine.available():
            yield from _finish(question, quoted_answer(question.text, composed, self.engine.unavailable_notice(_lang(question))))
        elif self.reading.mode == "model":
            yield from self._model_reads(question, composed, t0)
        else:
            yield from self._model_writes(question, composed, t0)

    def _read(self, question: Question, retrieved: Retrieved) -> Answer | Composed:
        """Steps 1-2 of the module docstring: the not-found answer, or the composition to answer with."""
        below_floor = not retrieved.relevant and self.reading.below_floor > 0
        if below_floor:  # nothing passed the relevance floor: read the best few, and ask more of them
            retrieved = replace(retrieved, relevant=retrieved.hits[: self.reading.below_floor])
        elif retrieved.relevant and self.reading.read_all_hits:  # the floor judges topic; the reader judges answer
            retrieved = replace(retrieved, relevant=retrieved.relevant + [h for h in retrieved.hits
                                                                          if h not in retrieved.relevant])
        passages = retrieved.relevant
        lang = _lang(question)
        if not passages:
            return not_found(question.text, answer_text("not_found", lang), retrieved.hits)
        if self.verification.answerability_check:
            guard = self.vocabulary.guard(self.manifest.kb_version())
            verdict = check_answerable(question.read_as, [h.text for h in passages], guard, self.known)
            if not verdict.answerable:
                return not_found(question.text, verdict.message_in(lang), passages)
        composed = self.compose(question, retrieved, self.reading.min_coverage_below_floor if below_floor else None)
        composition = composed.composition
        if not composition.answers:
            if below_floor:
                return not_found(question.text, answer_text("not_found", lang), retrieved.hits)
            notice = (answer_text("not_answered_missing", lang, missing=composition.missing) if composition.missing
                      else answer_text("not_answered", lang))
            return not_found(question.text, notice, passages)
        return composed

    def compose(self, question: Question, retrieved: Retrieved, min_coverage: float | None = None) -> Composed:
        views = self.checker.prepare([h.text for h in retrieved.relevant])
        lex = self.vocabulary.lexicon(self.manifest.kb_version())
        words = question_weights(question.standalone, lex, self.glossary, self.weight_rules)
        scorer = self.reader.scorer(question.read_as, retrieved.query_vector, read_ask(question.standalone), views,
                                    words, tuple(named(question.standalone, self.known)))
        return Composed(retrieved.relevant, views, scorer, self.reader.compose(scorer, min_coverage))

    def _model_reads(self, question: Question, composed: Composed, t0: float) -> Iterator[StreamEvent]:
        try:
            choice = self.chooser.choose(question.read_as, composed.scorer, composed.composition.candidates,
                                         question.cancel)
        except BusyError:
            yield from _finish(question, quoted_answer(question.text, composed, answer_text("busy", _lang(question))), admission="busy")
            return
        except UnavailableError:
            yield from _finish(question, quoted_answer(question.text, composed, answer_text("servers_down", _lang(question))))
            return
        if choice.picked:
            composed = composed.with_composition(self.reader.choose(composed.scorer, choice.picked,
                                                                    composed.composition.candidates))
        answer = quoted_answer(question.text, composed, "")
        stats = choice.stats or {}
        answer.generation = {**generation_stats(stats), "reader_choice": choice.raw}
        answer.finish_reason = (stats.get("finish_reason") or "stop") if choice.stats else ""
        answer.tokens = {"prompt": stats.get("prompt_tokens", 0), "completion": stats.get("generated_tokens", 0)}
        question.timings_ms["generate"] = (time.perf_counter() - t0) * 1000
        yield from _finish(question, answer)

    def _model_writes(self, question: Question, composed: Composed, t0: float) -> Iterator[StreamEvent]:
        try:
            run, _, passages = self.written.start(question, composed)
        except BusyError:
            # Every answer slot is taken for longer than the admission budget: quote the documents
            # now rather than keep the officer waiting (never cached; the model answers next time).
            yield from _finish(question, quoted_answer(question.text, composed, answer_text("busy", _lang(question))), admission="busy")
            return
        except UnavailableError:  # the model's servers are down: quote the documents (never an error)
            yield from _finish(question, quoted_answer(question.text, composed, answer_text("servers_down", _lang(question))))
            return
        if not self.verification.enabled:
            yield from self.written.write_unchecked(question, run, passages, t0)
        else:
            yield from self.written.write(question, composed, run, passages, t0)


def _lang(question: Question) -> str:
    return question_language(question.text)


def _finish(question: Question, answer: Answer, **generation) -> Iterator[StreamEvent]:
    if generation:
        answer.generation = {**answer.generation, **generation}
    answer.timings_ms = {"generate": 0.0, **question.timings_ms, "total": question.elapsed_ms()}
    yield StreamEvent("token", text=answer.answer)
    yield StreamEvent("done", answer=answer)
