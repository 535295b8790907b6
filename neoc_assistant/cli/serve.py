"""`serve`: the browser UI and the JSON endpoints on one local port."""

from __future__ import annotations

import logging
import threading
from typing import Optional

import typer

from neoc_assistant.cli import app

log = logging.getLogger(__name__)


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to bind (default: settings.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: settings.port, 7860)."),
    warm: bool = typer.Option(True, "--warm/--no-warm", help="Load the embedding model in the background at start."),
) -> None:
    """Start the offline web UI (Chat, Knowledge base, System) plus /api/ask, /health, /metrics."""
    from neoc_assistant.container import Container
    from neoc_assistant.settings import Settings

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = Settings(**overrides)

    from neoc_assistant.serve import offline

    offline.set_temp_dir(settings.data_dir / "gradio-tmp")
    from neoc_assistant.serve.app import serve as run_server

    container = Container(settings)
    assistant = container.assistant
    try:
        container.metrics.start_sampler()  # gauges, alerts and the persisted samples for `monitor`
    except (AttributeError, ImportError) as exc:
        log.warning("metrics sampler not started: %s", exc)
    if warm:
        threading.Thread(target=_warm, args=(container, settings.host, settings.port), name="warm-up",
                         daemon=True).start()
    run_server(assistant, settings.host, settings.port)


def _warm(container, host: str, port: int) -> None:
    """Once the page is being served, load the embedding model so the first question does not pay for it.

    Waiting for the port keeps the warm-up (torch, sentence-transformers) from slowing the start itself.
    """
    import socket
    import time

    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target, port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    try:
        _ = container.embedder.model
    except Exception as exc:  # noqa: BLE001 - the first question will report it properly
        log.warning("warm-up failed: %s", exc)
