"""Wiring: build every component from one ``Settings``, once, lazily.

Nothing here loads a model at import time. Each property creates its
component on first use and keeps it, so the CLI, the UI and tests share one
embedder, one Chroma client and one model pool per process. Tests inject
small components by passing them to the constructor.
"""

from __future__ import annotations

from functools import cached_property

from neoc_assistant.settings import Settings


class Container:
    def __init__(self, settings: Settings, **overrides):
        self.settings = settings
        for name, component in overrides.items():
            # cached_property stores into the instance dict, so this injects.
            self.__dict__[name] = component

    @cached_property
    def manifest(self):
        from neoc_assistant.store.manifest import Manifest

        return Manifest(self.settings.manifest_path)

    @cached_property
    def vectors(self):
        from neoc_assistant.store.vector_store import VectorStore

        return VectorStore(self.settings)

    @cached_property
    def embedder(self):
        from neoc_assistant.store.embeddings import Embedder

        return Embedder(self.settings, cache=self.embedding_cache if self.settings.cache_enabled else None)

    @cached_property
    def embedding_cache(self):
        from neoc_assistant.cache.embedding_cache import EmbeddingCache

        return EmbeddingCache(self.settings)

    @cached_property
    def vocabulary(self):
        from neoc_assistant.cache.vocabulary import KBVocabulary

        s = self.settings
        return KBVocabulary(s.manifest_path, s.kb_dir, s.cache_dir / "vocabulary", self.embedder)

    @cached_property
    def response_cache(self):
        from neoc_assistant.cache.response_cache import ResponseCache

        return ResponseCache(self.settings, self.embedder, vocabulary=self.vocabulary,
                             on_event=self.metrics.cache_event)

    @cached_property
    def verifier(self):
        from neoc_assistant.verify.support import SupportChecker, SupportThresholds
        from neoc_assistant.verify.verifier import AnswerVerifier

        s = self.settings
        thresholds = SupportThresholds.from_settings(s)
        entailment = None
        if s.nli_model_path:
            from neoc_assistant.verify.nli import CrossEncoderEntailment

            entailment = CrossEncoderEntailment(s.nli_model_path)
        return AnswerVerifier(SupportChecker(self.embedder, thresholds, entailment))

    @cached_property
    def query_log(self):
        from neoc_assistant.cache.query_log import QueryLog

        return QueryLog(self.settings)

    @cached_property
    def ingestor(self):
        from neoc_assistant.ingest.pipeline import Ingestor

        return Ingestor(self.settings, self.manifest, self.vectors, self.embedder)

    @cached_property
    def retriever(self):
        from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever

        return KnowledgeBaseRetriever(self.settings, self.manifest, self.vectors, self.embedder)

    @cached_property
    def engine(self):
        from neoc_assistant.generate.engine import GenerationEngine

        return GenerationEngine(
            self.settings,
            on_guard_action=lambda action: self.metrics.count_guard_action(action),
            shed_cache=self._shed_l1_cache,
        )

    def _shed_l1_cache(self) -> int:
        cache = self.__dict__.get("response_cache")  # nothing to shed if it was never built
        return cache.shed_l1(0.5) if cache is not None else 0

    @cached_property
    def chain(self):
        from neoc_assistant.chain import RagChain

        return RagChain(self)

    @cached_property
    def assistant(self):
        from neoc_assistant.service import Assistant

        return Assistant(self)

    @cached_property
    def metrics(self):
        from neoc_assistant.monitoring.metrics import Metrics

        def pool_stats():
            engine = self.__dict__.get("engine")  # never build or load the engine just to sample it
            return engine.pool_stats() if engine is not None else None

        return Metrics(self.settings, pool_stats=pool_stats)
