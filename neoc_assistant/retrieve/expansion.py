"""Query expansion for the lexical side: the officer's word -> the knowledge base's word.

Why
---
Duty officers ask in their own words ("chopper", "loft", "petrol genny",
"twister") while the documents say "helicopter", "attic", "gasoline
generator", "tornado". BM25 then has nothing to match on and the vector side
alone must carry the question. Expansion adds, to the BM25 query only, words
that (1) an English lexical resource says mean the same thing in a *common*
sense and (2) the knowledge base actually uses - a synonym the documents never
say cannot help and only costs postings.

Two sources, both filtered by the knowledge base's own term statistics:

* WordNet 3.0 (``language/wordnet.py``, offline): single-word lemmas sharing
  one of the first ``TOP_SENSES`` senses of a query word;
* ``language/data/lay_terms.toml``: lay and British words WordNet does not
  relate to the doctrine word ("genny" -> "generator", "sheet" -> "form").

Added terms only ever *add* BM25 candidates and score (they are OR-ed like the
query's own terms); the query vector is unchanged, so a wrong expansion costs
ranking noise, never a missing exact match. The query's own words are tried
first by the postings budget (``plan_lexical``), then the expansions.
"""

from __future__ import annotations

import re
from functools import lru_cache

from neoc_assistant.language import wordnet
from neoc_assistant.language.words import BM25_STOPWORDS, load

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
TOP_SENSES = 2
MAX_PER_WORD = 3
RARE_CHUNKS = 5


@lru_cache(maxsize=1)
def lay_terms() -> dict[str, tuple[str, ...]]:
    """``{lay word: (knowledge-base words, ...)}`` from ``lay_terms.toml``, both directions not implied."""
    data = load("lay_terms")
    return {k.lower(): tuple(v.lower().split() if isinstance(v, str) else [w.lower() for w in v])
            for k, v in data.get("terms", {}).items()}


@lru_cache(maxsize=20_000)
def wordnet_synonyms(word: str) -> tuple[str, ...]:
    """Single-word, lower-case lemmas sharing one of the word's first ``TOP_SENSES`` senses (any part of speech)."""
    wn = wordnet.wordnet()
    if wn is None or not word.isalpha() or len(word) < 3:
        return ()
    out: dict[str, None] = {}
    for pos in ("n", "v", "a"):
        for synset in wn.synsets(word, pos)[:TOP_SENSES]:
            for lemma in synset.lemmas():
                name = lemma.name()
                if name.islower() and name.isalpha() and name != word:
                    out.setdefault(name, None)
    return tuple(out)


def expansion_terms(query: str, stats, max_terms: int = 8) -> list[str]:
    """Words to add to the BM25 query: related to a query word and used by the knowledge base.

    A WordNet synonym is looked for only when the query word itself is rare in the knowledge
    base (in fewer than ``RARE_CHUNKS`` chunks: the officer's word is not the documents' word),
    and kept only when the knowledge base uses it at least that often. Common words ("say",
    "one", "run") are the documents' words already; expanding them only adds noise.
    """
    words = [w for w in dict.fromkeys(_TOKEN.findall(query.lower())) if w not in BM25_STOPWORDS and w.isalpha()]
    if not words:
        return []
    own = set(words)
    lay = lay_terms()
    wn = {w: wordnet_synonyms(w) for w in words}
    names = list(dict.fromkeys(words + [c for w in words for c in lay.get(w, ()) + wn[w]]))
    stems = stats.index_terms(names)
    freqs, _total = stats.lookup(set().union(*stems))
    df = {n: min((freqs.get(x, 0) for x in st), default=0) for n, st in zip(names, stems)}
    out: dict[str, None] = {}
    for w in words:
        candidates = [c for c in lay.get(w, ()) if df[c] > 0]
        if df[w] < RARE_CHUNKS:
            candidates += [c for c in wn[w] if df[c] >= RARE_CHUNKS][:MAX_PER_WORD]
        for c in candidates:
            if c not in own and c not in BM25_STOPWORDS:
                out.setdefault(c, None)
    return list(out)[:max_terms]
