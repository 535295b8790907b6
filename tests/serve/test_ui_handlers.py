"""Fast tests of the UI handlers and rendering (no browser, no server).

A scripted fake assistant stands in for the service where the point is the
UI's behaviour (streaming, Stop, errors, feedback); the knowledge-base tests
use the real ingest pipeline on a temp data dir.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant.errors import BusyError, InputError, MemoryGuardError, ModelError, StoreError
from neoc_assistant.serve import render
from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers, SystemHandlers, safe_filename
from neoc_assistant.serve.chat_handlers import (
    THINKING_TEXT,
    ChatHandlers,
    RecentRequests,
    message_text,
)
from neoc_assistant.serve.ui import build_ui
from neoc_assistant.settings import Settings

import gradio as gr

from ui_fixtures import FakeAssistant, make_answer, run_turn


@pytest.fixture
def fake(settings) -> FakeAssistant:
    return FakeAssistant(settings)


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------
def test_answer_markdown_llm_shows_sources_excerpt_and_timing():
    md = render.answer_markdown(make_answer())
    assert "15 litres per day [1]" in md
    assert "**Sources**" in md and "11\\-minimum\\-standards\\-wash\\-shelter.md" in md
    assert "Minimum 15 litres of water" in md
    assert "answered in 1.2 s" in md
    assert "Cached" not in md


@pytest.mark.parametrize("tier,label", [("l1", "L1 memory"), ("l2", "L2 disk")])
def test_cached_badge_names_the_tier(tier, label):
    md = render.answer_markdown(make_answer(cached=True, cache_tier=tier))
    assert f"⚡ **Cached {tier.upper()}** ({label})" in md


def test_extractive_banner_and_quotes_are_escaped():
    answer = make_answer(
        "Quoted from the documents:\n- \u201c# Heading ![x](http://evil.example/x.png) <img src=x>\u201d [1]",
        mode="extractive", notice="No language model is installed",
    )
    md = render.answer_markdown(answer)
    assert md.startswith("> ⚠ **No language model is installed**")
    assert "![x](" not in md and "<img" not in md and "evil.example" not in md


def test_sources_are_numbered_like_the_citations():
    sources = [{"n": 1, "source": "b.md", "page": None}, {"n": 2, "source": "a.pdf", "page": 3}]
    md = render.answer_markdown(make_answer("x [1]. y [2].", sources=sources))
    assert "1. **b.md**" in md and "2. **a.pdf**, p. 3" in md


def test_removed_claims_are_listed_in_a_collapsed_note():
    verification = {"status": "partial", "claims": [
        {"text": "Water is 15 litres.", "supported": True, "sources": [1]},
        {"text": "Tea is 2.1 litres.", "supported": False, "sources": [], "reason": "figures not in the passages: 2.1 l"},
        {"text": "Tea is 2.1 litres.", "supported": False, "sources": [], "reason": "repeated"},
    ]}
    md = render.answer_markdown(make_answer("Water is 15 litres [1].", verification=verification))
    assert "<details><summary>1 statement removed as not found in the documents</summary>" in md
    assert "Tea is 2.1 litres." in md and md.count("Tea is") == 1


def test_not_found_banner_without_repeating_the_notice():
    notice = "Not in the knowledge base: no passage is relevant enough to answer this."
    answer = make_answer(notice + "\nThe nearest documents are:\n- a.md", mode="not-found", notice=notice)
    md = render.answer_markdown(answer)
    assert md.count(notice) == 1 and md.startswith("> ℹ")
    assert "nearest documents" in md


def test_model_output_cannot_fetch_images_or_inject_html():
    md = render.answer_markdown(make_answer("See ![map](http://tiles.example/a.png) <script>x</script> **bold**"))
    assert "http://tiles.example" not in md.split("[image: map]")[0] + md.split("[image: map]")[-1] or "![" not in md
    assert "![" not in md and "<script>" not in md and "**bold**" in md


def test_excerpt_cannot_become_a_link_or_image():
    answer = make_answer(sources=[{"source": "x](http://evil)", "page": 3, "excerpt": "![a](http://evil/b.png)"}])
    md = render.answer_markdown(answer)
    assert "](http" not in md.replace("\\](http", "")
    assert ", p. 3" in md


def test_excerpt_is_one_plain_line():
    raw = "Water supply > 2.1 Quantity\n| Indicator | Minimum |\n|---|---|\n| Average water | **15 litres per person per day** |"
    assert render.short_excerpt(raw) == "Water supply > 2.1 Quantity · Indicator · Minimum · Average water · 15 litres per person per day"
    assert render.short_excerpt("word " * 100).endswith(" …") and len(render.short_excerpt("word " * 100)) <= 222


def test_error_markdown_is_one_clear_line():
    md = render.error_markdown("BusyError", "all model contexts are in use; retry in a moment")
    assert md.startswith("> ⚠ **The assistant is busy:**") and "\n" not in md


def test_health_markdown_flags_unhealthy():
    assert "✗ Unhealthy" in render.health_markdown({"healthy": False, "checks": {"store": {"ok": False}}})
    assert "✓ Healthy" in render.health_markdown({"healthy": True, "checks": {}})


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------
def test_respond_streams_partial_text_then_final_answer(fake):
    fake.tokens = [f"w{i} " for i in range(30)]
    fake.token_delay = 0.006  # > STREAM_MIN_INTERVAL_S over a few tokens, so several partial updates
    chat = ChatHandlers(fake)
    outputs = run_turn(chat, "How much water?")
    contents = [msgs[-1]["content"] for msgs, _ in outputs]
    assert contents[0] == THINKING_TEXT
    partials = [c for c in contents if c.endswith("▌")]
    assert len(partials) >= 2, contents
    assert all(len(a) <= len(b) for a, b in zip(partials, partials[1:]))  # grows token by token
    final_messages, turns = outputs[-1]
    assert "w29" in final_messages[-1]["content"] and "**Sources**" in final_messages[-1]["content"]
    assert final_messages[-2]["role"] == "user" and message_text(final_messages[-2]) == "How much water?"
    assert len(turns) == 1 and turns[0].answer is not None and turns[0].msg_index == 1
    assert chat.recent.snapshot()[-1][2:] == ("ui", "llm")
    assert not chat.running("anonymous")  # the cancel event is unregistered afterwards


def test_follow_up_passes_previous_turns_as_history(fake):
    chat = ChatHandlers(fake)
    messages, turns = run_turn(chat, "How much water per person?")[-1]
    run_turn(chat, "And for children?", messages, turns)
    assert fake.calls[0]["history"] is None
    assert fake.calls[1]["history"] == [("How much water per person?", "Each person needs 15 litres [1].")]


@pytest.mark.parametrize("error,heading", [
    (InputError("The question is empty: type what you want to know"), "Please rephrase"),
    (BusyError("all 2 model contexts are busy; retry in a few seconds"), "The assistant is busy"),
    (MemoryGuardError("memory is 93% used; retry once load drops"), "Memory is tight"),
    (ModelError("model file is truncated: re-copy it"), "Model problem"),
    (StoreError("knowledge base locked"), "Knowledge-base problem"),
])
def test_errors_show_as_a_message_not_a_traceback(fake, error, heading):
    fake.error = error
    chat = ChatHandlers(fake)
    messages, turns = run_turn(chat, "")[-1]
    text = messages[-1]["content"]
    assert heading in text and str(error).split(":")[0] in text
    assert "Traceback" not in text
    assert turns[-1].answer is None


def test_unexpected_exception_is_hidden_from_the_user(fake, caplog):
    fake.error = RuntimeError("secret internal detail")
    chat = ChatHandlers(fake)
    messages, _ = run_turn(chat, "q")[-1]
    assert "secret internal detail" not in messages[-1]["content"]
    assert "server log" in messages[-1]["content"]


def test_feedback_calls_the_service_for_the_rated_answer(fake):
    chat = ChatHandlers(fake)
    messages, turns = run_turn(chat, "How much water?")[-1]
    chat.feedback(turns, gr.LikeData(None, {"index": 1, "value": messages[1]["content"], "liked": False}))
    assert len(fake.feedback_calls) == 1
    question, answer, helpful = fake.feedback_calls[0]
    assert question == "How much water?" and helpful is False and answer is turns[0].answer
    chat.feedback(turns, gr.LikeData(None, {"index": 1, "value": "", "liked": True}))
    assert fake.feedback_calls[-1][2] is True
    chat.feedback(turns, gr.LikeData(None, {"index": 0, "value": "", "liked": True}))  # the user's message
    assert len(fake.feedback_calls) == 2


def test_cached_answer_is_shown_with_its_badge(fake):
    fake.scripted = make_answer(cached=True, cache_tier="l2")
    chat = ChatHandlers(fake)
    messages, _ = run_turn(chat, "How much water?")[-1]
    assert "Cached L2" in messages[-1]["content"]
    assert chat.recent.snapshot()[-1][3] == "cached"


# ---------------------------------------------------------------------------
# knowledge base (real ingest pipeline)
# ---------------------------------------------------------------------------
def test_safe_filename_strips_paths_and_odd_characters():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\x\\sit rep;rm -rf.md") == "sit rep_rm -rf.md"


def test_upload_validation_is_enforced_server_side(gradio_uploads, settings):
    kb = KnowledgeBaseHandlers(FakeAssistant(Settings(data_dir=settings.paths.data_dir, upload_max_mb=1)))
    ok = gradio_uploads / "sop.md"
    ok.write_text("# SOP\nText.")
    exe = gradio_uploads / "tool.exe"
    exe.write_bytes(b"MZ")
    big = gradio_uploads / "big.txt"
    big.write_bytes(b"a" * (1024 * 1024 + 1))
    empty = gradio_uploads / "empty.md"
    empty.write_text("")
    accepted, rejected = kb.validate([str(ok), str(exe), str(big), str(empty)])
    assert [name for _, name in accepted] == ["sop.md"]
    reasons = dict(rejected)
    assert "not supported" in reasons["tool.exe"]
    assert "over the 1 MB limit" in reasons["big.txt"]
    assert "empty" in reasons["empty.md"]


@pytest.mark.slow
def test_upload_ingests_lists_and_deletes_a_document(container, gradio_uploads):
    assistant = container.assistant
    kb = KnowledgeBaseHandlers(assistant)
    doc = gradio_uploads / "incoming" / "Dam break plan.md"
    doc.parent.mkdir()
    doc.write_text("# Dam break plan\n\nIf the Kulekhani dam is breached, evacuate zone A within 30 minutes.\n")
    bad = gradio_uploads / "incoming" / "virus.exe"
    bad.write_bytes(b"MZ...")
    before = assistant.kb_version()
    summary, rows, dropdown, info = kb.upload([str(doc), str(bad)])
    assert "added 1" in summary and "refused `virus.exe`" in summary
    stored = Path(container.settings.paths.kb_dir) / "uploads" / "Dam break plan.md"
    assert stored.read_text() == doc.read_text()
    assert any(r[0] == "uploads/Dam break plan.md" and r[4] >= 1 for r in rows)
    assert "uploads/Dam break plan.md" in dropdown["choices"]
    assert assistant.kb_version() != before and assistant.kb_version() in info

    summary, rows, dropdown, info = kb.delete("uploads/Dam break plan.md")
    assert "removed 1" in summary and "deleted too" in summary
    assert not stored.exists()
    assert rows == [] and dropdown["choices"] == []


def test_delete_nothing_selected(fake):
    kb = KnowledgeBaseHandlers(fake)
    assert kb.delete(None)[0] == "Pick a document to delete."


# ---------------------------------------------------------------------------
# system + page
# ---------------------------------------------------------------------------
def test_system_refresh_formats_health_stats_and_latency_plot(fake):
    recent = RecentRequests()
    recent.add(1500, "ui", "llm")
    recent.add(20, "api", "cached")
    system = SystemHandlers(fake, recent, queue_info=lambda: {"waiting": 4, "running": 2})
    health_md, stats_md, frame, raw, stamp = system.refresh()
    assert "✓ Healthy" in health_md and "| model | ✓ |" in health_md
    assert "0.1 s / 0.9 s / –" in stats_md.replace("\\", "")  # p50 / p95 / p99 (p99 not reported)
    assert "50%" in stats_md and "| UI queue (waiting / running) | 4 / 2 |" in stats_md
    # no "recent" in the service stats: the UI's own request log is plotted
    assert list(frame["seconds"]) == [1.5, 0.02] and list(frame["outcome"]) == ["ui llm", "api cached"]
    assert raw["stats"]["cache"]["hit_rate"] == 0.5 and stamp.startswith("Updated")

    fake.stats = lambda: {"recent": [(1.0, 800.0, "llm"), (2.0, None, "error_input"), (3.0, 5.0, "cached_l1")]}
    frame = system.refresh()[2]
    assert list(frame["seconds"]) == [0.8, 0.005] and list(frame["outcome"]) == ["llm", "cached_l1"]


def test_system_refresh_survives_a_failing_health_call(fake):
    fake.health = lambda: (_ for _ in ()).throw(RuntimeError("boom"))
    health_md, *_ = SystemHandlers(fake, RecentRequests()).refresh()
    assert "health unavailable: RuntimeError" in health_md


def test_build_ui_limits_generation_concurrency_to_the_pool(fake):
    demo = build_ui(fake, concurrency_limit=3, mode="llm")
    fns = list(demo.fns.values())
    generate = [f for f in fns if f.name == "respond"]
    assert len(generate) == 3  # Enter, Send button, example click
    assert all(f.concurrency_id == "generate" and f.concurrency_limit == 3 and f.queue for f in generate)
    ingest = [f for f in fns if f.name in ("upload", "delete")]
    assert ingest and all(f.concurrency_id == "ingest" and f.concurrency_limit == 1 for f in ingest)
    # Stop, New and Clear only signal the answer (its generator shows "Stopped" or the cleared chat
    # last); cancelling the event let a late streaming update bring the old chat back
    assert not [f for f in fns if f.cancels]
    assert {"stop", "new_conversation"} <= {f.name for f in fns if not f.queue}
    assert demo.get_config_file()["analytics_enabled"] is False


def test_system_tab_shows_answer_slots_queue_and_busy_quotes():
    stats = {"pool": {"batching": True, "in_use": 3, "size": 8, "waiting": 2, "expected_wait_seconds": 5.2,
                      "refused_busy": 4}}
    md = render.metrics_markdown(stats)
    assert r"answer slots (one batched context) in use / size | 3 / 8 \(2 queued, expected wait 5 s\)" in md
    assert "answered with quotes because the model was busy | 4" in md
