"""The RAG chain: cache → retrieve → write the answer (``answering.py``) → cache, as LangChain runnables.

Each stage is a small function over one ``ChainState``; LangChain composes them
(``RunnableBranch`` short-circuits cache hits, ``RunnableGenerator`` streams
tokens), so ``chain.stream(state)`` yields ``StreamEvent``s and ends with one
``done`` event carrying the ``Answer``.

Decisions that matter for safety:
- the question is embedded once (by the cache lookup) and the vector is reused
  by retrieval;
- the model is not called when nothing passes the relevance floor, nor when
  the question names something the passages never mention (a district, a
  year, a phone number: ``verify/answerability.py``) - "not-found", with the
  part that was not found;
- the model's text reaches the user only claim by claim, after each claim was
  checked against the passages (``verify/``); unsupported claims are removed
  and listed; if nothing survives - or there is no model - the answer is the
  documents' own best sentences, labelled as quotes ("extractive");
- only complete, verified, model-written answers are stored in the cache
  (never one cut off at the length limit); follow-up questions (with
  conversation history) neither read nor write the cache, because the same
  words can mean something else in another conversation.
"""

from __future__ import annotations

import time
from typing import Iterator

from langchain_core.runnables import RunnableBranch, RunnableGenerator, RunnableLambda

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.answering import AnswerWriter
from neoc_assistant.cache.entries import CacheContext, CachedAnswer
from neoc_assistant.cache.response_cache import ResponseCache
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.generate.prompt import PROMPT_VERSION
from neoc_assistant.question import ChainState
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever
from neoc_assistant.settings import CacheSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest

__all__ = ["ChainState", "RagChain"]


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
        cache: CacheSettings,
        writer: AnswerWriter,
    ):
        """``manifest`` and ``engine``: the knowledge-base version and the model identity, both part
        of every cache key; ``writer``: the last stage, which writes the answer."""
        self.retriever = retriever
        self.embedder = embedder
        self.engine = engine
        self.response_cache = response_cache
        self.manifest = manifest
        self.cache = cache
        self.writer = writer
        self.runnable = RunnableBranch(
            (lambda s: s.cached is not None, RunnableGenerator(self._emit_cached)),
            RunnableLambda(self._retrieve) | RunnableGenerator(self._answer),
        )
        self.pipeline = RunnableLambda(self._cache_lookup) | self.runnable

    # -- public -----------------------------------------------------------------------
    def stream(self, state: ChainState) -> Iterator[StreamEvent]:
        yield from self.pipeline.stream(state)

    # -- stages -------------------------------------------------------------------------
    def cache_context(self, state: ChainState) -> CacheContext:
        engine = self.engine
        return CacheContext(
            kb_version=self.manifest.kb_version(),
            model_id=(engine.model_identity() or "none") if engine.available() else "none",
            prompt_version=f"{self.cache.prompt_version}/{PROMPT_VERSION}",
            retrieval_key=self.retriever.config_key(),  # every retrieval setting can change the passages
            filters_key=state.filters.cache_key() if state.filters else "",
        )

    def _cache_usable(self, state: ChainState) -> bool:
        return state.use_cache and self.cache.enabled and not state.history

    def _cache_lookup(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        if self._cache_usable(state):
            state.cache_context = self.cache_context(state)
            lookup = self.response_cache.lookup(state.question, state.cache_context)
            state.query_vector = lookup.query_vector
            if lookup.answer is not None:
                state.cached = lookup
        state.timings_ms["cache"] = (time.perf_counter() - t0) * 1000
        return state

    def _emit_cached(self, states: Iterator[ChainState]) -> Iterator[StreamEvent]:
        for state in states:
            hit = state.cached.answer
            answer = Answer(
                question=state.question,
                answer=hit.answer,
                mode=hit.mode,
                cached=True,
                cache_tier=state.cached.tier,
                sources=list(hit.sources),
                verification=hit.verification,
                notice=hit.notice,
                timings_ms={**state.timings_ms, "retrieve": 0.0, "generate": 0.0, "total": state.elapsed_ms()},
            )
            yield StreamEvent("token", text=answer.answer)
            yield StreamEvent("done", answer=answer)

    def _retrieve(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        retriever = self.retriever
        query = state.question
        if state.history:
            # A follow-up ("and for children?") is retrieved together with the previous question.
            query = f"{state.history[-1][0]} {state.question}"
            state.query_vector = None
        if state.query_vector is None:
            e0 = time.perf_counter()
            state.query_vector = self.embedder.embed_query_vector(query)
            state.timings_ms["embed"] = (time.perf_counter() - e0) * 1000
        state.hits = retriever.search(query, filters=state.filters, query_vector=state.query_vector)
        state.relevant = [h for h in state.hits if retriever.is_relevant(h)]
        state.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        return state

    def _answer(self, states: Iterator[ChainState]) -> Iterator[StreamEvent]:
        for state in states:
            for event in self.writer.write(state):
                if event.kind == "done":
                    self._store_if_cacheable(state, event.answer)
                yield event

    def _store_if_cacheable(self, state: ChainState, answer: Answer) -> None:
        """What the model's run ended with, if it ran to its end: its verified sentences, or the
        documents' quotes that replaced an answer which failed verification. Those quotes are cached
        too: the same model on the same prompt fails the same way (greedy decoding), and without them
        every repeat of such a question paid a full generation (with SmolLM2 most answers end as
        quotes, so under load the cache hit almost nothing). Never cached: an answer cut off
        (length limit, server failure) or cancelled, and quotes given *instead of* running the model
        (no model, busy, servers down: ``finish_reason`` is empty) - next time the model may answer."""
        status = (answer.verification or {}).get("status")
        ran_to_end = answer.complete and answer.finish_reason in ("stop", "loop")
        cacheable = ran_to_end and answer.answer and (
            (answer.mode == "llm" and status in ("verified", "partial")) or answer.mode == "extractive")
        if not cacheable or state.cache_context is None:
            return
        cached = CachedAnswer(
            question=state.question, answer=answer.answer, mode=answer.mode, sources=answer.sources,
            created_at=time.time(), verification=answer.verification, notice=answer.notice,
        )
        self.response_cache.store(state.question, state.cache_context, cached, query_vector=state.query_vector)
