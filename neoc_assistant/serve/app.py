"""One local web server: the Gradio UI at ``/`` plus JSON endpoints.

* ``POST /api/ask`` ``{"question", "use_cache"?, "history"?}`` -> ``Answer.to_json()``
  (400 bad input - malformed JSON, a body no JSON reader takes, never echoed back; 405 another
  method; 413 body over ``serve.max_request_body_kb``; 503 + ``Retry-After`` when busy - no
  room in the line of ``admission.py`` - or memory/model unavailable; 500 otherwise; every error
  body is ``{"error": kind, "message": one line}``, ``api_errors.py``). HTTP Basic auth when auth
  is configured.
* ``GET``/``HEAD /health`` -> ``assistant.health()``; 503 when unhealthy. With auth configured, a
  caller without the right credentials (a load balancer, or a wrong password: the two look the
  same) gets only ``{"healthy", "status"}``: the checks name paths and counts, which are for
  signed-in operators. Concurrent callers share one check (``SharedHealth``), which runs on the
  server's pool, never behind answers.
* ``GET /metrics`` -> ``assistant.metrics_text()`` (Prometheus text); 503 if metrics are unavailable.
  Behind HTTP Basic auth when auth is configured (Prometheus scrapes with ``basic_auth``).
* ``GET /v1/models``, ``POST /v1/chat/completions``: the OpenAI-compatible API (``openai_api.py``),
  with bearer keys (``serve.api_keys``) and OpenAI's error shape.
* ``/openapi.json`` and FastAPI's docs pages: 404 (the docs would load Swagger UI from a CDN,
  and the schema only tells a stranger what to probe).

Passwords are checked and wrong ones throttled, request bodies capped and the page's Content-Security-
Policy set before any route runs (``guards.py``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from neoc_assistant import runtime

runtime.configure_process()  # Gradio reads its environment when it is imported
import anyio  # noqa: E402
import gradio as gr  # noqa: E402
from fastapi import Depends, FastAPI, HTTPException, Request, Response  # noqa: E402
from fastapi.responses import JSONResponse, PlainTextResponse  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from neoc_assistant.errors import BusyError, InputError, MemoryGuardError, ModelError, NeocError  # noqa: E402
from neoc_assistant.hosts import is_loopback  # noqa: E402
from neoc_assistant.monitoring.health import SharedHealth  # noqa: E402
from neoc_assistant.audit import Asker  # noqa: E402
from neoc_assistant.language.texts import ui_text  # noqa: E402
from neoc_assistant.serve import api_errors, openai_api  # noqa: E402
from neoc_assistant.serve.api_keys import ApiKeys  # noqa: E402
from neoc_assistant.serve.admission import Admission, QueueFull  # noqa: E402
from neoc_assistant.serve.chat_handlers import RecentRequests  # noqa: E402
from neoc_assistant.serve.guards import (  # noqa: E402
    BodyLimit, FailedLogins, LoginThrottle, PagePolicy, authenticated, caller)
from neoc_assistant.serve.ui import CSS, ON_LOAD_JS, build_ui, make_theme, ui_language  # noqa: E402
from neoc_assistant.settings import ServeSettings  # noqa: E402

log = logging.getLogger(__name__)

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AskBody(BaseModel):
    question: str
    use_cache: bool = True
    history: list[tuple[str, str]] | None = Field(default=None, description="Earlier (question, answer) turns.")


def _status_for(exc: NeocError) -> int:
    if isinstance(exc, InputError):
        return 400
    if isinstance(exc, (BusyError, MemoryGuardError)):
        return 503
    if isinstance(exc, ModelError):
        return 503
    return 500


def auth_pairs(settings: ServeSettings) -> list[tuple[str, str]] | None:
    user, password = settings.auth_username, settings.auth_password
    if bool(user) != bool(password):
        raise InputError("Set both NEOC_AUTH_USERNAME and NEOC_AUTH_PASSWORD (or neither).")
    return [(user, password)] if user else None


def create_app(assistant, *, host: str | None = None, port: int | None = None, concurrency_limit: int | None = None,
               mode: str | None = None, recent: RecentRequests | None = None) -> FastAPI:
    """``host``/``port``: where the app is served (default: the serve settings); ``concurrency_limit``
    and ``mode`` default to ``assistant.generation_slots()``."""
    settings = assistant.serve
    if concurrency_limit is None or mode is None:
        concurrency_limit, mode = assistant.generation_slots()
    recent = recent or RecentRequests()
    pairs = auth_pairs(settings)

    app = FastAPI(title="NEOC Assistant", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_body_kb * 1024)
    keys = ApiKeys(settings.api_keys)
    app.add_middleware(LoginThrottle, pairs=pairs, keys=keys, failures=FailedLogins(
        free_attempts=settings.login_free_attempts, max_delay_seconds=settings.login_backoff_max_seconds))
    app.add_middleware(PagePolicy)  # outermost: on every response, the 413s and 429s included
    api_errors.install(app)
    admission = Admission(running=settings.api_max_running, waiting=settings.max_waiting,
                          max_wait_seconds=settings.max_wait_seconds)
    shared_health = SharedHealth(assistant.health)
    app.state.admission = admission

    def require_auth(request: Request) -> None:
        if not authenticated(request.scope):
            raise HTTPException(status_code=401, detail="authentication required",
                                headers={"WWW-Authenticate": "Basic"})

    app.include_router(openai_api.build_router(assistant, admission, mode=mode, open_access=not (pairs or keys),
                                               recent=recent))

    @app.get("/openapi.json", include_in_schema=False)
    def no_schema() -> JSONResponse:
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    @app.post("/api/ask", dependencies=[Depends(require_auth)])
    async def api_ask(body: AskBody, request: Request) -> JSONResponse:
        started = time.perf_counter()
        asker = Asker(who=caller(request.scope), channel="api",
                      conversation=request.headers.get("x-conversation-id", "")[:80],
                      opening=(body.history or [(body.question, "")])[0][0])
        try:  # a cache hit is answered at once; only a miss waits in line for an answer slot
            looked_up = await anyio.to_thread.run_sync(lambda: assistant.look_up(
                body.question, history=body.history, use_cache=body.use_cache, asker=asker))
            answer = looked_up.answer if looked_up.answer is not None else await admission.run(assistant.answer, looked_up)
        except NeocError as exc:
            status = _status_for(exc)
            recent.add((time.perf_counter() - started) * 1000, "api", "busy" if isinstance(exc, QueueFull) else "error")
            retry = exc.retry_after if isinstance(exc, QueueFull) else max(2, admission.retry_after())
            return api_errors.error_response(status, type(exc).__name__ if not isinstance(exc, QueueFull) else "BusyError",
                                             str(exc), headers={"Retry-After": str(retry)} if status == 503 else None)
        except Exception:  # noqa: BLE001 - one line out, details in the log
            log.exception("/api/ask failed")
            recent.add((time.perf_counter() - started) * 1000, "api", "error")
            return api_errors.error_response(500, "InternalError", "internal error; see the server log")
        total = (answer.timings_ms or {}).get("total")
        recent.add(total if total is not None else (time.perf_counter() - started) * 1000, "api",
                   "cached" if answer.cached else answer.mode)
        return JSONResponse(answer.to_json())

    @app.api_route("/api/ask", methods=["GET", "HEAD", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def api_ask_other_methods() -> None:
        raise HTTPException(status_code=405, headers={"Allow": "POST"})

    @app.api_route("/health", methods=["GET", "HEAD"])
    async def health(request: Request) -> Response:
        full = authenticated(request.scope)
        try:
            data: dict[str, Any] = await anyio.to_thread.run_sync(shared_health.get)
        except Exception as exc:  # noqa: BLE001
            log.warning("health() failed: %s", exc)
            detail = {"error": f"{type(exc).__name__}: {exc}"} if full else {}
            return JSONResponse({"healthy": False, "status": "unhealthy", **detail}, status_code=503)
        if not full:
            data = {"healthy": data.get("healthy", False), "status": data.get("status", "unhealthy")}
        else:
            data = {**data, "api_queue": admission.snapshot()}
        status = 200 if data.get("healthy") else 503
        if request.method == "HEAD":
            return Response(status_code=status, media_type="application/json")
        return JSONResponse(data, status_code=status)

    @app.api_route("/metrics", methods=["GET", "HEAD"], dependencies=[Depends(require_auth)])
    def metrics() -> PlainTextResponse:
        try:
            text = assistant.metrics_text()
        except (AttributeError, ImportError) as exc:
            return PlainTextResponse(f"# metrics unavailable: {type(exc).__name__}\n", status_code=503)
        return PlainTextResponse(text, media_type=PROMETHEUS_CONTENT_TYPE)

    blocks = build_ui(assistant, concurrency_limit=concurrency_limit, mode=mode, recent=recent)
    app.state.blocks = blocks
    app.state.concurrency_limit = concurrency_limit
    app.state.mode = mode
    gr.mount_gradio_app(
        app, blocks, path="/",
        server_name=host or settings.host, server_port=port or settings.port,
        auth=pairs, auth_message=ui_text("login", ui_language(assistant)) if pairs else None,
        theme=make_theme(), css=CSS, js=ON_LOAD_JS,
        footer_links=[], run_history=False, ssr_mode=False, pwa=False, mcp_server=False,
        enable_monitoring=False, show_error=False,
        max_file_size=f"{settings.upload_max_mb}mb",
        allowed_paths=[],
    )
    # Gradio checks that an event's input files are ones it received (in its upload folder)
    # only once the app counts as launched, which mount_gradio_app never marks: without this
    # a forged FileData could name any file on the server (issue 12.1).
    blocks.has_launched = True
    return app


def serve(assistant, host: str, port: int) -> None:
    """Build the app and run it with uvicorn until interrupted."""
    import uvicorn

    if not is_loopback(host) and not (assistant.serve.auth_username and assistant.serve.auth_password):
        log.warning("serving on %s without authentication: anyone on the network can use the assistant "
                    "(set NEOC_AUTH_USERNAME and NEOC_AUTH_PASSWORD)", host)
    app = create_app(assistant, host=host, port=port)
    print(f"NEOC Assistant: http://{host}:{port}/  (mode {app.state.mode}, "
          f"{app.state.concurrency_limit} concurrent answer(s); Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                timeout_graceful_shutdown=5)
