"""What the command modules share: this process's settings and its one ``Assistant``.

Commands talk to the assistant only (the front door); the few that only read
configuration (``config``, ``models list``) use ``settings()``.
"""

from __future__ import annotations

from functools import lru_cache

from neoc_assistant.container import Container
from neoc_assistant.service import Assistant
from neoc_assistant.settings import Settings


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(Settings())


def settings() -> Settings:
    return container().settings


def assistant() -> Assistant:
    return container().assistant
