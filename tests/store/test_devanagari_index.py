"""The full-text index keeps Devanagari (Nepali) words whole, and an older index is rebuilt.

``unicode61`` alone cut a word at each vowel sign ("पानी" -> "प" + "न"), so "पानी" (water)
matched "पुनः" (again) and an OR of the pieces matched almost every Nepali chunk. Real
manifest (SQLite FTS5), real lexical query planning (``retrieve/lexical.py``).
"""

from __future__ import annotations

import sqlite3

import pytest

from neoc_assistant.retrieve.lexical import TermStatistics, fts_match_query
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import ChunkRecord, FileRecord

CHUNKS = {
    "water": "प्रत्येक व्यक्तिलाई दैनिक १५ लिटर पानी चाहिन्छ।",
    "again": "पुनः प्रयोग गर्नुहोस्।",  # shares only the letters प, न with पानी
    "flood": "बाढी आएमा तुरुन्त अग्लो स्थानमा जानुहोस्।",
    "english": "Each person needs 15 litres of water per day.",
}


def _add(manifest: Manifest, chunks: dict[str, str]) -> None:
    for n, (chunk_id, text) in enumerate(chunks.items()):
        doc = f"doc-{chunk_id}"
        manifest.commit_file(
            FileRecord(f"{chunk_id}.txt", "/kb", f"/kb/{chunk_id}.txt", 1, 1, doc, 0.0),
            document=dict(doc_hash=doc, title=chunk_id, doc_type="txt", n_pages=1, n_chunks=1, ingested_at=0.0),
            chunks=[ChunkRecord(chunk_id, doc, 0, 1, "", text, f"h{n}")],
        )


def _search(manifest: Manifest, question: str) -> list[str]:
    match = fts_match_query(question)
    assert match, question
    return [chunk_id for chunk_id, _ in manifest.lexical_search(match, 10)]


@pytest.fixture
def manifest(tmp_path):
    m = Manifest(tmp_path / "manifest.sqlite3")
    _add(m, CHUNKS)
    yield m
    m.close()


def test_a_nepali_word_finds_its_chunk_and_not_one_sharing_only_letters(manifest):
    assert _search(manifest, "पानी") == ["water"]
    assert _search(manifest, "पुनः") == ["again"]
    assert _search(manifest, "बाढी") == ["flood"]


def test_a_word_with_a_joined_postposition_meets_the_bare_word(manifest):
    """"स्थानमा" (at the place) in the document; "स्थान" (place) in the question, and the reverse."""
    assert _search(manifest, "स्थान") == ["flood"]
    assert _search(manifest, "व्यक्ति") == ["water"]
    assert _search(manifest, "पानीको मात्रा") == ["water"]


def test_devanagari_digits_and_a_second_spelling_are_the_same_term(manifest):
    assert set(_search(manifest, "15")) == {"water", "english"}
    assert set(_search(manifest, "१५")) == {"water", "english"}
    zwj = "पा\u200dनी"  # a zero-width joiner typed inside the word
    assert _search(manifest, zwj) == ["water"]


def test_index_terms_are_whole_nepali_words_and_the_english_ones_unchanged(manifest):
    nepali, english = TermStatistics(manifest).index_terms(
        ["दैनिक १५ लिटर पानी चाहिन्छ।", "Each person needs 15 litres of water"])
    assert nepali == {"दैनिक", "15", "लिटर", "पानी", "चाहिन्छ"}, nepali
    assert english == {"each", "person", "need", "15", "litr", "of", "water"}


def _old_manifest(path) -> None:
    """A manifest as the previous version made it: the plain ``unicode61`` index."""
    m = Manifest(path)
    _add(m, CHUNKS)
    m.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE chunks_fts")
    conn.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(text, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO chunks_fts(rowid, text) SELECT rowid, section || char(10) || text FROM chunks")
    conn.commit()
    conn.close()


def test_an_older_index_is_rebuilt_on_open_and_the_version_changes(tmp_path):
    from neoc_assistant.store.fulltext import FTS_TOKENIZER, table_tokenizer

    path = tmp_path / "manifest.sqlite3"
    _old_manifest(path)
    before = sqlite3.connect(path).execute("SELECT value FROM meta WHERE key='kb_version'").fetchone()[0]
    m = Manifest(path)
    assert table_tokenizer(m._conn()) == FTS_TOKENIZER
    assert m.kb_version() != before  # answers cached under the old index are not reused
    assert _search(m, "पानी") == ["water"]
    assert set(_search(m, "water litres")) == {"english"}
    m.close()


def test_a_read_only_older_index_is_still_searched(tmp_path, monkeypatch):
    """Opened read-only (a ``mode=ro`` connection: a rebuild would fail), it is searched as it is.
    Tests run as root, whom a chmod does not stop, so the permission check is what is replaced."""
    from neoc_assistant.store.fulltext import FTS_TOKENIZER, table_tokenizer

    path = tmp_path / "manifest.sqlite3"
    _old_manifest(path)
    monkeypatch.setattr("neoc_assistant.store.database.writable", lambda _path: False)
    m = Manifest(path)
    assert m.read_only and table_tokenizer(m._conn()) != FTS_TOKENIZER
    assert _search(m, "water") == ["english"]
    assert "water" in _search(m, "पानी")  # as the old index read it, not an error
    TermStatistics(m).index_terms(["पानी"])  # the scratch table takes the table's own tokenizer
    m.close()
