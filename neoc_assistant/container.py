"""The wiring: the one place that builds every component from ``Settings`` and hands it its collaborators.

Read this file to see what depends on what. Each component gets exactly the
collaborators and the settings section it uses - never the whole
``Settings``, never this container - so its constructor says what can change
its behaviour. Three choices are made here by a setting, PrivateGPT-style:
the vector store (``store.vector_backend``: embedded Chroma, or a Chroma
server with this instance's manifest as its replica), the response cache's
shared tier (``cache.l2_backend``: disk, or Redis - which then also holds the
embedding cache and carries knowledge-base announcements) and the answer
writer (``generation.backend``: in-process llama.cpp, or OpenAI-compatible
servers). docs/deploy.md shows the layouts.

Components are built on first use and kept, so the CLI, the UI and tests
share one embedder, one Chroma client and one model pool per process; building
one loads no model and creates no file (those happen on first real use).
Tests inject stand-ins by name: ``Container(settings, embedder=shared, engine=fake)``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from neoc_assistant import runtime
from neoc_assistant.lazy import build_once
from neoc_assistant.settings import NEPALI_READING_MODELS, Settings

if TYPE_CHECKING:
    from neoc_assistant.answering import AnswerWriter
    from neoc_assistant.audit import AuditTrail
    from neoc_assistant.bundles.apply import BundleImporter
    from neoc_assistant.bundles.export import BundleExporter
    from neoc_assistant.cache.embedding_cache import EmbeddingCache
    from neoc_assistant.cache.query_log import QueryLog
    from neoc_assistant.cache.redis_tier import RedisLink
    from neoc_assistant.cache.response_cache import ResponseCache
    from neoc_assistant.reading.vocabulary import KBVocabulary
    from neoc_assistant.chain import RagChain
    from neoc_assistant.compose.reader import Reader
    from neoc_assistant.reading.followup_model import FollowupReader
    from neoc_assistant.reading.glossary import Glossary
    from neoc_assistant.generate.backend import GenerationBackend
    from neoc_assistant.ingest.isolation import IsolatedParser
    from neoc_assistant.ingest.pipeline import Ingestor
    from neoc_assistant.monitoring.health import HealthCheck
    from neoc_assistant.monitoring.metrics import Metrics
    from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever
    from neoc_assistant.service import Assistant
    from neoc_assistant.store.embeddings import Embedder
    from neoc_assistant.store.manifest import Manifest
    from neoc_assistant.store.vector_store import VectorStore
    from neoc_assistant.verify.verifier import AnswerVerifier


class Container:
    def __init__(self, settings: Settings, **overrides: Any):
        runtime.configure_process()
        self.settings = settings
        self._built: dict[str, Any] = dict(overrides)
        # Re-entrant: building one component builds its collaborators. Without it two first
        # requests of the UI server could load two embedders or two models at once.
        self._lock = threading.RLock()

    def _once(self, name: str, build: Callable[[], Any]) -> Any:
        return build_once(self._built, name, self._lock, build)

    # -- store ------------------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        """The local manifest; with a Chroma server, a replica of its catalog (re-synced at once when
        another instance announces a change on Redis)."""
        return self._once("manifest", self._build_manifest)

    def _build_manifest(self) -> Manifest:
        from neoc_assistant.store.manifest import Manifest

        s = self.settings
        if s.store.vector_backend != "chroma-server":
            return Manifest(s.paths.manifest_path)
        from neoc_assistant.store.chroma_server import ChromaCatalog
        from neoc_assistant.store.replica import ReplicatedManifest

        manifest = ReplicatedManifest(s.paths.manifest_path, ChromaCatalog(s.store, s.store.chroma_url),  # type: ignore[arg-type]
                                      interval_seconds=s.store.sync_interval_seconds)
        if self.redis is not None:
            self.redis.subscribe_kb(manifest.request_sync)
        return manifest

    @property
    def vectors(self) -> VectorStore:
        from neoc_assistant.store.embedders import collection_for
        from neoc_assistant.store.factory import open_vector_store

        s = self.settings  # each embedding model has its own collection (store/embedders.py)
        return self._once("vectors", lambda: open_vector_store(collection_for(s.store, s.embedding), s.paths.chroma_dir))

    @property
    def embedder(self) -> Embedder:
        from neoc_assistant.store.embedders import open_embedder

        s = self.settings
        return self._once("embedder", lambda: open_embedder(s.embedding, cache=self.embedding_cache))

    @property
    def embedding_cache(self) -> EmbeddingCache | None:
        """None when caching is off: every vector is then computed."""
        from neoc_assistant.cache.embedding_cache import EmbeddingCache

        s = self.settings
        return self._once("embedding_cache", lambda: EmbeddingCache(
            s.paths.cache_dir / "embeddings", s.cache.embedding_size_limit_mb,
            open_store=self._redis_blob_store if self.redis is not None else None) if s.cache.enabled else None)

    def _redis_blob_store(self):
        from neoc_assistant.cache.redis_tier import RedisBlobStore

        return RedisBlobStore(self.redis)

    @property
    def redis(self) -> RedisLink | None:
        """The process's Redis connection, when the cache's shared tier is Redis (else None)."""
        c = self.settings.cache
        return self._once("redis", lambda: self._build_redis() if c.enabled and c.l2_backend == "redis" else None)

    def _build_redis(self) -> RedisLink:
        from neoc_assistant.cache.redis_tier import RedisLink

        c = self.settings.cache
        return RedisLink(c.redis_url,  # type: ignore[arg-type]  # l2_backend = redis requires it
                         timeout=c.redis_timeout_seconds, retry_seconds=c.redis_retry_seconds,
                         prefix=c.redis_prefix, on_event=self.metrics.cache_event)

    # -- ingest and retrieve -------------------------------------------------------------------------
    @property
    def ingestor(self) -> Ingestor:
        from neoc_assistant.ingest.pipeline import Ingestor

        s = self.settings
        return self._once("ingestor", lambda: Ingestor(s.store, s.paths.data_dir, s.paths.kb_dir, self.manifest,
                                                       self.vectors, self.embedder, self.parser))

    @property
    def parser(self) -> IsolatedParser:
        """Reads each file in a child process with the store section's caps and the OCR settings (ingest/isolation.py)."""
        from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits

        s = self.settings
        return self._once("parser", lambda: IsolatedParser(ParseLimits.from_settings(s.store, s.ocr)))

    @property
    def retriever(self) -> KnowledgeBaseRetriever:
        from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever

        s = self.settings
        return self._once("retriever", lambda: KnowledgeBaseRetriever(
            s.retrieval, self.manifest, self.vectors, self.embedder, device=s.embedding.device,
            reads_nepali=s.embedding.model in NEPALI_READING_MODELS))

    # -- knowledge-base bundles (bundles/) -------------------------------------------------------------
    @property
    def trusted_keys_dir(self):
        s = self.settings
        return s.bundles.trusted_keys_dir or s.paths.data_dir / "trusted-keys"

    def _bundle_limits(self):
        from neoc_assistant.ingest.packages import PackageLimits

        b = self.settings.bundles
        return PackageLimits(b.max_unpacked_mb_per_member, b.max_unpacked_mb_per_file, b.max_compression_ratio)

    @property
    def bundle_exporter(self) -> BundleExporter:
        from neoc_assistant.bundles.export import BundleExporter

        s = self.settings
        return self._once("bundle_exporter", lambda: BundleExporter(
            self.manifest, self.vectors, s.paths.data_dir / "bundles" / "exported", self._bundle_limits()))

    @property
    def bundle_importer(self) -> BundleImporter:
        from neoc_assistant.bundles.apply import BundleImporter

        return self._once("bundle_importer", lambda: BundleImporter(
            self.manifest, self.vectors, self.ingestor, model_id=lambda: self.embedder.model_id,
            trusted_dir=self.trusted_keys_dir, limits=self._bundle_limits(), source_scheme=self.ingestor.source_scheme))

    # -- cache -------------------------------------------------------------------------------------------
    @property
    def vocabulary(self) -> KBVocabulary:
        from neoc_assistant.reading.vocabulary import KBVocabulary

        s = self.settings
        return self._once("vocabulary", lambda: KBVocabulary(
            self.manifest, s.paths.kb_dir, s.paths.cache_dir / "vocabulary", self.embedder))

    @property
    def response_cache(self) -> ResponseCache:
        return self._once("response_cache", self._build_response_cache)

    def _build_response_cache(self) -> ResponseCache:
        from neoc_assistant.cache.agreement import RetrievalAgreement
        from neoc_assistant.cache.response_cache import ResponseCache

        s = self.settings
        cache = ResponseCache(s.cache, s.paths.cache_dir / "responses", self.embedder, vocabulary=self.vocabulary,
                              on_event=self.metrics.cache_event, latency_window=s.monitoring.metrics_window,
                              redis=self.redis,
                              corroborate=RetrievalAgreement(self.retriever, s.cache.agreement_top_n,
                                                             s.cache.agreement_min_shared))
        if self.redis is not None:
            self.redis.subscribe_kb(cache.on_announced)
        return cache

    @property
    def query_log(self) -> QueryLog:
        from neoc_assistant.cache.query_log import QueryLog

        s = self.settings
        return self._once("query_log", lambda: QueryLog(s.paths.log_dir, enabled=s.cache.query_log_enabled))

    # -- generate and verify ---------------------------------------------------------------------------
    @property
    def engine(self) -> GenerationBackend:
        from neoc_assistant.generate.factory import open_generation_backend

        return self._once("engine", lambda: open_generation_backend(
            self.settings.generation, on_guard_action=self.metrics.count_guard_action,
            shed_cache=self._shed_l1_cache))

    def _shed_l1_cache(self) -> int:
        cache = self._built.get("response_cache")  # nothing to shed if it was never built
        return cache.shed_l1(0.5) if cache is not None else 0

    @property
    def verifier(self) -> AnswerVerifier:
        from neoc_assistant.verify.nli import CrossEncoderEntailment
        from neoc_assistant.verify.support import SupportChecker, SupportThresholds
        from neoc_assistant.verify.verifier import AnswerVerifier

        v = self.settings.verification
        return self._once("verifier", lambda: AnswerVerifier(SupportChecker(
            self.embedder, SupportThresholds.from_settings(v),
            CrossEncoderEntailment(v.nli_model_path) if v.nli_model_path else None)))

    # -- the question path and the front door ------------------------------------------------------------
    @property
    def reader(self) -> Reader:
        from neoc_assistant.compose.extracts import ExtractWeights
        from neoc_assistant.compose.reader import Reader, ReaderRules

        r = self.settings.reader
        weights = ExtractWeights(term_weight=r.term_weight, ask_weight=r.ask_weight, length_penalty=r.length_penalty,
                                 rank_penalty=r.rank_penalty, max_statements=r.max_statements, unit=r.unit)
        return self._once("reader", lambda: Reader(ReaderRules(
            weights=weights, min_coverage=r.min_coverage, second_margin=r.second_margin, max_extracts=r.max_extracts,
            max_list_items=r.max_list_items, max_block=r.max_block,
            second_from_other_passage=r.second_from_other_passage)))

    @property
    def glossary(self) -> Glossary:
        from neoc_assistant.reading.glossary import default_glossary

        return self._once("glossary", default_glossary)

    @property
    def writer(self) -> AnswerWriter:
        from neoc_assistant.answering import AnswerWriter
        from neoc_assistant.answering.written import WrittenWriter
        from neoc_assistant.compose.model_choice import ModelChooser

        s = self.settings
        return self._once("writer", lambda: AnswerWriter(
            engine=self.engine, checker=self.verifier.checker, reader=self.reader,
            written=WrittenWriter(self.engine, self.verifier, s.generation, s.verification.extractive_off_topic_margin),
            chooser=ModelChooser(self.engine, s.reader.model_offered), vocabulary=self.vocabulary,
            manifest=self.manifest, glossary=self.glossary, reading=s.reader, verification=s.verification))

    @property
    def chain(self) -> RagChain:
        from neoc_assistant.chain import RagChain

        s = self.settings
        return self._once("chain", lambda: RagChain(
            retriever=self.retriever, embedder=self.embedder, engine=self.engine,
            response_cache=self.response_cache, manifest=self.manifest, glossary=self.glossary, cache=s.cache,
            reader=s.reader, writer=self.writer, followups=self.followups, conversation=s.conversation))

    @property
    def followups(self) -> FollowupReader:
        """``conversation.resolver``: the rules alone, or a model (the answer model, or its own small
        GGUF at ``conversation.model_path``) whose rewrites the rules guard."""
        return self._once("followups", self._build_followups)

    def _build_followups(self) -> FollowupReader:
        from neoc_assistant.reading.followup_model import ModelFollowups, RulesFollowups

        s = self.settings
        if s.conversation.resolver == "rules":
            return RulesFollowups(self.embedder.encode)
        engine = self.engine
        if s.conversation.model_path is not None:  # its own engine: one slot, a short context
            from neoc_assistant.generate.factory import open_generation_backend

            engine = self._once("followup_engine", lambda: open_generation_backend(s.generation.model_copy(update={
                "backend": "llamacpp", "model_path": s.conversation.model_path, "n_ctx": 1024, "pool_size": 1})))
        return ModelFollowups(engine, self.embedder.encode, s.conversation)

    @property
    def metrics(self) -> Metrics:
        from neoc_assistant.monitoring.metrics import Metrics

        s = self.settings
        return self._once("metrics", lambda: Metrics(s.monitoring, s.paths.log_dir, pool_stats=self._pool_stats,
                                                     backend=s.generation.backend))

    def _pool_stats(self) -> dict | None:
        engine = self._built.get("engine")  # never build or load the engine just to sample it
        return engine.pool_stats() if engine is not None and engine.model_loaded else None

    @property
    def health(self) -> HealthCheck:
        from neoc_assistant.monitoring.health import HealthCheck

        s = self.settings
        return self._once("health", lambda: HealthCheck(s.paths, s.generation, s.monitoring, self.engine,
                                                        self.manifest, self.vectors, redis=self.redis))

    @property
    def assistant(self) -> Assistant:
        from neoc_assistant.service import Assistant

        s = self.settings
        return self._once("assistant", lambda: Assistant(
            paths=s.paths, serve=s.serve, cache=s.cache, monitoring=s.monitoring, generation=s.generation,
            manifest=self.manifest,
            ingestor=self.ingestor, retriever=self.retriever, embedder=self.embedder, chain=self.chain,
            engine=self.engine, response_cache=self.response_cache, embedding_cache=self.embedding_cache,
            query_log=self.query_log, metrics=self.metrics, health=self.health, audit=self.audit,
            bundles=self._bundles))

    def _bundles(self):
        """The exporter, the importer and the trusted-keys folder, built when a bundle command first asks."""
        from neoc_assistant.bundles.tools import BundleTools

        s = self.settings
        return BundleTools(self.bundle_exporter, self.bundle_importer, self.trusted_keys_dir, s.bundles.signing_key,
                           shared_store=s.store.vector_backend == "chroma-server")

    @property
    def audit(self) -> AuditTrail | None:
        """The audit trail in ``paths.log_dir/audit`` (None when ``audit.enabled`` is off)."""
        from neoc_assistant.audit import AuditTrail

        s = self.settings
        return self._once("audit", lambda: AuditTrail(s.paths.log_dir / "audit", retention_days=s.audit.retention_days)
                          if s.audit.enabled else None)
