"""Fuzzing file names: whatever bytes a name holds, ingest stores it under a printable NFC name or
refuses it in one clear sentence - never a traceback, never a raw control character on a screen.

Hypothesis draws the names (raw bytes, and text mixing NFD accents, control
characters, direction overrides, invisible characters and other scripts);
each property runs in the default test run within a fixed budget
(``max_examples`` and ``deadline``; derandomized so the run is the same every
time - set ``NEOC_FUZZ_SEED=random`` for a fresh draw).
"""

from __future__ import annotations

import io
import os
import unicodedata

from hypothesis import HealthCheck, given, settings, strategies as st
from rich.console import Console

from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES
from neoc_assistant.ingest.sources import plan_sources
from neoc_assistant.serve.admin_handlers import MAX_NAME_BYTES, safe_filename

FIXED = os.environ.get("NEOC_FUZZ_SEED") != "random"
SUFFIXES = [b".md", b".txt", b".MD", b".csv", b"", b".exe"]
TRICKY = ("e\u0301", "\u00e9", "\u200b", "\u200d", "\u202e", "\u2066", "\x1b[2J", "\x07", "\r", "\n", "\x7f",
          "\u0085", "\u2028", "\ufeff", "\u00a0", "\uff21", "\ufb01", "न\u0947", "[/]", "[bold]", "\\", "%", " ")

raw_stems = st.binary(min_size=1, max_size=60)
text_stems = st.lists(st.one_of(st.sampled_from(TRICKY), st.text(min_size=1, max_size=4)), min_size=1, max_size=8)
stems = st.one_of(raw_stems, text_stems.map(lambda parts: "".join(parts).encode("utf-8", "surrogatepass")))


def _usable(name: bytes) -> bool:
    """What a file system allows, less hidden names (the walk skips those without a word)."""
    return b"/" not in name and b"\x00" not in name and not name.startswith((b".", b"~$")) and len(name) <= 250


names = st.tuples(stems, st.sampled_from(SUFFIXES)).map(lambda t: t[0] + t[1]).filter(_usable)


def _on_screen(text: str) -> bool:
    """Nothing a terminal acts on instead of showing, and nothing a UTF-8 terminal cannot print."""
    text.encode("utf-8")
    return not any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in "\u202a\u202b\u202c\u202d\u202e"
                   "\u2066\u2067\u2068\u2069" for ch in text)


def _make(folder, name: bytes) -> None:
    with open(os.path.join(os.fsencode(folder), name), "wb") as fh:
        fh.write(b"# Depot\n\nThe depot holds twelve generators and four pumps.\n")


def _clear_answer(outcome) -> None:
    assert outcome.status in {"added", "updated", "unchanged", "failed", "skipped"}, outcome
    assert _on_screen(outcome.source), outcome
    assert "Traceback" not in outcome.reason and "Error:" not in outcome.reason, outcome
    if outcome.status in {"added", "updated", "unchanged"}:
        assert outcome.source == unicodedata.normalize("NFC", outcome.source), outcome
    else:
        assert outcome.reason and outcome.reason[0].islower() and len(outcome.reason) > 20, outcome


@settings(max_examples=150, deadline=400, derandomize=FIXED, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=names)
def test_planning_any_name_gives_a_printable_nfc_source_or_a_refusal(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("kb")
    _make(folder, name)
    plan = plan_sources([folder], folder)
    assert len(plan.files) + len(plan.refused) == 1
    for planned in plan.files:
        assert planned.source == unicodedata.normalize("NFC", planned.source) and _on_screen(planned.source)
        assert planned.path.suffix.lower() in SUPPORTED_SUFFIXES
    for source, status, reason in plan.refused:
        assert _on_screen(source) and status in {"failed", "skipped"} and reason


def test_ingesting_any_names_never_fails_with_a_traceback(container):
    """End to end, a few names a run (real loaders, worker, manifest, Chroma, embedder), and the
    summary printed the way ``ingest`` prints it."""
    from neoc_assistant.cli.kb import console, print_summary

    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True)
    runs = []

    @settings(max_examples=10, deadline=6000, derandomize=FIXED, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(names, min_size=1, max_size=3, unique=True))
    def run(batch):
        folder = kb / f"run{len(runs)}"
        runs.append(folder)
        folder.mkdir()
        for name in batch:
            _make(folder, name)
        summary = container.assistant.ingest([folder])
        assert len(summary.outcomes) == len(batch), summary.to_dict()
        for outcome in summary.outcomes:
            _clear_answer(outcome)
        screen = io.StringIO()
        console.file = screen
        try:
            print_summary(summary)
        finally:
            console.file = None
        assert "\x1b" not in screen.getvalue()

    run()
    stored = [s for d in container.manifest.documents() for s in d.sources]
    assert all(s == unicodedata.normalize("NFC", s) and _on_screen(s) for s in stored)


@settings(max_examples=300, deadline=200, derandomize=FIXED, database=None)
@given(name=st.text(max_size=320))
def test_an_upload_name_is_safe_nfc_bounded_and_keeps_a_short_extension(name):
    safe = safe_filename(name)
    assert _on_screen(safe) and "/" not in safe and "\\" not in safe
    assert safe == unicodedata.normalize("NFC", safe) and len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    stem, dot, suffix = name.replace("\\", "/").rpartition("/")[2].rpartition(".")
    visible = [ch for ch in stem if unicodedata.category(ch) != "Cf" and ch not in " ."]
    if dot and visible and suffix.isascii() and suffix.isalnum() and len(suffix) <= 8:
        assert safe.endswith("." + suffix), (name, safe)
