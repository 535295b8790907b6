"""NEOC Assistant: offline question answering over an Emergency Operations Centre's own documents.

Start at ``docs/architecture.md``; the front door is ``service.Assistant``,
built by ``container.Container`` from ``settings.Settings``.
"""

__version__ = "0.1.0"
