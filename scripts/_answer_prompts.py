"""The prompts the written-answer path really sends, for benchmarks that replay them.

Why capture instead of rebuilding: the prompt depends on retrieval, the reader's extracts
(``generation.prompt_extracts``), token packing with the model's own tokenizer and the chat
template; a benchmark that assembled its own would measure a prompt no officer ever sends.
The assistant answers each question as usual (default settings, cache off) with the engine's
``stream`` replaced by a recorder that keeps the messages and refuses (``BusyError``), so the
router quotes the documents instead and no model time is spent. Questions that never reach
the model (not found, not answerable) give no prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

from neoc_assistant.container import Container
from neoc_assistant.errors import BusyError
from neoc_assistant.settings import Settings


def read_questions(path: Path, split: str, limit: int = 0) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if split == "all" or r.get("split") == split]
    return rows[:limit] if limit else rows


def assistant_for(model: Path, data_dir: Path, kb_dir: Path, **overrides) -> Container:
    """A container over ``kb_dir`` (ingested into ``data_dir`` once; unchanged files are skipped)."""
    settings = Settings(data_dir=data_dir, kb_dir=kb_dir, model_path=model, cache_enabled=False,
                        query_log_enabled=False, **overrides)
    container = Container(settings)
    container.assistant.ingest([kb_dir], show_progress=False)
    return container


def capture_prompts(container: Container, questions: list[dict]) -> list[dict]:
    """``[{"item": question row, "messages": chat messages the model would get}]``, in order."""
    engine = container.engine
    seen: list[list[dict]] = []

    def record(messages, **_kwargs):
        seen.append(messages)
        raise BusyError("prompt captured for the benchmark")

    engine.stream = record  # type: ignore[method-assign]  # instance attribute shadows the method
    try:
        out = []
        for item in questions:
            seen.clear()
            container.assistant.ask(item["text"], use_cache=False)
            if seen:
                out.append({"item": item, "messages": seen[-1]})
        return out
    finally:
        del engine.stream  # type: ignore[method-assign]
