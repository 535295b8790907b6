"""Retrieval agreement: the extra evidence a relaxed cache match needs.

The guard accepts two questions outright only when every content word is
explained (same word, inflection, typo, KB acronym, listed synonym). When the
only differences are words WordNet relates ("procedure"/"process",
"warn"/"alert"), its verdict says ``needs_evidence``: WordNet knows English
senses, not what this knowledge base means by a word ("shelter" and "camp"
are different things in a flood SOP). The evidence is the knowledge base
itself: both questions are searched and must lead to the same passages - the
best passage of each is among the other's top ``top_n``, and at least
``min_shared`` of the two top lists are the same chunks. The number, place,
negation, role and order checks have run before this and are never relaxed.

The cached question is searched with its stored vector and the new question
with the vector the lookup already computed, so this costs two searches
(tens of milliseconds) and only for relaxed candidates. Searches are
unfiltered: the entry's context already fixed the filters, and agreement on
the whole knowledge base is the stricter test.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


class RetrievalAgreement:
    def __init__(self, retriever, top_n: int = 3, min_shared: int = 2):
        self.retriever = retriever
        self.top_n = top_n
        self.min_shared = min_shared

    def __call__(self, cached: str, cached_vector: np.ndarray, incoming: str, incoming_vector: np.ndarray) -> bool:
        try:
            a = [h.chunk_id for h in self.retriever.search(cached, k=self.top_n, query_vector=cached_vector)]
            b = [h.chunk_id for h in self.retriever.search(incoming, k=self.top_n, query_vector=incoming_vector)]
        except Exception as exc:  # noqa: BLE001 - no evidence: the relaxed match is refused
            log.warning("retrieval agreement unavailable: %s", exc)
            return False
        if not a or not b:
            return False
        return a[0] in b and b[0] in a and len(set(a) & set(b)) >= min(self.min_shared, len(a), len(b))
