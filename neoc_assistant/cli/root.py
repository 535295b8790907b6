"""The root ``typer`` command every command module registers itself on.

A leaf of its own so that the command modules need not import the package that
imports them (``cli/__init__.py`` registers them; ``tests/test_import_graph.py``
keeps the graph without cycles).
"""

from __future__ import annotations

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="NEOC Assistant: offline answers from your operations centre's own documents.",
)
