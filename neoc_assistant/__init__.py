"""NEOC Assistant: offline question answering over an Emergency Operations Centre's own documents."""

__version__ = "0.1.0"
