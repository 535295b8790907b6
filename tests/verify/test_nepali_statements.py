"""A Nepali-only passage is statements the reader can quote: split at the danda, words counted.

Before: a statement needed two Latin words or digits, so a Nepali paragraph had none, and
"।" did not end a sentence; a Nepali question then always got "not found".
The end-to-end test is the real Assistant on a tmp knowledge base (no model: the reader
quotes), found by the lexical path; the MiniLM vectors are weak for Nepali and not asserted.
"""

from __future__ import annotations

from neoc_assistant.verify.sentences import split_claims, split_passage

FLOOD = (
    "बाढी आएमा तुरुन्त अग्लो स्थानमा जानुहोस्। प्रत्येक व्यक्तिलाई दैनिक १५ लिटर पानी चाहिन्छ। "
    "वडा नं. ५ को आश्रयस्थल विद्यालयमा छ॥ खानेपानी उमालेर मात्र पिउनुहोस्।"
)


def test_a_nepali_paragraph_is_statements_split_at_the_danda():
    assert [s.text for s in split_passage(FLOOD)] == [
        "बाढी आएमा तुरुन्त अग्लो स्थानमा जानुहोस्।",
        "प्रत्येक व्यक्तिलाई दैनिक १५ लिटर पानी चाहिन्छ।",
        "वडा नं. ५ को आश्रयस्थल विद्यालयमा छ॥",  # "नं." (no.) does not end the sentence
        "खानेपानी उमालेर मात्र पिउनुहोस्।",
    ]


def test_a_nepali_line_ending_in_a_danda_is_not_taken_for_a_heading():
    statements = split_passage("सूचना जारी भयो।\nसबै वडाध्यक्षलाई खबर गर्नुहोस्।")
    assert [s.text for s in statements] == ["सूचना जारी भयो।", "सबै वडाध्यक्षलाई खबर गर्नुहोस्।"]
    assert all(s.heading == "" for s in statements)


def test_a_nepali_answer_is_claims_with_their_citations():
    claims = split_claims("दैनिक १५ लिटर पानी चाहिन्छ [1]। अग्लो स्थानमा जानुहोस् [2]।")
    assert [(c.text, c.cited) for c in claims] == [("दैनिक १५ लिटर पानी चाहिन्छ।", [1]), ("अग्लो स्थानमा जानुहोस्।", [2])]


def test_a_nepali_question_is_answered_by_quoting_the_nepali_circular(container):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True, exist_ok=True)
    (kb / "badhi-suchana.txt").write_text("बाढी सूचना\n\n" + FLOOD + "\n", encoding="utf-8")
    (kb / "shelter.txt").write_text(
        "Shelter standards. Each person needs at least 3.5 square metres of covered space. "
        "Latrines are placed at least 30 metres from water sources.\n", encoding="utf-8")
    summary = container.assistant.ingest([kb])
    assert summary.ok and summary.count("added") == 2, summary.to_dict()["failures"]

    hits = container.assistant.search("दैनिक पानी लिटर", k=2)
    assert hits and hits[0].source == "badhi-suchana.txt", [h.source for h in hits]
    answer = container.assistant.ask("प्रत्येक व्यक्तिलाई दैनिक कति लिटर पानी चाहिन्छ?", use_cache=False)
    assert answer.mode == "extractive" and "१५ लिटर पानी" in answer.answer, (answer.mode, answer.answer)
    assert answer.sources and answer.sources[0]["source"] == "badhi-suchana.txt"
    assert "[UNK]" not in answer.answer  # headings are cut from the text, not decoded by MiniLM
    english = container.assistant.ask("How far are latrines placed from water sources?", use_cache=False)
    assert "30 metres" in english.answer and english.sources[0]["source"] == "shelter.txt", english.answer
