"""The OpenAI-compatible API of the assistant itself: ``GET /v1/models`` and ``POST /v1/chat/completions``.

Why: a centre that already runs Open WebUI, LibreChat, a LangChain script or a
notebook speaks OpenAI's protocol; with it, those use the assistant unchanged
(the README shows Open WebUI). The answers are the assistant's own - retrieved,
verified, cited - through the same front door (``Assistant.ask_stream``) and the
same line for answer slots (``admission.py``) as ``/api/ask``.

* Auth: with ``serve.api_keys`` configured, ``Authorization: Bearer <key>``; the
  UI's login (HTTP Basic) also works for a person with ``curl``. With neither
  configured the server is open, like the UI on 127.0.0.1. Wrong keys are
  throttled with the passwords (``guards.LoginThrottle``).
* Streaming: server-sent events in OpenAI's chunk format - the role, the text
  as it is verified, the sources footer, a last chunk with ``finish_reason``,
  ``references`` and ``neoc``, the usage (its own chunk when
  ``stream_options.include_usage``, else on the last one), ``[DONE]``. The
  answer is produced on its own thread and handed to the event loop; when the
  client goes away the answer is cancelled (the model's context is freed) and
  its slot given back.
* A withdrawn text (``replace``: a verified answer that did not answer the
  question becomes quotes) cannot be taken back from a stream a client has
  shown: the quotes follow under a line that says the text above is withdrawn.
  The non-streamed message holds only the final text.
* Errors: OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``
  with 400 / 401 / 404 (unknown model) / 429 / 503 + ``Retry-After`` / 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any, AsyncIterator, Callable

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from neoc_assistant.answer import Answer
from neoc_assistant.errors import BusyError, InputError, MemoryGuardError, ModelError, NeocError
from neoc_assistant.serve import openai_schema as schema
from neoc_assistant.serve.admission import Admission, QueueFull, Ticket
from neoc_assistant.serve.chat_handlers import RecentRequests
from neoc_assistant.audit import Asker
from neoc_assistant.serve.guards import API_KEY_SCOPE_KEY, USER_SCOPE_KEY, caller, openai_error_body

log = logging.getLogger(__name__)

WITHDRAWN = ("\n\n---\nThe text above is withdrawn: it was true to the documents but did not answer the question. "
             "The documents' own sentences:\n\n")
_END = object()


def openai_error(status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
                 headers: dict | None = None) -> JSONResponse:
    return JSONResponse(openai_error_body(message, kind, code, param), status_code=status, headers=headers)


def _neoc_error(exc: NeocError, admission: Admission) -> JSONResponse:
    if isinstance(exc, InputError):
        return openai_error(400, str(exc), "invalid_request_error", "invalid_input", "messages")
    retry = exc.retry_after if isinstance(exc, QueueFull) else max(2, admission.retry_after())
    if isinstance(exc, (BusyError, MemoryGuardError, ModelError)):
        return openai_error(503, str(exc), "service_unavailable", "busy" if isinstance(exc, BusyError) else
                            type(exc).__name__, headers={"Retry-After": str(retry)})
    return openai_error(500, str(exc), "server_error", type(exc).__name__)


def _sse(data: dict | str) -> bytes:
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n".encode()


class AnswerStream(StreamingResponse):
    """A streamed answer that cancels its question and gives its slot back however the response ends
    (finished, client gone, or never started because the client left first)."""

    def __init__(self, body: AsyncIterator[bytes], *, cancel: threading.Event, headers: dict):
        super().__init__(body, media_type="text/event-stream", headers=headers)
        self._cancel = cancel

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._cancel.set()


class Producer:
    """Runs ``Assistant.ask_stream`` to its end on one thread (a LangChain stream keeps context per thread,
    so it must not hop between threads), handing each event to the event loop's queue."""

    def __init__(self, start: Callable[[threading.Event], Any], ticket: Ticket | None):
        """``ticket``: the answer slot held while the answer runs (None: a cache hit, which needs none)."""
        self.cancel = threading.Event()
        self.queue: asyncio.Queue = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._start, self._ticket = start, ticket
        self._ok = False
        self.thread = threading.Thread(target=self._run, name="openai-stream", daemon=True)

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancel.set()

    def _run(self) -> None:
        stream = None
        try:
            stream = self._start(self.cancel)
            for event in stream:  # on cancel the chain notices the event and still ends with "done"
                self._put(event)
            self._ok = True
        except BaseException as exc:  # noqa: BLE001 - handed to the response, which says what happened
            self._put(exc)
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the answer stream failed", exc_info=True)
            self._put(_END)
            ticket = self._ticket
            if ticket is not None:
                try:
                    self._loop.call_soon_threadsafe(lambda: ticket.release(timed=self._ok))
                except RuntimeError:
                    pass

    async def events(self) -> AsyncIterator[Any]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            yield item


def build_router(assistant, admission: Admission, *, mode: str, open_access: bool,
                 recent: RecentRequests | None = None) -> APIRouter:
    """``open_access``: neither API keys nor a login are configured, so anyone who reaches the server may
    ask (as in the UI); otherwise a request needs a right key or the login."""
    router = APIRouter(prefix="/v1")
    started = int(time.time())
    recent = recent or RecentRequests()

    def who(request: Request) -> str | None:
        scope = request.scope
        if scope.get(API_KEY_SCOPE_KEY) or scope.get(USER_SCOPE_KEY) or open_access:
            return caller(scope)
        return None

    def unauthorized() -> JSONResponse:
        return openai_error(401, "Missing or wrong API key: send 'Authorization: Bearer <key>' with a key from "
                                 "serve.api_keys (`python -m neoc_assistant apikey new NAME` makes one).",
                            "authentication_error", "invalid_api_key",
                            headers={"WWW-Authenticate": 'Bearer realm="neoc-assistant"'})

    @router.get("/models")
    def models(request: Request) -> JSONResponse:
        if who(request) is None:
            return unauthorized()
        return JSONResponse(schema.model_list(mode, started))

    @router.get("/models/{model_id}")
    def model(model_id: str, request: Request) -> JSONResponse:
        if who(request) is None:
            return unauthorized()
        if model_id != schema.MODEL_ID:
            return openai_error(404, f"The model {model_id[:60]!r} does not exist; this server offers "
                                     f"{schema.MODEL_ID!r}.", "invalid_request_error", "model_not_found", "model")
        return JSONResponse(schema.model_list(mode, started)["data"][0])

    @router.post("/chat/completions")
    async def chat_completions(request: Request):
        asker = who(request)
        if asker is None:
            return unauthorized()
        try:
            body = schema.ChatRequest.model_validate(await request.json())
            body.refuse_unsupported()
            question, history = body.conversation()
        except ValueError as exc:  # a body that is not JSON, a ValidationError, a RequestProblem
            return _request_problem(exc)
        if body.model != schema.MODEL_ID:
            return openai_error(404, f"The model {body.model[:60]!r} does not exist; this server offers "
                                     f"{schema.MODEL_ID!r} (GET /v1/models).", "invalid_request_error",
                                "model_not_found", "model")
        try:
            question = assistant.validate_question(question, history)
        except InputError as exc:
            return openai_error(400, str(exc), "invalid_request_error", "invalid_input", "messages")
        headers = {"X-Neoc-Ignored": ",".join(body.ignored())} if body.ignored() else {}
        t0 = time.perf_counter()
        try:  # a cache hit is answered at once; only a miss waits in line for an answer slot
            looked_up = await anyio.to_thread.run_sync(lambda: assistant.look_up(
                question, history=history or None, asker=_asker(asker, request, body)))
            ticket = None if looked_up.answer is not None else await admission.enter()
        except QueueFull as exc:
            recent.add((time.perf_counter() - t0) * 1000, "openai", "busy")
            return _neoc_error(exc, admission)
        except NeocError as exc:
            recent.add((time.perf_counter() - t0) * 1000, "openai", "error")
            return _neoc_error(exc, admission)

        def start(cancel: threading.Event):
            return assistant.answer_stream(looked_up, cancel=cancel)

        producer = Producer(start, ticket)
        producer.thread.start()
        ids = schema.Ids(body.model)
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            chunks = _chunks(producer, ids, question, history, include_usage, recent, t0)
            return AnswerStream(chunks, cancel=producer.cancel,
                                headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            answer, replaced = await _collect(producer)
        except NeocError as exc:
            recent.add((time.perf_counter() - t0) * 1000, "openai", "error")
            return _neoc_error(exc, admission)
        except Exception:  # noqa: BLE001 - one line out, details in the log
            log.exception("/v1/chat/completions failed")
            recent.add((time.perf_counter() - t0) * 1000, "openai", "error")
            return openai_error(500, "internal error; see the server log", "server_error", "internal_error")
        finally:
            producer.cancel.set()
        content = answer.answer + schema.footer(answer)
        recent.add((time.perf_counter() - t0) * 1000, "openai", "cached" if answer.cached else answer.mode)
        counts = schema.usage(question, history, answer, content)
        return JSONResponse(ids.completion(content, answer, counts), headers=headers)

    @router.api_route("/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                      include_in_schema=False)
    def elsewhere(rest: str, request: Request) -> JSONResponse:
        """Anything else under /v1 in OpenAI's shape (the UI mounted at / would answer its own 404)."""
        if rest.rstrip("/") in ("models", "chat/completions"):
            allowed = "GET" if rest.startswith("models") else "POST"
            return openai_error(405, f"{request.method} is not allowed on {request.url.path}; use {allowed}.",
                                "invalid_request_error", "method_not_allowed", headers={"Allow": allowed})
        return openai_error(404, f"No such endpoint: {request.url.path[:80]} (this server offers GET /v1/models "
                                 "and POST /v1/chat/completions).", "invalid_request_error", "unknown_url")

    return router


def _asker(who: str, request: Request, body: schema.ChatRequest) -> Asker:
    conversation = request.headers.get("x-conversation-id", "")[:80]
    return Asker(who=who, channel="openai", conversation=conversation,
                 opening=next((m.content for m in body.messages if m.role == "user" and isinstance(m.content, str)), ""))


def _request_problem(exc: ValueError) -> JSONResponse:
    if isinstance(exc, schema.RequestProblem):
        return openai_error(400, str(exc), "invalid_request_error", exc.code, exc.param)
    if isinstance(exc, ValidationError):
        first: dict = dict(exc.errors()[0]) if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return openai_error(400, f"The request body is not valid ({where}: {first.get('msg', '')}); send "
                                 '{"model": "neoc-assistant", "messages": [{"role": "user", "content": "..."}]}.',
                            "invalid_request_error", "invalid_request", where)
    return openai_error(400, "The request body could not be read as JSON.", "invalid_request_error", "invalid_json")


async def _collect(producer: Producer) -> tuple[Answer, bool]:
    answer, replaced = None, False
    async for item in producer.events():
        if isinstance(item, BaseException):
            raise item
        if item.kind == "replace":
            replaced = True
        elif item.kind == "done":
            answer = item.answer
    if answer is None:
        raise NeocError("the answer ended without a result")
    return answer, replaced


async def _chunks(producer: Producer, ids: schema.Ids, question: str, history: list, include_usage: bool,
                  recent: RecentRequests, t0: float) -> AsyncIterator[bytes]:
    yield _sse(ids.chunk({"role": "assistant", "content": ""}))
    sent = ""
    try:
        async for item in producer.events():
            if isinstance(item, BaseException):
                recent.add((time.perf_counter() - t0) * 1000, "openai", "error")
                yield _sse(_stream_error(item))
                break
            if item.kind == "token" and item.text:
                sent += item.text
                yield _sse(ids.chunk({"content": item.text}))
            elif item.kind == "replace":
                piece = WITHDRAWN + item.text if sent else item.text
                sent += piece
                yield _sse(ids.chunk({"content": piece}))
            elif item.kind == "done":
                answer = item.answer
                tail = schema.footer(answer)
                if tail:
                    sent += tail
                    yield _sse(ids.chunk({"content": tail}))
                counts = schema.usage(question, history, answer, sent)
                extra = {"references": schema.references(answer), "neoc": schema.neoc_details(answer)}
                last = ids.chunk({}, schema.finish_reason(answer), **extra)
                if not include_usage:
                    last["usage"] = counts
                yield _sse(last)
                if include_usage:
                    yield _sse(ids.usage_chunk(counts))
                recent.add((time.perf_counter() - t0) * 1000, "openai", "cached" if answer.cached else answer.mode)
        yield _sse("[DONE]")
    except anyio.get_cancelled_exc_class():
        producer.cancel.set()  # the client went away: stop the answer now, not when it is written
        raise
    finally:
        producer.cancel.set()


def _stream_error(exc: BaseException) -> dict:
    """An error after the stream began (its status is already sent): OpenAI's error object as an event."""
    if isinstance(exc, NeocError):
        kind = "invalid_request_error" if isinstance(exc, InputError) else "service_unavailable"
        return openai_error_body(str(exc), kind, type(exc).__name__)
    log.error("/v1/chat/completions stream failed", exc_info=exc)
    return openai_error_body("internal error; see the server log", "server_error", "internal_error")
