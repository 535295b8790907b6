"""Response and embedding caches.

``response_cache.ResponseCache`` answers a question already answered (exact
or semantic match, L1 memory / L2 disk tiers in ``tiers.py``, entries and keys
in ``entries.py``), never a different one: ``guard.Guard`` refuses near-misses
(numbers, places, negation, antonyms, ...), reading questions with
``question_features.py`` and the knowledge base's own words (``lexicon.py``,
``vocabulary.py``). ``coherence.py`` keeps processes and kb versions in step;
``cache_stats.py`` counts. ``embedding_cache.EmbeddingCache`` is the
Embedder's vector cache; ``query_log.QueryLog`` and ``warming.warm`` replay
frequent questions.
"""
