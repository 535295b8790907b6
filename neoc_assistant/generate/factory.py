"""Where ``generation.backend`` becomes an object: the only module that knows every implementation.

Kept out of ``backend.py`` so the interface imports no implementation and each
implementation can import the interface's small types without a cycle
(``tests/test_import_graph.py`` holds the line). A new backend is one more
``case`` here.
"""

from __future__ import annotations

from typing import Callable

from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.settings import GenerationSettings


def open_generation_backend(
    settings: GenerationSettings,
    *,
    on_guard_action: Callable[[str], None] | None = None,
    shed_cache: Callable[[], int] | None = None,
) -> GenerationBackend:
    """The backend ``settings.backend`` names; nothing is loaded until the first answer."""
    match settings.backend:
        case "llamacpp":
            from neoc_assistant.generate.engine import GenerationEngine

            return GenerationEngine(settings, on_guard_action=on_guard_action, shed_cache=shed_cache)
        case "openai":
            from neoc_assistant.generate.openai_backend import OpenAIBackend

            return OpenAIBackend(settings)
    raise ValueError(f"unknown generation.backend {settings.backend!r}")  # pragma: no cover - Literal
