"""Answers written by OpenAI-compatible LLM servers: the ``GenerationBackend`` of ``generation.backend = "openai"``.

Any server with a streaming ``POST /v1/chat/completions`` works: llama.cpp's
``llama-server`` (continuous batching over ``--parallel`` slots), vLLM,
Ollama, ``llama_cpp.server``. The chain sees what it sees from the local
engine - messages in, text pieces out, ``stats`` at the end - so claim
verification, citations and caching do not change.

Why not LangChain's ``ChatOpenAI`` (langchain-openai)? It was tried against
``llama_cpp.server`` with SmolLM2 (docs/deploy.md, "Choices"): it streams, and
closing its iterator closes the response, but (1) it sends the length limit
as ``max_completion_tokens``, which llama.cpp's servers ignore, so answers ran
past ``max_tokens``; (2) a Stop pressed while the server is still reading the
prompt or queueing cannot reach its socket - we must be able to close the
connection from another thread at any moment, which needs the socket; (3) it
brings ``openai`` and ``tiktoken``, whose token counting fetches vocabulary
files from the internet on first use (this assistant runs offline). The
protocol needed here is one streamed POST, so it is spoken directly with the
standard library's ``http.client``.

Design points:
* **One connection per answer, its socket ours** (``openai_stream.py``): Stop
  shuts the socket down at once, from any thread, in any phase, and the server
  sees the client gone and frees its slot.
* **Routing and failure** (``server_pool.py``): least-busy healthy server; a
  connection error, timeout or 5xx before the first piece moves on to the
  next server; when none is left, ``UnavailableError`` - the chain then
  answers with the documents' own sentences, labelled. A server failing
  mid-answer - or ending the stream without a ``finish_reason`` of "stop" or
  "length" - ends it with ``finish_reason = "error"`` (the verified part
  stays, is labelled cut off and is never cached).
* **Prompt packing** counts tokens with the server's own tokenizer
  (``/tokenize`` on llama-server and vLLM, ``/extras/tokenize`` on
  ``llama_cpp.server``), remembered per text; without one - or when it does
  not answer within 2 s, as ``llama_cpp.server``'s does not while it
  generates (it queues it behind the answer) - a safe over-estimate (one
  token per 3 bytes); a slow tokenizer is not a server failure.
* **The same hygiene as the local stream**: chat markers are never shown and a
  looping answer is ended (``stream_guard.py``); control-token text inside
  documents is broken up before it is sent, because a server renders the
  template and then parses special tokens in the whole prompt.
"""

from __future__ import annotations

import functools
import http.client
import json
import logging
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

from cachetools import LRUCache

from neoc_assistant.language.texts import answer_text
from neoc_assistant.errors import BusyError, InputError, UnavailableError
from neoc_assistant.generate.chat_template import ALWAYS_STOP
from neoc_assistant.generate.openai_stream import CancelWatcher, Exchange, RemoteStream, ServerFailure, check_status
from neoc_assistant.generate.server_pool import Server, ServerPool
from neoc_assistant.settings import GenerationSettings

log = logging.getLogger(__name__)

_ZWSP = "\u200b"
TOKENIZE_PATHS = ("/tokenize", "/extras/tokenize")
TOKENIZE_TIMEOUT_SECONDS = 2.0  # prompt packing waits no longer for a count; then it estimates
BYTES_PER_TOKEN_ESTIMATE = 3  # BPE vocabularies average ~4 bytes per token on English; 3 over-counts safely


def defuse(text: str) -> str:
    """Break chat-control strings (``<|im_end|>``...) so document text cannot end a turn."""
    if "<" not in text and "[" not in text:
        return text
    for marker in ALWAYS_STOP:
        text = text.replace(marker, marker[0] + _ZWSP + marker[1:])
    return text.replace("<|", "<" + _ZWSP + "|")


def estimate_tokens(text: str) -> int:
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN_ESTIMATE)


class OpenAIBackend:
    """Answers from OpenAI-compatible servers; nothing is contacted until the first question."""

    def __init__(self, settings: GenerationSettings):
        self.settings = settings
        self.pool = ServerPool(settings.server_url_list(), settings.server_retry_seconds)
        size = settings.server_max_concurrent
        self.pool_plan: dict = {"size": size, "servers": len(self.pool.servers)}
        self._slots = threading.BoundedSemaphore(size)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._tokens: LRUCache = LRUCache(maxsize=4096)
        self._model = settings.server_model or None
        self._model_checked_at = -1e9
        self._watcher = CancelWatcher()
        self._headers = {"Authorization": f"Bearer {settings.server_api_key}"} if settings.server_api_key else {}

    # -- cheap queries ------------------------------------------------------------------------
    @property
    def model_loaded(self) -> bool:
        return True  # nothing to load here; the servers hold the model

    def available(self) -> bool:
        """Some server is not marked down (no network: the next request is the probe)."""
        return self.pool.any_up()

    def unavailable_notice(self, lang: str = "en") -> str:
        return answer_text("servers_down", lang)

    def model_identity(self) -> str | None:
        """The served model's name: the same on every instance, so they share cached answers."""
        return f"openai:{self._model_name() or 'unknown'}"

    def load(self) -> None:
        self._model_name()

    def _model_name(self) -> str | None:
        """``server_model``, else the first model the servers list (asked once per retry period)."""
        if self._model:
            return self._model
        now = time.monotonic()
        if now - self._model_checked_at < self.settings.server_retry_seconds:
            return None
        self._model_checked_at = now
        for server in self.pool.servers:
            try:
                data = self._get_json(server, "/models")
                models = [m.get("id") for m in data.get("data", []) if m.get("id")]
                if models:
                    self._model = models[0]
                    return self._model
            except (ServerFailure, OSError, ValueError) as exc:
                log.debug("listing models on %s failed: %s", server.url, exc)
        return None

    # -- tokens ------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        text = defuse(text)
        with self._lock:
            known = self._tokens.get(text)
        if known is not None:
            return known
        n = self._remote_count(text)
        if n is None:
            return estimate_tokens(text)
        with self._lock:
            self._tokens[text] = n
        return n

    def _remote_count(self, text: str) -> int | None:
        server = self.pool.acquire()
        if server is None:
            return None
        try:
            paths = [server.tokenize_path] if server.tokenize_probed else list(TOKENIZE_PATHS)
            for path in paths:
                if path is None:
                    return None
                body = {"content": text, "input": text, "prompt": text, "add_special": False}
                if self._model:
                    body["model"] = self._model
                try:
                    tokens = self._post_json(server, path, body, root=True).get("tokens")
                except ServerFailure as exc:
                    if "HTTP 404" in str(exc) or "HTTP 405" in str(exc) or "HTTP 422" in str(exc):
                        continue
                    raise
                if isinstance(tokens, list):
                    server.tokenize_path, server.tokenize_probed = path, True
                    return len(tokens)
            server.tokenize_path, server.tokenize_probed = None, True
            return None
        except (ServerFailure, OSError) as exc:
            if "cannot connect" in str(exc):
                self.pool.failed(server, f"tokenize: {exc}")  # unreachable: the answer will not try it either
            else:  # slow (llama_cpp.server queues it behind generation): estimate on this server from now on
                log.info("tokenizer of %s too slow (%s): estimating token counts for it", server.url, exc)
                server.tokenize_path, server.tokenize_probed = None, True
            return None
        except (ValueError, InputError) as exc:
            log.debug("tokenize on %s failed (%s): estimating", server.url, exc)
            return None
        finally:
            self.pool.release(server)

    def _post_json(self, server: Server, path: str, body: dict, *, root: bool = False) -> dict:
        exchange = Exchange(server.root if root else server.url, self.settings.server_connect_timeout_seconds,
                            min(TOKENIZE_TIMEOUT_SECONDS, self.settings.server_read_timeout_seconds), self._headers)
        try:
            response = exchange.post(path, body)
            check_status(response)
            return json.loads(response.read())
        finally:
            exchange.close()

    def _get_json(self, server: Server, path: str) -> dict:
        parts = urlsplit(server.url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=self.settings.server_connect_timeout_seconds)  # type: ignore[arg-type]
        try:
            conn.request("GET", parts.path.rstrip("/") + path, headers=self._headers)
            response = conn.getresponse()
            check_status(response)
            return json.loads(response.read())
        finally:
            conn.close()

    # -- answers -------------------------------------------------------------------------------------
    def stream(self, messages: list[dict], *, max_tokens: int | None = None,
               cancel: threading.Event | None = None, grammar: str | None = None) -> RemoteStream:
        """Start an answer on the least-busy server that accepts it. Raises ``BusyError`` (this
        instance already streams ``server_max_concurrent`` answers), ``UnavailableError`` (no server
        answered) or ``InputError`` (the server refused the prompt) before any text. ``grammar`` is sent as
        llama.cpp's servers take it (``grammar``); servers that ignore it return free text, which the
        caller validates."""
        cancel = cancel or threading.Event()
        limit = max_tokens if max_tokens is not None else self.settings.max_tokens
        clean = [{"role": m["role"], "content": defuse(str(m.get("content", "")))} for m in messages]
        stats = {"prompt_tokens": sum(self.count_tokens(m["content"]) for m in clean), "generated_tokens": 0,
                 "finish_reason": None, "backend": "openai"}
        if not self._take_slot(cancel):
            stats["finish_reason"] = "cancelled"
            return self._remote_stream(None, None, cancel, stats)
        tried: set[str] = set()
        errors: list[str] = []
        try:
            while True:
                server = self.pool.acquire(tried)
                if server is None:
                    raise UnavailableError(_unavailable_message(errors or [s["url"] + ": marked down" for s in
                                                                          self.pool.snapshot()]))
                tried.add(server.url)
                exchange = Exchange(server.url, self.settings.server_connect_timeout_seconds,
                                    self.settings.server_read_timeout_seconds, self._headers)
                self._watcher.watch(cancel, exchange)
                try:
                    check_status(exchange.post("/chat/completions", self._body(clean, limit, grammar)))
                except ServerFailure as exc:
                    self._drop(server, exchange)
                    self.pool.failed(server, str(exc))
                    errors.append(f"{server.url}: {exc}")
                    continue
                except ConnectionAbortedError:
                    self._drop(server, exchange)
                    self._slots.release()
                    stats["finish_reason"] = "cancelled"
                    return self._remote_stream(None, None, cancel, stats)
                except BaseException:
                    self._drop(server, exchange)
                    raise
                stats["server"] = server.url
                with self._lock:
                    self._counts["requests"] += 1
                return self._remote_stream(server, exchange, cancel, stats)
        except BaseException:
            self._slots.release()
            raise

    def _body(self, messages: list[dict], max_tokens: int, grammar: str | None = None) -> dict:
        s = self.settings
        body = {"messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": s.temperature,
                "stream_options": {"include_usage": True},
                # llama.cpp's sampler settings, as the local engine uses them; other servers ignore them
                "repeat_penalty": s.repeat_penalty, "repeat_last_n": s.repeat_last_n,
                "dry_multiplier": s.dry_multiplier, "dry_base": s.dry_base,
                "dry_allowed_length": s.dry_allowed_length}
        if grammar:
            body.update(grammar=grammar, temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0)
        model = self._model_name()
        if model:
            body["model"] = model
        return body

    def _take_slot(self, cancel: threading.Event) -> bool:
        deadline = time.monotonic() + self.settings.pool_wait_timeout_seconds
        with self._lock:
            self._counts["waiting"] += 1
        try:
            while not self._slots.acquire(timeout=0.05):
                if cancel.is_set():
                    return False
                if time.monotonic() > deadline:
                    with self._lock:
                        self._counts["busy_rejections"] += 1
                    raise BusyError(f"all {self.pool_plan['size']} answer slots of this instance are in use; "
                                    "retry shortly (NEOC_LLM_MAX_CONCURRENT)")
            return True
        finally:
            with self._lock:
                self._counts["waiting"] -= 1

    def _drop(self, server: Server, exchange: Exchange) -> None:
        self._watcher.unwatch(exchange)
        exchange.close()
        self.pool.release(server)

    def _remote_stream(self, server: Server | None, exchange: Exchange | None, cancel: threading.Event,
                       stats: dict) -> RemoteStream:
        """The answer's stream, with what it may tell this backend bound to its server and connection."""
        def failed(reason: str) -> None:
            if server is not None:
                self.pool.failed(server, reason)

        return RemoteStream(exchange, cancel, stats, loop_guard=self.settings.loop_guard, on_failed=failed,
                            on_end=functools.partial(self._stream_ended, server, exchange))

    def _stream_ended(self, server: Server | None, exchange: Exchange | None, stats: dict) -> None:
        if server is not None and exchange is not None:
            self._drop(server, exchange)
            if stats["finish_reason"] in ("stop", "length", "loop"):
                self.pool.succeeded(server)
            self._slots.release()
        with self._lock:
            self._counts["generated_tokens"] += int(stats.get("generated_tokens") or 0)
            self._counts[f"finished_{stats['finish_reason']}"] += 1

    # -- introspection ------------------------------------------------------------------------------
    def pool_stats(self) -> dict:
        servers = self.pool.snapshot()
        with self._lock:
            counts = dict(self._counts)
        in_use = sum(s["in_flight"] for s in servers)
        size = self.pool_plan["size"]
        return {"backend": "openai", "size": size, "in_use": in_use, "idle": max(0, size - in_use),
                "waiting": counts.get("waiting", 0), "busy_rejections": counts.get("busy_rejections", 0),
                "model_loaded": True, "model": self._model, "requests": counts.get("requests", 0),
                "generated_tokens": counts.get("generated_tokens", 0), "servers": servers,
                "plan": dict(self.pool_plan)}

    def close(self) -> None:
        pass  # streams own their connections; nothing is held between answers


def _unavailable_message(errors: list[str]) -> str:
    return "no language-model server answered (" + "; ".join(errors)[:500] + ")"
