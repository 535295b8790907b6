"""What stands between the network and the app: a body cap, one password check with a back-off, page policy.

Plain ASGI middleware around the whole app (the JSON API and the mounted
Gradio UI), so they act before anything reads a body or a route runs:

* ``BodyLimit`` - a request body over ``serve.max_request_body_kb`` is refused
  with 413 as soon as its ``Content-Length`` (or, when chunked, the bytes
  body read so far) pass the limit, so a 150 MB POST costs nothing. Gradio's
  file-upload route is left to Gradio, which enforces ``serve.upload_max_mb``.
* ``LoginThrottle`` - the one place a password is checked and counted, for
  every route that takes one: HTTP Basic credentials on any request (``/api/ask``,
  ``/metrics``, ``/health``) are checked here, before the route runs, and the
  verdict is left in the request scope (``authenticated(scope)``); Gradio's own
  ``/login`` form is counted as it is answered. Wrong passwords count against
  the client's address - and so do wrong API keys (``Authorization: Bearer``,
  checked against ``serve.api_keys`` when keys are configured: ``api_keys.py``);
  after ``serve.login_free_attempts`` of them each further
  attempt must wait twice as long as the last (1 s, 2 s, 4 s ... up to
  ``serve.login_backoff_max_seconds``), answered 429 with ``Retry-After``
  without checking the password. A right password clears the count. Why here
  and not in each route: ``/health`` answers a wrong password like no password
  (the public verdict), so a count kept from 401s never saw its guesses - 200
  of them took 1.8 s and the right one showed itself by the ``checks`` it
  unlocked. Checking and counting in one step under a lock also means a burst
  of parallel guesses cannot all pass the "no wait yet" test before the first
  failure is counted (a login form attempt is counted when it starts, for the
  same reason).
* ``PagePolicy`` - a Content-Security-Policy on every response that lets the
  page load, connect to and frame nothing but this server (and ``data:`` /
  ``blob:`` URLs it makes itself): a last line behind ``safe_html``, so that
  even markup that slipped through could not make the browser of an offline EOC
  beacon out to another host.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time

from cachetools import TTLCache

from neoc_assistant.serve.api_keys import ApiKeys

UPLOAD_ROUTE_SUFFIX = "/upload"  # Gradio's multipart upload route (its own size limit)


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, scope) -> dict:
        message = (f"The request body is over the {self.max_bytes // 1024} KB limit "
                   "(NEOC_SERVE__MAX_REQUEST_BODY_KB); send a shorter question and history.")
        if is_openai_path(scope):
            return openai_error_body(message, "invalid_request_error", "request_too_large")
        return {"error": "InputError", "message": message}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or \
                scope["path"].rstrip("/").endswith(UPLOAD_ROUTE_SUFFIX):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:  # the HTTP server holds the body to its declared length
            if not declared.isdigit() or int(declared) > self.max_bytes:
                return await _send_json(send, 413, self._message(scope))
            return await self.app(scope, receive, send)
        # Chunked: read it here, at most the limit, then hand it on as if it had just arrived.
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await _send_json(send, 413, self._message(scope))
            if not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


AUTH_SCOPE_KEY = "neoc.authenticated"  # LoginThrottle's verdict on a request's Basic credentials
USER_SCOPE_KEY = "neoc.user"  # the user name of right Basic credentials
API_KEY_SCOPE_KEY = "neoc.api_key"  # the name (never the key) of a right bearer token
OPENAI_PREFIX = "/v1/"


def authenticated(scope) -> bool:
    """True when the request carried the right Basic credentials (or no login is configured)."""
    return bool(scope.get(AUTH_SCOPE_KEY))


def caller(scope) -> str:
    """Who asked, for the audit trail: ``key:NAME``, ``user:NAME`` or ``anonymous`` (no secret)."""
    if scope.get(API_KEY_SCOPE_KEY):
        return f"key:{scope[API_KEY_SCOPE_KEY]}"
    if scope.get(USER_SCOPE_KEY):
        return f"user:{scope[USER_SCOPE_KEY]}"
    return "anonymous"


def is_openai_path(scope) -> bool:
    return str(scope.get("path", "")).startswith(OPENAI_PREFIX)


def openai_error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict:
    """OpenAI's error shape, which its clients (and Open WebUI, LangChain) read and show."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _basic_credentials(header: bytes) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` value; None when it is not decodable."""
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class FailedLogins:
    """Wrong passwords per client address, and the wait they impose (thread-safe)."""

    def __init__(self, *, free_attempts: int, max_delay_seconds: float, clock=time.monotonic):
        self.free_attempts = free_attempts
        self.max_delay = max_delay_seconds
        self.clock = clock
        # address -> (failures, time of the last one); forgotten once no back-off can apply any more
        self._failures: TTLCache = TTLCache(maxsize=10_000, ttl=max(60.0, 2 * max_delay_seconds), timer=clock)
        self._lock = threading.Lock()

    def _wait(self, client: str) -> float:
        failures, last = self._failures.get(client, (0, 0.0))
        if failures < self.free_attempts:
            return 0.0
        delay = min(self.max_delay, 2.0 ** (failures - self.free_attempts))
        return max(0.0, last + delay - self.clock())

    def wait_seconds(self, client: str) -> float:
        """How long ``client`` must still wait before its next password is checked (0: now)."""
        with self._lock:
            return self._wait(client)

    def attempt(self, client: str, check) -> tuple[float, bool]:
        """Check a password (``check()`` -> bool) unless ``client`` must wait, and count the verdict,
        in one step: (wait, False) while waiting, else (0, verdict)."""
        with self._lock:
            wait = self._wait(client)
            if wait > 0:
                return wait, False
            ok = bool(check())
            if ok:
                self._failures.pop(client, None)
            else:
                self._record_failure(client)
            return 0.0, ok

    def _record_failure(self, client: str) -> None:
        failures, _ = self._failures.get(client, (0, 0.0))
        self._failures[client] = (failures + 1, self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            self._record_failure(client)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


class LoginThrottle:
    def __init__(self, app, *, failures: FailedLogins, pairs: list[tuple[str, str]] | None, keys: ApiKeys | None = None):
        self.app = app
        self.failures = failures
        self.pairs = pairs or []
        self.keys = keys or ApiKeys()

    def _matches(self, credentials: tuple[str, str] | None) -> bool:
        if credentials is None:
            return False
        user, password = (c.encode() for c in credentials)
        # every pair compared, each in constant time: no early exit tells which part was wrong
        results = [secrets.compare_digest(user, u.encode()) & secrets.compare_digest(password, p.encode())
                   for u, p in self.pairs]
        return any(results)

    @staticmethod
    async def _too_many(send, wait: float, openai: bool = False) -> None:
        message = f"Too many wrong passwords or API keys from this address: try again in {wait:.0f} s."
        body = openai_error_body(message, "rate_limit_error", "too_many_attempts") if openai else {
            "error": "TooManyAttempts", "message": message}
        await _send_json(send, 429, body, headers=[(b"retry-after", str(max(1, round(wait))).encode())])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        authorization = dict(scope.get("headers") or []).get(b"authorization", b"")
        openai = is_openai_path(scope)
        if self.keys and authorization[:7].lower() == b"bearer ":
            # Only when keys are configured: without them the OpenAI clients still send a bearer (any
            # placeholder), which is not a password attempt.
            token = authorization[7:].strip().decode("latin-1")
            found: dict[str, str | None] = {}

            def check() -> bool:
                found["name"] = self.keys.name_of(token)
                return found["name"] is not None

            wait, ok = self.failures.attempt(client, check)
            if wait > 0:
                return await self._too_many(send, wait, openai)
            if ok:
                scope[API_KEY_SCOPE_KEY] = found["name"]
        if not self.pairs:
            scope[AUTH_SCOPE_KEY] = True  # no login configured: everyone is the operator
            return await self.app(scope, receive, send)
        scope[AUTH_SCOPE_KEY] = False
        if authorization[:6].lower() == b"basic ":
            credentials = _basic_credentials(authorization)
            wait, ok = self.failures.attempt(client, lambda: self._matches(credentials))
            if wait > 0:
                return await self._too_many(send, wait, openai)
            scope[AUTH_SCOPE_KEY] = ok
            if ok:
                scope[USER_SCOPE_KEY] = credentials[0]
        if not (scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/login")):
            return await self.app(scope, receive, send)
        # Gradio checks the form; the attempt counts as a failure from the start and is forgiven if it works
        wait, _ = self.failures.attempt(client, lambda: False)
        if wait > 0:
            return await self._too_many(send, wait)

        async def watching_send(message):
            if message["type"] == "http.response.start" and message["status"] < 300:
                self.failures.succeeded(client)
            await send(message)

        await self.app(scope, receive, watching_send)


class PagePolicy:
    """Adds the Content-Security-Policy (and nosniff, no referrer) to every HTTP response."""

    POLICY = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
              "font-src 'self' data:; connect-src 'self'; frame-src 'self'; worker-src 'self' blob:; "
              "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'")
    HEADERS = [(b"content-security-policy", POLICY.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer")]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *(h for h in self.HEADERS if h[0] not in names)]}
            await send(message)

        await self.app(scope, receive, with_policy)
