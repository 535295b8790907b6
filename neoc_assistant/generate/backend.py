"""What the chain and the front door need from whatever writes the answers.

``generation.backend`` names the implementation (PrivateGPT-style; chosen in ``factory.py``):
``"llamacpp"`` - a local GGUF model in this process (``engine.py``, the laptop
default) - or ``"openai"`` - OpenAI-compatible servers (llama.cpp's
``llama-server``, vLLM, Ollama, ``llama_cpp.server``: ``openai_backend.py``).
The chain, the verifier and the cache do not change: they only see messages in
and text pieces out. A backend that cannot reach its model raises
``UnavailableError`` from ``stream``; the chain then answers with quotes.
"""

from __future__ import annotations

import threading
from typing import Iterator, Protocol


class ClosingStream:
    """A text stream that is a context manager and closes when dropped: an abandoned stream (a
    client gone, an exception in the consumer) must free its slot or connection, never hold it."""

    def close(self) -> None:  # pragma: no cover - every stream defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class TextStream(Protocol):
    """Text pieces of one answer; ``stats`` holds the backend's figures (``finish_reason``,
    ``prompt_tokens``, ``generated_tokens``, ``ttft_seconds``...) once it has ended."""

    stats: dict

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None:
        """Stop now and free what the answer holds (the client went away)."""
        ...

    def __enter__(self) -> "TextStream": ...

    def __exit__(self, *exc: object) -> None: ...


class GenerationBackend(Protocol):
    pool_plan: dict  # {"size": concurrent answers, ...}

    @property
    def model_loaded(self) -> bool: ...

    def available(self) -> bool:
        """A model is configured and present (cheap: nothing is loaded)."""
        ...

    def unavailable_notice(self, lang: str = "en") -> str:
        """Shown above quoted answers when ``available()`` is False: why there is no written answer
        and what to do about it, in ``lang`` (the question's language, "en" or "ne")."""
        ...

    def model_identity(self) -> str | None:
        """Changes whenever the model does (part of the response-cache key)."""
        ...

    def load(self) -> None: ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: list[dict], *, max_tokens: int | None = None,
               cancel: threading.Event | None = None, grammar: str | None = None) -> TextStream:
        """Start an answer; raises ``BusyError``/``MemoryGuardError``/``ModelError`` (``UnavailableError``:
        the model's server cannot be reached)/``InputError`` before any text. ``grammar`` (GBNF)
        constrains the output where the engine supports it; callers still validate what comes back."""
        ...

    def pool_stats(self) -> dict: ...

    def close(self) -> None: ...
