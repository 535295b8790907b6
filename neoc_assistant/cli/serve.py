"""`serve`: the browser UI and the JSON endpoints on one local port."""

from __future__ import annotations

import logging
import threading
from typing import Optional

import typer

from neoc_assistant.cli.root import app

log = logging.getLogger(__name__)


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to bind (default: serve.host, 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, "--port", min=1, max=65535, help="Port (default: serve.port, 7860)."),
    warm: bool = typer.Option(True, "--warm/--no-warm", help="Load the embedding model in the background at start."),
) -> None:
    """Start the offline web UI (Chat, Knowledge base, System) plus /api/ask, /health, /metrics."""
    from neoc_assistant import runtime
    from neoc_assistant.cli.common import assistant, settings

    config = settings().serve
    host = host if host is not None else config.host
    port = port if port is not None else config.port
    runtime.set_gradio_temp_dir(settings().paths.data_dir / "gradio-tmp")  # before gradio is imported
    runtime.cap_malloc_arenas(config.malloc_arenas)  # before the server's threads allocate
    from neoc_assistant.serve.app import serve as run_server

    service = assistant()
    try:
        service.start_monitoring()  # gauges, alerts and the persisted samples for `stats`
    except (AttributeError, ImportError) as exc:
        log.warning("metrics sampler not started: %s", exc)
    if warm:
        threading.Thread(target=_warm, args=(service, host, port), name="warm-up", daemon=True).start()
    try:
        run_server(service, host, port)
    finally:
        service.close()


def _warm(service, host: str, port: int) -> None:
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
        service.warm_up()
    except Exception as exc:  # noqa: BLE001 - the first question will report it properly
        log.warning("warm-up failed: %s", exc)
