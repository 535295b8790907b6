"""Helpers shared by the command modules: building the assistant once per process."""

from __future__ import annotations

from functools import lru_cache

from neoc_assistant.container import Container
from neoc_assistant.settings import Settings


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(Settings())


def assistant():
    return container().assistant
