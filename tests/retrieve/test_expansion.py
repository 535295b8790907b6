"""Query expansion (officer's word -> the knowledge base's word) and duplicate text shown once."""

from __future__ import annotations

import pytest

from neoc_assistant.language import wordnet
from neoc_assistant.retrieve.expansion import expansion_terms, lay_terms
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.lexical import plan_lexical


class _Stats:
    """Term statistics of a pretend knowledge base: chunk frequencies per (unstemmed) word."""

    def __init__(self, freqs: dict[str, int], total: int = 1000):
        self.freqs, self.total = freqs, total

    def index_terms(self, texts):
        return [{w} for w in texts]

    def lookup(self, terms):
        return {t: self.freqs.get(t, 0) for t in terms}, self.total


def test_lay_terms_are_data_and_map_to_kb_words_only():
    assert "generator" in lay_terms()["genny"]
    stats = _Stats({"generator": 40, "petrol": 0})
    assert "generator" in expansion_terms("can they run a petrol genny indoors", stats)
    # the knowledge base never says the doctrine word: nothing is added
    assert expansion_terms("can they run a petrol genny indoors", _Stats({})) == []


@pytest.mark.skipif(not wordnet.available(), reason="WordNet (wordnet-base) not installed")
def test_wordnet_expands_only_words_the_kb_does_not_use():
    stats = _Stats({"tornado": 120, "twister": 0, "signs": 300, "sign": 300, "mark": 50})
    added = expansion_terms("what are the signs a twister is coming", stats)
    assert "tornado" in added
    assert "mark" not in added  # "signs" is the documents' own word: not expanded


def test_expansions_never_enter_the_coverage_idf_and_come_after_own_terms():
    stats = _Stats({"genny": 1, "generator": 40})
    plan = plan_lexical("genny indoors", stats, 32, 10_000, extra=["generator"])
    assert "generator" in plan.kept and plan.match.index('"genny"') < plan.match.index('"generator"')
    assert "generator" not in plan.idf
    # the postings budget serves the officer's own words first
    tight = plan_lexical("genny indoors", _Stats({"genny": 1, "indoors": 5, "generator": 40}), 32, 10, extra=["generator"])
    assert "generator" in tight.dropped and "genny" in tight.kept


def test_duplicate_text_keeps_both_files_as_sources():
    form = Hit("a", 1.0, "ICS 206 medical plan", "pdf/ics_form_206.pdf", 1, sources=["pdf/ics_form_206.pdf"])
    booklet = Hit("b", 0.9, "ICS 206 medical plan", "pdf/forms_booklet.pdf", 12)
    form.add_sources(booklet)
    form.add_sources(booklet)
    assert form.source == "pdf/ics_form_206.pdf"
    assert form.sources == ["pdf/ics_form_206.pdf", "pdf/forms_booklet.pdf"]


@pytest.mark.skipif(not wordnet.available(), reason="WordNet (wordnet-base) not installed")
def test_wordnet_lookups_from_many_threads_neither_fail_nor_differ():
    """The adversarial test's race: 8 threads x 30 new words raised 8-27 errors per run
    (NLTK's reader shares one file position per data file), each a 500 under load."""
    import random
    import threading

    from neoc_assistant.retrieve.expansion import wordnet_synonyms

    wn = wordnet.wordnet()
    words = sorted(w for w in wn.all_lemma_names() if w.isalpha() and w.islower() and len(w) > 3)
    random.Random(7).shuffle(words)
    words = words[:1200]  # 5 rounds of 8 x 30 words never looked up before in this process
    results: dict[str, tuple] = {}
    errors: list[str] = []

    def work(chunk):
        for word in chunk:
            try:
                results[word] = (wordnet_synonyms(word), wordnet.common_word(word), wordnet.relation(word, "water"))
            except Exception as exc:  # noqa: BLE001 - collected: the test is that there are none
                errors.append(f"{word}: {exc!r}"[:160])

    for start in range(0, len(words), 240):
        threads = [threading.Thread(target=work, args=(words[start + i * 30:start + (i + 1) * 30],))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, f"{len(errors)} lookups failed, e.g. {errors[:3]}"
    # and each answer is the one a single thread gets from a cold reader
    for fn in (wordnet_synonyms, wordnet.common_word, wordnet.relation):
        fn.cache_clear()
    wn._synset_offset_cache.clear()
    serial = {w: (wordnet_synonyms(w), wordnet.common_word(w), wordnet.relation(w, "water")) for w in words}
    assert results == serial
