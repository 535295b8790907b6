"""Stop and New conversation in the chat handlers: what the officer sees after pressing them.

Gradio delivers a streaming answer's updates asynchronously, so the handlers must make the
last update the right one (stopped, or nothing after a new conversation) whatever the timing.
A scripted fake assistant stands in for the service: the point is the UI's behaviour.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from neoc_assistant.serve.chat_handlers import ChatHandlers, message_text
from ui_fixtures import FakeAssistant, roundtrip, run_turn


@pytest.fixture
def fake(settings) -> FakeAssistant:
    return FakeAssistant(settings)


def test_stop_sets_the_cancel_event_and_marks_the_answer(fake):
    fake.tokens = [f"t{i} " for i in range(2000)]
    fake.token_delay = 0.002
    chat = ChatHandlers(fake)
    request = SimpleNamespace(session_hash="s1")
    _, messages, pending = chat.add_user("long question", [])
    gen = chat.respond(pending, messages, [], request)
    latest = None
    for _ in range(5):  # a few streamed updates
        latest = next(gen)
    streamed_messages, streamed_turns = latest
    assert streamed_messages[-1]["content"].endswith("▌")
    cancel = fake.calls[-1]["cancel"]
    assert cancel is not None and not cancel.is_set()

    stopped_messages, stopped_turns = chat.stop(roundtrip(streamed_messages), streamed_turns, request)
    assert cancel.is_set()
    assert message_text(stopped_messages[-1]).endswith("_■ Stopped._")
    assert stopped_turns[-1].question == "long question" and stopped_turns[-1].text

    rest = list(gen)  # the generator ends promptly with the partial answer
    final_messages, final_turns = rest[-1]
    assert "_■ Stopped._" in final_messages[-1]["content"]
    assert len(fake.calls) == 1
    assert final_turns[-1].answer is not None and final_turns[-1].answer.complete is False
    assert len([t for t in final_turns if t.msg_index == 1]) == 1


def test_finished_answer_is_not_marked_stopped_when_the_engine_sets_the_event(fake):
    """The engine sets the cancel event when it closes a finished stream; only Stop means stopped."""
    original = fake.ask_stream

    def closing_stream(question, **kw):
        for event in original(question, **kw):
            if event.kind == "done":
                kw["cancel"].set()  # what TokenStream.close() does at the end of every answer
            yield event

    fake.ask_stream = closing_stream
    chat = ChatHandlers(fake)
    messages, turns = run_turn(chat, "How much water?")[-1]
    assert "Stopped" not in messages[-1]["content"] and "**Sources**" in messages[-1]["content"]


def test_a_second_question_waits_for_stop_while_an_answer_streams(fake):
    fake.tokens = [f"t{i} " for i in range(500)]
    fake.token_delay = 0.002
    chat = ChatHandlers(fake)
    me, other = SimpleNamespace(session_hash="me"), SimpleNamespace(session_hash="other")
    _, messages, pending = chat.add_user("first", [], me)
    gen = chat.respond(pending, messages, [], me)
    next(gen)
    streamed = next(gen)[0]
    with pytest.raises(gr.Error, match="still being written"):
        chat.add_user("second", streamed, me)
    chat.add_user("someone else's question", [], other)  # other sessions are not affected
    chat.stop(roundtrip(streamed), [], me)
    assert not chat.running("me")  # free at once, before the generator is cleaned up
    assert chat.add_user("second", streamed, me)[2] == "second"
    gen.close()


def test_stop_without_generation_is_harmless(fake):
    chat = ChatHandlers(fake)
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "done answer"}]
    out, turns = chat.stop(messages, [], SimpleNamespace(session_hash="nobody"))
    assert out == messages and turns == []


def test_new_conversation_clears_and_cancels(fake):
    chat = ChatHandlers(fake)
    event = chat._register("s2")
    assert chat.new_conversation(SimpleNamespace(session_hash="s2")) == ([], [], "")
    assert event.is_set()


def _long_answer_streaming(fake, session: str):
    fake.tokens = [f"t{i} " for i in range(2000)]
    fake.token_delay = 0.002
    chat = ChatHandlers(fake)
    request = SimpleNamespace(session_hash=session)
    _, messages, pending = chat.add_user("long question", [], request)
    return chat, request, chat.respond(pending, messages, [], request)


def test_a_streaming_answer_ends_with_the_cleared_chat_after_a_new_conversation(fake):
    """"New conversation" does not cancel the queued event (a streaming update already on its way
    reached the page after the cleared chat and brought the old conversation back - the browser
    test saw it under load): the generator's own last update is the cleared chat."""
    chat, request, gen = _long_answer_streaming(fake, "s3")
    for _ in range(3):
        next(gen)
    assert chat.new_conversation(request) == ([], [], "")
    assert list(gen) == [([], [])]
    assert not chat.running("s3") and fake.calls[-1]["cancel"].is_set()


def test_the_old_answer_does_not_clear_a_question_of_the_new_conversation(fake):
    chat, request, gen = _long_answer_streaming(fake, "s5")
    next(gen)
    chat.new_conversation(request)
    chat.add_user("first question of the new conversation", [], request)
    assert list(gen) == []


def test_a_question_asked_before_a_new_conversation_is_never_started(fake):
    chat = ChatHandlers(fake)
    request = SimpleNamespace(session_hash="s6")
    _, messages, pending = chat.add_user("queued question", [], request)
    chat.new_conversation(request)
    assert list(chat.respond(pending, roundtrip(messages), [], request)) == []
    assert fake.calls == []


def test_a_question_stopped_while_waiting_for_a_slot_is_never_answered(fake):
    """Stop no longer cancels the queued event (the generator shows the stopped answer itself),
    so a question still waiting for a slot must be skipped when its turn comes."""
    chat = ChatHandlers(fake)
    request = SimpleNamespace(session_hash="s4")
    _, messages, pending = chat.add_user("queued question", [], request)
    stopped, _ = chat.stop(roundtrip(messages), [], request)
    assert message_text(stopped[-1]).endswith("_■ Stopped._")
    assert list(chat.respond(pending, roundtrip(messages), [], request)) == []
    assert fake.calls == []
    # the next question is answered as usual
    assert run_turn(chat, "next question", stopped, [], request)[-1][0][-1]["content"]
    assert len(fake.calls) == 1
