"""What stands between the network and the app: a request-body cap and a back-off on wrong passwords.

Both are plain ASGI middleware around the whole app (the JSON API and the mounted
Gradio UI), so they act before anything reads a body or checks a password:

* ``BodyLimit`` - a request body over ``serve.max_request_body_kb`` is refused
  with 413 as soon as its ``Content-Length`` (or, when chunked, the bytes
  body read so far) pass the limit, so a 150 MB POST costs nothing. Gradio's
  file-upload route is left to Gradio, which enforces ``serve.upload_max_mb``.
* ``LoginThrottle`` - wrong credentials (a 400 from Gradio's ``/login``, a 401
  to a request that carried a password) count against the client's address;
  after ``serve.login_free_attempts`` of them each further attempt must wait
  twice as long as the last (1 s, 2 s, 4 s ... up to
  ``serve.login_backoff_max_seconds``), answered 429 with ``Retry-After``
  without checking the password. A successful login clears the count.
"""

from __future__ import annotations

import json
import threading
import time

from cachetools import TTLCache

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

    def _message(self) -> dict:
        return {"error": "InputError",
                "message": f"The request body is over the {self.max_bytes // 1024} KB limit "
                           "(NEOC_SERVE__MAX_REQUEST_BODY_KB); send a shorter question and history."}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD") or \
                scope["path"].rstrip("/").endswith(UPLOAD_ROUTE_SUFFIX):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:  # the HTTP server holds the body to its declared length
            if not declared.isdigit() or int(declared) > self.max_bytes:
                return await _send_json(send, 413, self._message())
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
                return await _send_json(send, 413, self._message())
            if not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class LoginThrottle:
    def __init__(self, app, *, free_attempts: int, max_delay_seconds: float, clock=time.monotonic):
        self.app = app
        self.free_attempts = free_attempts
        self.max_delay = max_delay_seconds
        self.clock = clock
        # address -> (failures, time of the last one); forgotten once no back-off can apply any more
        self._failures: TTLCache = TTLCache(maxsize=10_000, ttl=max(60.0, 2 * max_delay_seconds), timer=clock)
        self._lock = threading.Lock()

    def wait_seconds(self, client: str) -> float:
        """How long ``client`` must still wait before its next password is checked (0: now)."""
        with self._lock:
            failures, last = self._failures.get(client, (0, 0.0))
        if failures < self.free_attempts:
            return 0.0
        delay = min(self.max_delay, 2.0 ** (failures - self.free_attempts))
        return max(0.0, last + delay - self.clock())

    def failed(self, client: str) -> None:
        with self._lock:
            failures, _ = self._failures.get(client, (0, 0.0))
            self._failures[client] = (failures + 1, self.clock())

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        path = scope["path"].rstrip("/")
        is_login = scope["method"] == "POST" and path.endswith("/login")
        sends_password = is_login or headers.get(b"authorization", b"").lower().startswith(b"basic ")
        if not sends_password:
            return await self.app(scope, receive, send)
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.wait_seconds(client)
        if wait > 0:
            return await _send_json(send, 429, {
                "error": "TooManyAttempts",
                "message": f"Too many wrong passwords from this address: try again in {wait:.0f} s."},
                headers=[(b"retry-after", str(max(1, round(wait))).encode())])

        async def watching_send(message):
            if message["type"] == "http.response.start":
                status = message["status"]
                if (is_login and status == 400) or status == 401:
                    self.failed(client)
                elif is_login and status < 300:
                    self.succeeded(client)
            await send(message)

        await self.app(scope, receive, watching_send)
