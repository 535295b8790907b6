"""The knowledge-base retriever as a LangChain ``BaseRetriever``.

So LCEL chains can compose it (``retriever | format_docs | prompt | llm``).
Each ``Document`` carries the passage text and metadata ``source``, ``page``,
``chunk_id``, ``score`` (final ranking score), ``relevance`` (calibrated,
comparable across queries), ``relevant`` (at or above the floor),
``section``, ``sources`` and ``doc_hash``.

Per call, ``invoke`` accepts ``k=``, ``filters=`` (a ``SearchFilters``) and
``query_vector=`` (a vector already computed, e.g. by the cache lookup, so the
query is embedded once) as keyword arguments. This module depends on the
retriever, never the other way round: ``as_langchain(retriever)`` wraps one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever
from neoc_assistant.retrieve.search import SearchFilters


def hit_to_document(hit: Hit, relevant: bool) -> Document:
    return Document(
        page_content=hit.text,
        id=hit.chunk_id,
        metadata={
            "source": hit.source,
            "page": hit.page,
            "chunk_id": hit.chunk_id,
            "score": float(hit.score),
            "relevance": float(hit.scores.get("relevance", 0.0)),
            "relevant": relevant,
            "section": hit.section,
            "sources": list(hit.sources),
            "doc_hash": hit.doc_hash,
        },
    )


class KnowledgeBaseLangChainRetriever(BaseRetriever):
    """Wraps ``KnowledgeBaseRetriever``; ``relevant_only`` drops hits below the relevance floor."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: KnowledgeBaseRetriever
    k: int | None = None
    filters: SearchFilters | None = None
    relevant_only: bool = False

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
        **_: Any,
    ) -> list[Document]:
        result = self.retriever.retrieve(
            query,
            k=k or self.k,
            filters=filters if filters is not None else self.filters,
            query_vector=query_vector,
        )
        relevant_ids = {h.chunk_id for h in result.relevant}
        hits = result.relevant if self.relevant_only else result.hits
        return [hit_to_document(h, h.chunk_id in relevant_ids) for h in hits]


def as_langchain(retriever: KnowledgeBaseRetriever, k: int | None = None, filters: SearchFilters | None = None,
                 relevant_only: bool = False) -> KnowledgeBaseLangChainRetriever:
    """``retriever`` as a LangChain ``BaseRetriever``."""
    return KnowledgeBaseLangChainRetriever(retriever=retriever, k=k, filters=filters, relevant_only=relevant_only)
