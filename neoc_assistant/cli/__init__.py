"""`python -m neoc_assistant`: a thin typer shell over ``Assistant``.

Each command group lives in its own module and registers itself on ``app`` (``root.py``).
Any ``NeocError`` becomes one line on stderr and exit status 2 - never a traceback;
so do arguments that are not valid UTF-8 (Python hands them over with lone
surrogates that fail deep inside, at the first encode) and usage errors.
"""

from __future__ import annotations

import logging
import sys

import typer

from neoc_assistant import runtime
from neoc_assistant.errors import NeocError

from neoc_assistant.cli.root import app

__all__ = ["app", "main"]


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from neoc_assistant.cli import ask, kb  # noqa: F401
    from neoc_assistant.cli import cache  # noqa: F401
    from neoc_assistant.cli import models  # noqa: F401
    from neoc_assistant.cli import monitor  # noqa: F401
    from neoc_assistant.cli import serve  # noqa: F401
    from neoc_assistant.cli import audit  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    runtime.configure_process()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # per-file problems are reported in the summary
    _register()
    bad = _undecodable(sys.argv[1:] if argv is None else argv)
    if bad:
        typer.echo(f"error: {bad}", err=True)
        sys.exit(2)
    try:
        code = app(args=argv, prog_name="neoc_assistant", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except NeocError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like (typer bundles its own click: duck-typed)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        raise


def _undecodable(args: list[str]) -> str | None:
    """The complaint about the first argument that is not valid UTF-8, or None."""
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raw = arg.encode("utf-8", "surrogateescape")
            return (f"argument {position} is not valid UTF-8 ({raw[:40]!r}); type it again, or set the "
                    "terminal's encoding to UTF-8 (e.g. LANG=C.UTF-8)")
    return None
