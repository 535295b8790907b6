"""The RAG chain: read → cache → retrieve → answer (``answering/``) → cache, as LangChain runnables.

Each stage takes what the one before produced and returns a new value (``Question`` →
``Looked`` → ``Found`` → events; ``question.py``); LangChain composes them
(``RunnableBranch`` short-circuits cache hits, ``RunnableGenerator`` streams the answer), so
``chain.stream(question)`` yields ``StreamEvent``s and ends with one ``done`` event carrying the
``Answer``. Callers may pass LangChain ``config`` (callbacks, tags) through ``stream``; each stage
is named, so a tracer sees read / cache / retrieve / answer.

Decisions that matter for safety:
- the question is read with the centre's glossary (``reading/glossary.py``) for retrieval and
  composition, while the cache keys on the officer's own words;
- the question is embedded once (by the cache lookup) and the vector is reused by retrieval;
- the answer is not-found when nothing passes the relevance floor, when the question names
  something the passages never mention, or when no extract gives what was asked
  (``answering/router.py``) - never related quotes;
- the model's text reaches the user only claim by claim, after each claim was checked against
  the passages (``verify/``); if nothing survives - or there is no model - the answer is the
  reader's composition of the documents' own words, labelled as quotes;
- what is cached: answers of a model run that ended normally - its verified text, the quotes that
  replaced it, or the extracts the model chose. Never: an answer cut off (length limit, server
  failure) or cancelled, not-found, and quotes given *instead of* running the model (no model,
  busy, servers down: next time the model may answer);
- a worked figure ("300 people at 1 toilet per 50 people = 6 toilets") is computed by code from the
  officer's count and a rate the answer quotes, labelled as a calculation (``compose/worked.py``);
- a follow-up is read as a standalone question first (``reading/followup.py``, or a model guarded by
  those rules: ``reading/followup_model.py``): the cache keys on that reading, never on the officer's
  words alone ("and for children?" means something else in every conversation), and the answer says
  how the question was understood, and by whom.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Iterator

import numpy as np
from langchain_core.runnables import RunnableBranch, RunnableConfig, RunnableGenerator, RunnableLambda

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.answering import AnswerWriter
from neoc_assistant.answering.conflicts import add_conflicts, find_conflicts
from neoc_assistant.answering.versions import VersionView
from neoc_assistant.cache.entries import CacheContext, CachedAnswer
from neoc_assistant.cache.entries import CacheLookup
from neoc_assistant.cache.response_cache import ResponseCache
from neoc_assistant.compose.model_choice import READER_PROMPT_VERSION
from neoc_assistant.compose.worked import render_worked, worked_figures
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.generate.prompt import PROMPT_VERSION
from neoc_assistant.question import Question, Retrieved
from neoc_assistant.reading.followup_model import FollowupReader, RulesFollowups
from neoc_assistant.reading.glossary import Glossary
from neoc_assistant.reading.weights import per_head
from neoc_assistant.language.words import content_stems
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever
from neoc_assistant.settings import CacheSettings, ConversationSettings, ReaderSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest

__all__ = ["Question", "RagChain"]


@dataclass(frozen=True)
class Looked:
    """The question after the cache lookup: the key it was looked up under, its vector, and the hit."""

    question: Question
    context: CacheContext | None = None
    vector: np.ndarray | None = None
    hit: CacheLookup | None = None


@dataclass(frozen=True)
class Found:
    looked: Looked
    retrieved: Retrieved


class RagChain:
    """Builds and runs the runnable graph over its collaborators."""

    def __init__(
        self,
        *,
        retriever: KnowledgeBaseRetriever,
        embedder: Embedder,
        engine: GenerationBackend,
        response_cache: ResponseCache,
        manifest: Manifest,
        glossary: Glossary,
        cache: CacheSettings,
        reader: ReaderSettings,
        writer: AnswerWriter,
        followups: FollowupReader | None = None,
        conversation: ConversationSettings | None = None,
    ):
        """``manifest``, ``engine`` and ``reader``: the knowledge-base version, the model identity and
        the composition settings, all part of every cache key; ``writer``: the last stage;
        ``followups``: reads a follow-up as a standalone question (default: the rules alone)."""
        self.retriever = retriever
        self.embedder = embedder
        self.engine = engine
        self.response_cache = response_cache
        self.manifest = manifest
        self.glossary = glossary
        self.cache = cache
        self.reader = reader
        self.writer = writer
        self.followups = followups or RulesFollowups(embedder.encode)
        self.conversation = conversation or ConversationSettings()
        self.versions = VersionView(manifest)
        # Two halves, so a server can answer a cache hit at once and queue only the rest for a slot.
        self.lookup = RunnableLambda(self._read, name="read") | RunnableLambda(self._cache_lookup, name="cache")
        self.answering = RunnableBranch(
            (lambda looked: looked.hit is not None, RunnableGenerator(self._emit_cached, name="cached")),
            RunnableLambda(self._retrieve, name="retrieve") | RunnableGenerator(self._answer, name="answer"),
        )
        self.pipeline = self.lookup | self.answering

    # -- public -----------------------------------------------------------------------
    def stream(self, question: Question, config: RunnableConfig | None = None) -> Iterator[StreamEvent]:
        yield from self.pipeline.stream(question, config=config)

    def look(self, question: Question, config: RunnableConfig | None = None) -> Looked:
        """The first half: the question read and looked up in the response cache."""
        return self.lookup.invoke(question, config=config)

    def stream_looked(self, looked: Looked, config: RunnableConfig | None = None) -> Iterator[StreamEvent]:
        """The second half: the cached answer's events, or retrieval and the answer's."""
        yield from self.answering.stream(looked, config=config)

    def cached_answer(self, looked: Looked) -> Answer | None:
        """The answer a cache hit gives (None on a miss)."""
        if looked.hit is None or looked.hit.answer is None:
            return None
        question, hit = looked.question, looked.hit.answer
        understood = _understood(question)
        return Answer(
            question=question.text,
            answer=hit.answer,
            mode=hit.mode,
            cached=True,
            cache_tier=looked.hit.tier,
            sources=list(hit.sources),
            verification=hit.verification,
            notice=hit.notice,
            timings_ms={**question.timings_ms, "retrieve": 0.0, "generate": 0.0, "total": question.elapsed_ms()},
            understood_as=understood,
            understood_by=question.resolved_by if understood else "",
        )

    def cache_context(self, question: Question) -> CacheContext:
        engine = self.engine
        model = (engine.model_identity() or "none") if engine.available() else "none"
        return CacheContext(
            kb_version=self.manifest.kb_version(),
            model_id=f"{model}/{self.reader.mode}" if model != "none" else model,
            prompt_version=f"{self.cache.prompt_version}/{PROMPT_VERSION}/{READER_PROMPT_VERSION}",
            # the version links too: a sidecar edited alone changes which documents answer
            retrieval_key=f"{self.retriever.config_key()}/{self.reader.model_dump_json()}/{self.versions.key()}"
                          f"/{self.conversation.bare_retrieval}:{self.conversation.bare_margin}",
            filters_key=question.filters.cache_key() if question.filters else "",
        )

    # -- stages -------------------------------------------------------------------------
    def _read(self, question: Question) -> Question:
        resolved, by = question.text, ""
        if question.history:
            t0 = time.perf_counter()
            reading = self.followups.read([q for q, _ in question.history] + [question.text])
            resolved, by = reading.question, f"{reading.by} ({reading.note})" if reading.note else reading.by
            question.timings_ms["read"] = (time.perf_counter() - t0) * 1000
        return replace(question, resolved=resolved, resolved_by=by, reading=self.glossary.gloss(per_head(resolved)))

    def _cache_lookup(self, question: Question) -> Looked:
        t0 = time.perf_counter()
        looked = Looked(question)
        if question.use_cache and self.cache.enabled:
            context = self.cache_context(question)
            lookup = self.response_cache.lookup(question.standalone, context)
            looked = Looked(question, context, lookup.query_vector, lookup if lookup.answer is not None else None)
        question.timings_ms["cache"] = (time.perf_counter() - t0) * 1000
        return looked

    def _emit_cached(self, items: Iterator[Looked]) -> Iterator[StreamEvent]:
        for looked in items:
            answer = self.cached_answer(looked)
            if answer is not None:
                yield StreamEvent("token", text=answer.answer)
                yield StreamEvent("done", answer=answer)

    def _retrieve(self, looked: Looked) -> Found:
        t0 = time.perf_counter()
        question = looked.question
        query = question.read_as
        vector = looked.vector
        if vector is None or query != question.standalone:
            e0 = time.perf_counter()
            vector = self.embedder.embed_query_vector(query)
            question.timings_ms["embed"] = (time.perf_counter() - e0) * 1000
        retrieved = self._search(question, query, vector)
        if (self.conversation.bare_retrieval and question.history and question.standalone != question.text
                and len(set(content_stems(question.text))) >= 2):
            # the reading may be wrong ("what about the radio check?" read into the siren question): the
            # follow-up is looked up as asked too, and its passages answer when likelier relevant. Not a
            # fragment of one content word: "and for children?" alone finds passages about children,
            # which always look relevant, while the question is the water ration for children
            bare = self.glossary.gloss(per_head(question.text))
            alone = self._search(question, bare, self.embedder.embed_query_vector(bare))
            if _best(alone) > _best(retrieved) + self.conversation.bare_margin:
                # the question is then read as asked: "Understood as" would name a reading the answer did
                # not use. Not cached: the bare words ("and for children?") mean something else elsewhere
                looked = replace(looked, question=replace(question, reading=bare, resolved="", resolved_by=""),
                                 context=None)
                retrieved = alone
        question.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        return Found(looked, retrieved)

    def _search(self, question: Question, query: str, vector: np.ndarray) -> Retrieved:
        scope = self.versions.current_scope()  # superseded revisions are left out (answering/versions.py)
        hits = self.retriever.search(query, filters=question.filters, query_vector=vector, scope=scope)
        return Retrieved(hits, [h for h in hits if self.retriever.is_relevant(h)], vector)

    def _superseded(self, found: Found, used: list[Retrieved]) -> Retrieved | None:
        """The passages of superseded revisions only (asked for when the current ones do not answer)."""
        scope = self.versions.superseded_scope()
        if scope is None:
            return None
        question = found.looked.question
        hits = self.retriever.search(question.read_as, filters=question.filters,
                                     query_vector=found.retrieved.query_vector, scope=scope)
        older = Retrieved(hits, [h for h in hits if self.retriever.is_relevant(h)], found.retrieved.query_vector)
        used.append(older)
        return older

    def _answer(self, items: Iterator[Found]) -> Iterator[StreamEvent]:
        for found in items:
            question = found.looked.question
            used: list[Retrieved] = []  # the superseded revisions' passages, when they were read
            for event in self.writer.write(question, found.retrieved, lambda: self._superseded(found, used)):
                if event.kind == "done":
                    answer = event.answer
                    answer.understood_as = _understood(question)
                    answer.understood_by = question.resolved_by if answer.understood_as else ""
                    if answer.mode != "not-found" and answer.complete:
                        block = self._versions_block(answer, found.retrieved, used)
                        if block:
                            answer.answer += "\n\n" + block
                            yield StreamEvent("token", text="\n\n" + block)
                    worked = (worked_figures(question.standalone, answer.answer, earlier=[q for q, _ in question.history])
                              if answer.mode != "not-found" else [])
                    if worked and answer.complete:  # the officer's count through a quoted rate, by code
                        block = "\n\n" + render_worked(worked)
                        answer.answer += block
                        answer.worked = [w.text for w in worked]
                        yield StreamEvent("token", text=block)
                    self._store_if_cacheable(found, answer)
                yield event

    def _versions_block(self, answer: Answer, current: Retrieved, used: list[Retrieved]) -> str:
        """The superseded warning (an answer from an old revision) or the conflict block (two current
        documents' different figures for the same thing), to follow the answer's text."""
        if used:
            return self.versions.mark(answer, used[0].hits)
        return add_conflicts(answer, find_conflicts(answer, current.hits), current.hits)

    def _store_if_cacheable(self, found: Found, answer: Answer) -> None:
        """See the module docstring for what is cached and why. Quotes that replaced a model answer
        which failed verification are cached too: the same model on the same prompt fails the same
        way (greedy decoding), and without them every repeat of such a question paid a full
        generation."""
        looked = found.looked
        status = (answer.verification or {}).get("status")
        ran_to_end = answer.complete and answer.finish_reason in ("stop", "loop")
        cacheable = ran_to_end and answer.answer and (
            (answer.mode == "llm" and status in ("verified", "partial")) or answer.mode == "extractive")
        if not cacheable or looked.context is None:
            return
        question = looked.question
        cached = CachedAnswer(
            question=question.standalone, answer=answer.answer, mode=answer.mode, sources=answer.sources,
            created_at=time.time(), verification=answer.verification, notice=answer.notice,
        )
        self.response_cache.store(question.standalone, looked.context, cached, query_vector=looked.vector)


def _best(retrieved: Retrieved) -> float:
    """The calibrated relevance of the best passage (comparable across queries, unlike the ranking scores)."""
    return max((h.scores.get("relevance", 0.0) for h in retrieved.hits), default=0.0)


def _understood(question: Question) -> str:
    return question.standalone if question.standalone != question.text else ""
