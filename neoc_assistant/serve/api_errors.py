"""Every error the JSON endpoints give has the documented shape ``{"error": kind, "message": one line}``
(under ``/v1/``, OpenAI's ``{"error": {"message", "type", "param", "code"}}``: ``openai_api.py``).

Why: FastAPI answers what it catches itself (a body its JSON reader chokes on - a
number of 5,000 digits, arrays nested 5,000 deep - a wrong method, a missing
password) with ``{"detail": ...}``, which a client written against
``docs/service-interface.md`` cannot read. The input is never echoed back: it
may be huge or hostile.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from neoc_assistant.serve.guards import OPENAI_PREFIX, openai_error_body

EXAMPLE = '{"question": "What are the EOC activation levels?"}'


def error_response(status: int, kind: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=status, headers=headers)


def _http_error(exc: StarletteHTTPException, request: Request) -> tuple[str, str]:
    if exc.status_code == 400:  # FastAPI could not parse the body at all (not even as JSON with errors)
        return "InputError", ("The request body could not be read (not JSON, nested too deeply, or a number too "
                              f"long): send JSON like {EXAMPLE}.")
    if exc.status_code == 401:
        return "Unauthorized", "Sign in: send the centre's user name and password (HTTP Basic)."
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return "MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}."
    if exc.status_code == 404:
        return "NotFound", f"No such endpoint: {request.url.path[:80]}."
    return "HTTPError", f"HTTP {exc.status_code}."


def _openai_shape(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse | None:
    """The same error in OpenAI's shape for the ``/v1/`` routes, whose clients read only that."""
    if not request.url.path.startswith(OPENAI_PREFIX):
        return None
    kind, code = {400: ("invalid_request_error", "invalid_request"), 401: ("authentication_error", "invalid_api_key"),
                  404: ("invalid_request_error", "unknown_url"), 405: ("invalid_request_error", "method_not_allowed"),
                  }.get(status, ("server_error", None))
    return JSONResponse(openai_error_body(message, kind, code), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', '')}"
                             for e in exc.errors()[:3])
        message = f"The request body is not valid ({problems}): send JSON like {EXAMPLE}."
        return _openai_shape(request, 400, message) or error_response(400, "InputError", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, message = _http_error(exc, request)
        headers = dict(exc.headers or {}) or None
        return (_openai_shape(request, exc.status_code, message, headers)
                or error_response(exc.status_code, kind, message, headers=headers))
