"""A three-turn conversation in the real UI (headless Chromium): follow-ups read with the
conversation, how each was understood, the ✎ correction, worked figures, and New conversation."""

from __future__ import annotations

import pytest
from browser_support import ask, bot_count, live_session, server_root, wait_bot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live(ingested, tmp_path_factory, playwright):  # the shared browser fixtures (browser_fixtures.py)
    yield from live_session(server_root(ingested, tmp_path_factory, "ui-conversation"), "retrieval", playwright)


def test_a_three_turn_conversation_then_a_new_one(live):
    page = live.new_page()
    ask(page, "Our shelter in the school has 300 people, how many toilets do we need?")
    first = wait_bot(page, 1, lambda t: "answered in" in t, what="finished")
    assert "1 toilet per 50 people" in first and "= 6 toilets" in first  # the worked figure
    assert "Understood as" not in first  # it stood alone

    ask(page, "and how much water for them per day?")
    second = wait_bot(page, 2, lambda t: "answered in" in t, what="finished")
    assert "Understood as: how much water for 300 people per day?" in second
    assert "15 litres per person per day" in second and "4,500 litres per day" in second
    assert "toilet" not in second.split("Sources")[0].lower()  # not the previous answer again

    ask(page, "Separate question: which form do we record an activation on?")
    third = wait_bot(page, 3, lambda t: "answered in" in t, what="finished")
    assert "NEOC-F03" in third and "litres" not in third.split("Sources")[0]  # nothing carried over

    # one click puts the last question, as it was understood, in the box to correct
    page.click("#neoc-fix")
    page.wait_for_function("document.querySelector('#neoc-input textarea').value.length > 0", timeout=5_000)
    assert page.locator("#neoc-input textarea").input_value() == "Which form do we record an activation on?"

    # a source opens onto its whole passage with the quoted lines marked
    page.locator("#neoc-chat details summary").last.click()
    html = page.locator("#neoc-chat details").last.inner_html()
    assert page.locator("#neoc-chat details[open] mark").count() >= 1, html[:1500]

    page.click("#neoc-new")
    page.wait_for_function("document.querySelectorAll('#neoc-chat [data-testid=\"bot\"]').length === 0",
                           timeout=10_000)
    ask(page, "and how much water for them per day?")
    fresh = wait_bot(page, 1, lambda t: "answered in" in t, what="finished")
    assert bot_count(page) == 1 and "Understood as" not in fresh  # the old conversation is forgotten
    live.assert_offline()
