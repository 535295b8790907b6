"""Response and embedding caches.

``response_cache.ResponseCache`` (semantic cache: exact + embedding lookup,
L1 memory / L2 disk tiers, KB-version invalidation) guarded by ``guard.Guard``
(refuses near-misses: numbers, places, negation, antonyms, ...);
``embedding_cache.EmbeddingCache`` (the Embedder's vector cache);
``query_log.QueryLog`` and ``warming.warm`` (replaying frequent questions).
"""
