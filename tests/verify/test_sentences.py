"""Passages cut into checkable statements (sentences, list items, table rows with their column
names) and model answers into claims with the passages each cites."""

from __future__ import annotations

from neoc_assistant.verify.sentences import complete_prefix, render_claim, split_claims, split_passage

PASSAGE = """# Shelter standards
Each person needs at least 15 litres of water per day. Toilets: 1 per 50 people.

Every order states:
1. The ward to evacuate.
2. The assembly point.

| Item | Minimum |
| --- | --- |
| Water | 15 litres |
| Toilets | 1 per 50 people |
"""


def test_a_passage_becomes_sentences_items_and_rows_in_their_blocks():
    statements = split_passage(PASSAGE)
    assert [(s.text, s.kind, s.block) for s in statements] == [
        ("Each person needs at least 15 litres of water per day.", "sentence", 1),
        ("Toilets: 1 per 50 people.", "sentence", 1),
        ("Every order states:", "sentence", 2),
        ("The ward to evacuate.", "item", 3),
        ("The assembly point.", "item", 3),
        ("Item: Water; Minimum: 15 litres", "row", 4),  # a row is read with its column names
        ("Item: Toilets; Minimum: 1 per 50 people", "row", 4),
    ]
    items = [s for s in statements if s.kind == "item"]
    assert [s.marker for s in items] == ["1.", "2."] and {s.lead for s in items} == {"Every order states:"}
    assert all("Shelter standards" in s.heading for s in statements)
    assert statements[0].with_context.endswith(": Each person needs at least 15 litres of water per day.")


def test_an_answer_becomes_claims_with_their_citations():
    claims = split_claims("The answer is **15 litres** per day [1].\n- Toilets: 1 per 50 people [2][1].\n"
                          "## Evacuation triggers\nLevel 2 is declared by the Chief. [3]")
    assert [(c.text, c.cited, c.marker, c.lead_in) for c in claims] == [
        ("The answer is 15 litres per day.", [1], "", False),  # markup and markers stripped
        ("Toilets: 1 per 50 people.", [2, 1], "- ", False),
        ("Evacuation triggers", [], "", True),  # a heading frames, it states nothing
        ("Level 2 is declared by the Chief.", [3], "", False),  # a marker after the full stop still counts
    ]


def test_a_growing_answer_is_checked_only_up_to_its_last_complete_claim():
    assert "Water is needed. Toilets are"[:complete_prefix("Water is needed. Toilets are")] == "Water is needed."
    assert complete_prefix("Water is needed.\nToilets are") == len("Water is needed.\n")
    assert complete_prefix("Water is") == 0


def test_a_verified_claim_is_rendered_with_its_citations_before_the_full_stop():
    claim = split_claims("Water: 15 litres per day [1].")[0]
    assert render_claim(claim, [1, 2], first=True) == "Water: 15 litres per day [1][2]."
    assert render_claim(claim, [1], first=False) == "\nWater: 15 litres per day [1]."
    item = split_claims("Intro line.\n- Boats: 14 at the depot [2]")[1]
    assert render_claim(item, [2], first=False) == "\n- Boats: 14 at the depot [2]"
