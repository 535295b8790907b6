"""The lexical (BM25) side of retrieval: safe FTS5 queries and term statistics.

User text is never passed to FTS5 as query syntax: it is split into word
tokens (the same letters-and-digits notion as FTS5's ``unicode61`` tokenizer),
stopwords are dropped, and every remaining term is double-quoted (a quoted
string is a plain phrase to FTS5, so ``AND``/``NEAR``/``*``/``:``/``-``/quotes
typed by a user are just text) and the terms are OR-ed, so a chunk matching
any term is a candidate and BM25 ranks by how many and how rare.

FTS5 evaluates BM25 for every row that matches, so ``plan_lexical`` searches
the rarest terms first within a postings budget (very common terms would make
it score most of the index for little ranking benefit), using chunk
frequencies from ``TermStatistics``. The same statistics give the IDF weights
of the query-term coverage feature (rerank and relevance).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from neoc_assistant.language.words import BM25_STOPWORDS

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)  # letters/digits; "_" separates, as in unicode61


def query_terms(text: str, max_terms: int = 32) -> list[str]:
    """Distinct lower-cased terms of ``text`` without stopwords, in order of appearance.

    If every token is a stopword (e.g. "who is it"), the stopwords are kept so
    the lexical list is not empty for no reason.
    """
    tokens = _TOKEN.findall(text.lower())
    kept = [t for t in tokens if t not in BM25_STOPWORDS] or tokens
    return list(dict.fromkeys(kept))[:max_terms]


def fts_match_query(text: str, max_terms: int = 32) -> str | None:
    """An FTS5 MATCH string OR-ing the quoted terms of ``text``; None if it has no terms."""
    terms = query_terms(text, max_terms)
    if not terms:
        return None
    return _or_of_quoted(terms)


def _or_of_quoted(terms: list[str]) -> str:
    # _TOKEN never yields a double quote, but escape anyway: the quoting is the safety.
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


class TermStatistics:
    """Index terms of texts, and chunk frequencies of index terms (cached per knowledge-base version).

    FTS5 keeps no document frequencies (each is a posting-list scan), so the
    whole table is read once per ``kb_version`` in a background thread; until
    it is ready (first queries after start-up or an ingest), frequencies are
    counted per term directly -- exact, just slower.

    ``index_terms`` stems through the index's own tokenizer (``Manifest.index_terms``)
    but caches the result per distinct word, so after warm-up a text costs a
    regex split and dictionary lookups rather than an FTS5 insert.
    """

    MAX_CACHED_WORDS = 500_000

    def __init__(self, manifest):
        self._manifest = manifest
        self._lock = threading.Lock()
        self._version: str | None = None
        self._freqs: dict[str, int] = {}
        self._total = 0
        self._loading: str | None = None
        self._ready = threading.Event()
        self._word_terms: dict[str, tuple[str, ...]] = {}
        self._words_lock = threading.Lock()

    def index_terms(self, texts: Sequence[str]) -> list[set[str]]:
        """The index terms of each text (as FTS5 would index it: case-folded, unaccented, Porter-stemmed)."""
        words = [set(_TOKEN.findall(text.lower())) for text in texts]
        with self._words_lock:
            cache = self._word_terms
            unknown = [w for w in set().union(*words) if w not in cache] if words else []
            if unknown:
                if len(cache) + len(unknown) > self.MAX_CACHED_WORDS:
                    cache = self._word_terms = {}
                for word, found in zip(unknown, self._manifest.index_terms(unknown)):
                    cache[word] = tuple(found)
        out = []
        for text_words in words:
            terms: set[str] = set()
            for word in text_words:
                terms.update(cache.get(word, ()))
            out.append(terms)
        return out

    def lookup(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        """({term: chunks containing it}, total chunks)."""
        terms = set(terms)
        version = self._manifest.kb_version()
        with self._lock:
            if self._version == version:
                return {t: self._freqs.get(t, 0) for t in terms}, self._total
        self._start_loading(version)
        return self._manifest.term_doc_freqs(terms), self._manifest.chunk_total()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the table for the current version is loaded (benchmarks, tests)."""
        self.lookup(())
        while True:
            if not self._ready.wait(timeout):
                return False
            with self._lock:
                if self._version == self._manifest.kb_version():
                    return True
                self._ready.clear()
            self.lookup(())

    def _start_loading(self, version: str) -> None:
        with self._lock:
            if self._loading == version:
                return
            self._loading = version
            self._ready.clear()
        threading.Thread(target=self._load, args=(version,), name="neoc-term-stats", daemon=True).start()

    def _load(self, version: str) -> None:
        try:
            freqs = self._manifest.term_doc_freqs()
            total = self._manifest.chunk_total()
        except Exception as exc:  # noqa: BLE001 - the direct path keeps working; retry on the next lookup
            log.warning("could not load term statistics (%s); counting per query", exc)
            with self._lock:
                self._loading = None
            return
        finally:
            self._manifest.close()  # this thread's connection
        with self._lock:
            self._version, self._freqs, self._total = version, freqs, total
            if self._loading == version:
                self._loading = None
            self._ready.set()


@dataclass
class LexicalPlan:
    """How one query is searched lexically, and the IDF of its terms (for relevance scoring)."""

    match: str | None  # FTS5 MATCH over the kept terms; None: nothing to search
    kept: list[str]
    dropped: list[str]  # too common: they would make BM25 score most of the index
    idf: dict[str, float] = field(default_factory=dict)  # index term -> IDF, for every query term


# Expansion words may use at most this share of the postings budget: they fill whatever the
# officer's own words leave, which on a 50k-chunk store pushed the BM25 stage's p95 from 19 to
# 28 ms (scripts/bench_retrieval.py); capped, retrieval stays under 50 ms p95.
EXTRA_POSTINGS_SHARE = 0.25


def plan_lexical(query: str, stats: TermStatistics, max_terms: int, max_postings: int,
                 extra: Sequence[str] = ()) -> LexicalPlan:
    """Choose the query terms BM25 searches: the rarest first, within a postings budget.

    FTS5 evaluates BM25 for every row matching any OR-ed term, so one common
    term ("incident" in a FEMA library) makes it score most of the index. Terms
    are taken in order of increasing chunk frequency while the sum of their
    frequencies stays within ``max_postings`` (the rarest term that occurs at
    all is always kept; 0 = no budget). Dropped terms have the lowest IDF, so they move BM25 the
    least; they still count in relevance coverage.

    ``extra`` (query expansion, ``expansion.py``) is searched too, but only within what the
    budget leaves after the query's own terms and within ``EXTRA_POSTINGS_SHARE`` of the budget,
    and it is left out of ``idf`` - relevance
    coverage counts the words the officer actually used.
    """
    terms = query_terms(query, max_terms)
    if not terms:
        return LexicalPlan(None, [], [])
    own = set(terms)
    extra = [t for t in dict.fromkeys(query_terms(" ".join(extra), max_terms)) if t not in own]
    stems = stats.index_terms(terms + extra)
    own_stems = set().union(*stems[: len(terms)])
    freqs, total = stats.lookup(set().union(*stems))
    idf = {t: math.log1p((total - df + 0.5) / (df + 0.5)) for t, df in freqs.items() if t in own_stems}
    df_of = {t: max((freqs.get(s, 0) for s in st), default=0) for t, st in zip(terms + extra, stems)}
    kept: list[str] = []
    used = extra_used = 0
    extra_budget = int(max_postings * EXTRA_POSTINGS_SHARE)
    for term in sorted(terms, key=lambda t: df_of[t]) + sorted(extra, key=lambda t: df_of[t]):
        is_extra = term not in own
        if is_extra and max_postings > 0 and extra_used + df_of[term] > extra_budget:
            continue
        # used == 0: nothing kept so far matches any chunk, so keep the rarest term that does.
        if used == 0 or max_postings <= 0 or used + df_of[term] <= max_postings:
            kept.append(term)
            used += df_of[term]
            extra_used += df_of[term] if is_extra else 0
    dropped = [t for t in terms + extra if t not in kept]
    kept = [t for t in terms + extra if t in kept]  # query order, for readable logs
    match = _or_of_quoted(kept) if kept else None
    return LexicalPlan(match, kept, dropped, idf)
