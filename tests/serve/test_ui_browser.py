"""The real server driven in headless Chromium (Debian's /usr/bin/chromium through Playwright).

Two servers, each ``python -m neoc_assistant serve --port <free port>`` on a
copy of a data dir where the default knowledge base was ingested first:

* extractive (no model): answer + sources + banner, follow-up, errors,
  upload -> listed -> deleted, theme toggle, System tab, JSON endpoints;
* with the tiny generated GGUF (``scripts/make_test_model.py``, it never emits
  end-of-generation, so answers run to max_tokens) and claim verification off,
  so its raw tokens stream: token streaming, Stop that frees the model
  context, queueing behind the single context (UI mechanics only);
* with the real SmolLM2-135M and verification on: a verified answer with its
  removed claims, the cache badge and thumbs-down eviction.

Every request any page makes is recorded; a request to any host but the
local server fails the test. The server's own sockets are sampled too.
Screenshots go to ``test-output/`` (git-ignored).

Run: ``pytest -m browser tests/serve/test_ui_browser.py`` (about 3-5 minutes on 2 cores).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from browser_support import (
    BOT,
    REPO_ROOT,
    ask,
    bot_count,
    cancelled,
    http_get,
    live_session,
    metric,
    post_json,
    screenshot,
    server_root,
    streaming,
    streaming_lengths,
    wait_bot,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KB_DIR = REPO_ROOT / "knowledge_base"
QUESTION = "How many litres of water per person per day is the minimum?"
MAX_TOKENS = 4000  # the tiny model never stops by itself: ~10 s of tokens on an idle 2-core machine


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------
# chromium, ingested, playwright: session fixtures in browser_fixtures.py (shared with the other browser tests)


@pytest.fixture(scope="module")
def retrieval_live(ingested, tmp_path_factory, playwright):
    yield from live_session(server_root(ingested, tmp_path_factory, "ui-retrieval"), "retrieval", playwright)


@pytest.fixture(scope="module")
def llm_live(ingested, tmp_path_factory, playwright):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from generate_fixtures import built_model

    root = server_root(ingested, tmp_path_factory, "ui-llm")
    shutil.copy(built_model("chatml"), root / "models" / "tiny-test.gguf")
    # One model context, so a second question queues; long answers, so Stop has something to stop.
    # Random weights never write a verifiable sentence and repeat themselves: verification and the
    # loop guard are off here, so the raw tokens stream (these tests are about the UI's streaming,
    # Stop and queueing).
    yield from live_session(root, "llm", playwright, NEOC_POOL_SIZE="1", NEOC_MAX_TOKENS=str(MAX_TOKENS),
                            NEOC_N_CTX="8192", NEOC_VERIFY_ANSWERS="false", NEOC_LOOP_GUARD="false")


@pytest.fixture(scope="module")
def smollm2_live(ingested, tmp_path_factory, playwright):
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from generate_fixtures import real_model

    root = server_root(ingested, tmp_path_factory, "ui-smollm2")
    (root / "models" / "smollm2.gguf").symlink_to(real_model("smollm2-135m"))
    yield from live_session(root, "smollm2", playwright, NEOC_N_CTX="2048", NEOC_MAX_TOKENS="200")


# ---------------------------------------------------------------------------
# extractive server
# ---------------------------------------------------------------------------
def test_chat_answer_with_sources_banner_and_follow_up(retrieval_live):
    page = retrieval_live.new_page()
    assert page.viewport_size == {"width": 1366, "height": 768}
    assert "No model installed" in page.locator("#neoc-status").inner_text()

    ask(page, QUESTION)  # Enter sends
    page.wait_for_function("document.querySelector('#neoc-input textarea').value === ''", timeout=5_000)
    text = wait_bot(page, 1, lambda t: "answered in" in t, what="finished")
    assert "No language model is installed" in text  # the extractive banner (Answer.notice)
    assert "15 litres" in text
    assert "Sources" in text and "11-minimum-standards-wash-shelter.md" in text
    assert "mode: extractive" in text
    user = page.locator('#neoc-chat [data-testid="user"]').first.inner_text()
    assert QUESTION in user
    buttons = page.locator("#neoc-chat .message-buttons-left").last
    for label in ("Copy message", "Like", "Dislike"):
        assert buttons.get_by_label(label, exact=True).count() == 1, label

    # the question and the top of the answer (banner, passages) in view, for the screenshot
    page.locator('#neoc-chat [data-testid="user"]').first.evaluate("el => el.scrollIntoView({block: 'start'})")
    shot = screenshot(page, "ui-chat.png")
    assert shot.stat().st_size > 20_000

    # follow-up keeps the context: the previous question is used for retrieval
    ask(page, "And for drinking only?", button=True)
    follow = wait_bot(page, 2, lambda t: "answered in" in t, what="finished")
    assert "11-minimum-standards-wash-shelter.md" in follow
    retrieval_live.assert_offline()


def test_errors_show_a_clear_message_not_a_traceback(retrieval_live):
    page = retrieval_live.new_page()
    page.locator("#neoc-input textarea").press("Enter")  # empty question
    empty = wait_bot(page, 1, lambda t: "rephrase" in t, what="showed the input error")
    assert "question is empty" in empty and "Traceback" not in empty

    ask(page, "water " * 500)  # 3000 characters > max_question_chars (2000)
    huge = wait_bot(page, 2, lambda t: "rephrase" in t, what="showed the length error")
    assert "the limit is 2000" in huge and "Traceback" not in huge

    page.click("#neoc-new")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === 0")
    retrieval_live.assert_offline()


def test_upload_lists_answers_from_and_deletes_a_document(retrieval_live, tmp_path):
    page = retrieval_live.new_page()
    doc = tmp_path / "Kulekhani dam plan.md"
    doc.write_text(
        "# Kulekhani dam break plan\n\nIf the Kulekhani dam is breached, the duty officer sounds siren "
        "pattern K-7 and evacuates zone A within 30 minutes.\n"
    )
    page.get_by_role("tab", name="Knowledge base").click()
    info = page.locator("#neoc-kb-info")
    page.wait_for_function("document.querySelector('#neoc-kb-info').innerText.includes('documents')")
    version_before = re.search(r"version (\w+)", info.inner_text()).group(1)

    page.locator("#neoc-upload input[type=file]").set_input_files(str(doc))
    page.wait_for_timeout(500)
    page.click("#neoc-ingest")
    page.wait_for_function("document.querySelector('#neoc-ingest-summary').innerText.includes('added')",
                           timeout=180_000)
    summary = page.locator("#neoc-ingest-summary").inner_text()
    assert "added 1" in summary and "uploads/Kulekhani dam plan.md" in summary, summary
    assert "uploads/Kulekhani dam plan.md" in page.locator("#neoc-docs").inner_text()
    version_after = re.search(r"version (\w+)", info.inner_text()).group(1)
    assert version_after != version_before
    stored = Path(retrieval_live.server.env["NEOC_KB_DIR"]) / "uploads" / "Kulekhani dam plan.md"
    assert stored.read_text() == doc.read_text()
    screenshot(page, "ui-knowledge-base.png")

    page.get_by_role("tab", name="Chat").click()
    ask(page, "What siren pattern is used if the Kulekhani dam is breached?")
    text = wait_bot(page, 1, lambda t: "answered in" in t, what="finished")
    assert "K-7" in text and "uploads/Kulekhani dam plan.md" in text

    page.get_by_role("tab", name="Knowledge base").click()
    pick = page.locator("#neoc-delete-pick input")
    pick.click()
    pick.fill("Kulekhani")
    page.get_by_role("option", name="uploads/Kulekhani dam plan.md").click()
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.click("#neoc-delete")
    page.wait_for_function("document.querySelector('#neoc-ingest-summary').innerText.includes('Deleted')")
    assert dialogs and "Kulekhani" in dialogs[0]
    assert "Kulekhani" not in page.locator("#neoc-docs").inner_text()
    assert not stored.exists()
    retrieval_live.assert_offline()


def test_theme_toggle_dark_and_light_persists(retrieval_live):
    page = retrieval_live.new_page()
    is_dark = "document.body.classList.contains('dark')"
    start = page.evaluate(is_dark)
    page.click("#neoc-theme")
    assert page.evaluate(is_dark) is (not start)
    page.reload(wait_until="load")
    page.wait_for_selector("#neoc-chat")
    page.wait_for_function(f"{is_dark} === {str(not start).lower()}")  # remembered offline (localStorage)
    fill = ("getComputedStyle(document.querySelector('.gradio-container'))"
            ".getPropertyValue('--body-background-fill').trim()")
    background = page.evaluate(fill)
    if not start:
        ask(page, QUESTION)
        wait_bot(page, 1, lambda t: "answered in" in t)
        page.locator('#neoc-chat [data-testid="user"]').first.evaluate("el => el.scrollIntoView({block: 'start'})")
        screenshot(page, "ui-chat-dark.png")
    page.click("#neoc-theme")
    assert page.evaluate(is_dark) is start
    assert background and page.evaluate(fill) != background  # the theme's colours really switched
    retrieval_live.assert_offline()


def test_system_tab_health_metrics_and_latency_plot(retrieval_live):
    page = retrieval_live.new_page()
    page.get_by_role("tab", name="System").click()
    page.click("#neoc-sys-refresh")
    page.wait_for_function("document.querySelector('#neoc-health').innerText.includes('Healthy')")
    health = page.locator("#neoc-health").inner_text()
    assert "model" in health and "store" in health and "memory" in health
    stats = page.locator("#neoc-stats").inner_text()
    for label in ("latency p50 / p95 / p99", "cache hit rate", "error rate", "CPU", "memory", "UI queue"):
        assert label in stats, label
    # the previous tests answered questions: the latency plot has points
    page.wait_for_selector("#neoc-latency canvas, #neoc-latency svg", timeout=30_000)
    page.wait_for_function("(document.querySelector('#neoc-latency') || {}).innerText.includes('seconds')",
                           timeout=30_000)  # axis titles rendered (the timer may redraw the plot meanwhile)
    screenshot(page, "ui-system.png")
    retrieval_live.assert_offline()


def test_json_endpoints_on_the_same_server(retrieval_live):
    base = retrieval_live.url
    status, body = post_json(base + "/api/ask", {"question": QUESTION, "use_cache": False})
    assert status == 200 and body["mode"] == "extractive" and body["sources"]
    assert body["sources"][0]["source"] == "11-minimum-standards-wash-shelter.md"
    status, body = post_json(base + "/api/ask", {"question": "   "})
    assert status == 400 and body["error"] == "InputError"
    status, raw = http_get(base + "/health")
    assert status == 200 and json.loads(raw)["healthy"] is True
    assert metric(base, "neoc_requests_total", '{outcome="extractive"}') >= 1


def test_nothing_left_the_machine(retrieval_live):
    """All requests of every page in this module went to the local server (and the server made none)."""
    retrieval_live.assert_offline()
    hosts = {re.sub(r"^(\w+://[^/]+).*$", r"\1", u) for u in retrieval_live.recorder.urls}
    print(f"{len(retrieval_live.recorder.urls)} requests, origins: {sorted(hosts)}; "
          f"{retrieval_live.watcher.samples} socket samples of the server")
    assert retrieval_live.watcher.samples > 10


# ---------------------------------------------------------------------------
# server with the tiny model
# ---------------------------------------------------------------------------
def test_streaming_and_stop_really_stops(llm_live):
    base = llm_live.url
    page = llm_live.new_page()
    assert "Model ready" in page.locator("#neoc-status").inner_text()
    cancelled_before = cancelled(base)

    ask(page, QUESTION)
    wait_bot(page, 1, streaming, timeout=180, what="started streaming")
    lengths = streaming_lengths(page, 1, samples=10, every=0.2)
    assert len(set(lengths)) >= 2 and lengths == sorted(lengths), f"not streaming token by token: {lengths}"
    screenshot(page, "ui-chat-streaming.png")

    # a second question while this one streams is refused, and kept in the box
    ask(page, "A second question while streaming")
    page.get_by_text("still being written").first.wait_for(timeout=10_000)
    assert bot_count(page) == 1
    assert page.locator("#neoc-input textarea").input_value() == "A second question while streaming"

    page.click("#neoc-stop")
    stopped = wait_bot(page, 1, lambda t: "Stopped" in t, timeout=15, what="showed Stopped")
    time.sleep(1.5)
    assert page.locator(BOT).nth(0).inner_text() == stopped or "Stopped" in page.locator(BOT).nth(0).inner_text()
    size_then = len(page.locator(BOT).nth(0).inner_text())
    time.sleep(1.5)
    assert len(page.locator(BOT).nth(0).inner_text()) == size_then, "text kept growing after Stop"

    # the generation itself stopped: the context is back in the pool and the request counted as cancelled
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and metric(base, "neoc_pool_in_use") != 0:
        time.sleep(0.2)
    assert metric(base, "neoc_pool_in_use") == 0
    assert cancelled(base) >= cancelled_before + 1
    completion = metric(base, "neoc_tokens_total", '{kind="completion"}')  # only counted if the chain finished
    assert completion is None or completion < MAX_TOKENS, f"generation ran on: {completion} tokens"

    # with one context, a new question can only stream if Stop freed it
    ask(page, "What are the EOC activation levels?", button=True)
    wait_bot(page, 2, streaming, timeout=60, what="started streaming after Stop")
    page.click("#neoc-new")
    page.wait_for_function(f"document.querySelectorAll('{BOT}').length === 0")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and metric(base, "neoc_pool_in_use") != 0:
        time.sleep(0.2)
    assert metric(base, "neoc_pool_in_use") == 0, "New conversation did not stop the generation"
    llm_live.assert_offline()


def test_second_user_is_queued_and_sees_it(llm_live):
    first = llm_live.new_page()
    second = llm_live.new_page()
    ask(first, QUESTION)
    wait_bot(first, 1, streaming, timeout=180, what="started streaming")
    ask(second, "What are the EOC activation levels?")
    waiting = wait_bot(second, 1, lambda t: "Waiting for a free answer slot" in t, timeout=10, what="showed waiting")
    assert waiting
    tracker = second.locator('#neoc-chat [data-testid="status-tracker"]')
    second.wait_for_function(
        "document.querySelector('#neoc-chat [data-testid=\"status-tracker\"]').innerText.includes('queue')",
        timeout=10_000)
    assert re.search(r"queue: \d+/\d+", tracker.inner_text()), tracker.inner_text()
    screenshot(second, "ui-chat-queued.png")

    first.click("#neoc-stop")
    wait_bot(first, 1, lambda t: "Stopped" in t, timeout=15, what="stopped")
    wait_bot(second, 1, streaming, timeout=60, what="started after the first stopped")
    second.click("#neoc-stop")
    wait_bot(second, 1, lambda t: "Stopped" in t, timeout=15, what="stopped")
    llm_live.assert_offline()


def test_verified_answer_cached_badge_and_thumbs_down_evicts_it(smollm2_live):
    base = smollm2_live.url
    from generate_fixtures import SMOLLM2_ANSWERED_QUESTIONS

    answers = []
    for question in SMOLLM2_ANSWERED_QUESTIONS:
        status, body = post_json(base + "/api/ask", {"question": question})
        assert status == 200 and not body["cached"], body
        answers.append(body)
        if body["mode"] == "llm" and body["finish_reason"] == "stop":  # cached only if it ran to its end
            break
    assert body["mode"] == "llm", [(a["mode"], a["answer"][:200]) for a in answers]
    assert body["verification"]["status"] in ("verified", "partial")

    page = smollm2_live.new_page()
    ask(page, question)
    text = wait_bot(page, 1, lambda t: "answered in" in t, timeout=60, what="finished")
    assert "Cached L1" in text and "L1 memory" in text, text[-300:]
    opening = body["answer"][:25]  # the verified answer the API gave, now served from the cache
    assert "Sources" in text and opening in text, (opening, text[:300])
    if body["unsupported_claims"]:
        assert "removed as not found in the documents" in text
    screenshot(page, "ui-chat-verified.png")

    page.locator("#neoc-chat .message-buttons-left").last.get_by_label("Dislike", exact=True).click()
    page.get_by_text("removed from the cache").first.wait_for(timeout=10_000)

    ask(page, question)  # evicted: generated afresh, not served from cache
    after = wait_bot(page, 2, lambda t: "answered in" in t, timeout=120, what="answered afresh")
    assert "Cached" not in after and opening in after, after[:300]
    feedback = Path(smollm2_live.server.env["NEOC_DATA_DIR"]) / "logs" / "feedback.jsonl"
    record = json.loads(feedback.read_text().splitlines()[-1])
    assert record["helpful"] is False and record["cached"] is True and record["question"] == question
    smollm2_live.assert_offline()
