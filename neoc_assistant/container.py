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

        return Embedder(self.settings)

    @cached_property
    def ingestor(self):
        from neoc_assistant.ingest.pipeline import Ingestor

        return Ingestor(self.settings, self.manifest, self.vectors, self.embedder)

    @cached_property
    def retriever(self):
        from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever

        return KnowledgeBaseRetriever(self.settings, self.manifest, self.vectors, self.embedder)

    @cached_property
    def assistant(self):
        from neoc_assistant.service import Assistant

        return Assistant(self)
