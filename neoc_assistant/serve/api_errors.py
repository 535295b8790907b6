"""Every error the JSON endpoints give has the documented shape ``{"error": kind, "message": one line}``.

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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', '')}"
                             for e in exc.errors()[:3])
        return error_response(400, "InputError", f"The request body is not valid ({problems}): send JSON like {EXAMPLE}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind, message = _http_error(exc, request)
        return error_response(exc.status_code, kind, message, headers=dict(exc.headers or {}) or None)
