"""Response and embedding caches.

``response_cache.ResponseCache`` answers a question already answered (exact
or semantic match, L1 memory / L2 disk tiers in ``tiers.py``, entries and keys
in ``entries.py``), never a different one: ``reading.guard.Guard`` refuses
near-misses (numbers, places, negation, antonyms, ...); how a question is read
lives in ``neoc_assistant/reading/``. ``coherence.py`` keeps processes and kb versions in step;
``cache_stats.py`` counts. ``embedding_cache.EmbeddingCache`` is the
Embedder's vector cache; ``query_log.QueryLog`` and ``warming.warm`` replay
frequent questions.
"""
