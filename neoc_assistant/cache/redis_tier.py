"""The shared cache tier in Redis (``cache.l2_backend = "redis"``), shared by every instance.

Three things live here, each over one ``RedisLink`` per process:

* ``RedisTier`` - the response cache's L2, with ``DiskTier``'s methods and the
  same coherence protocol (``coherence.py``): entries with a TTL, a per-context
  journal (a Redis list: ``RPUSH`` returns the record's sequence number in the
  same ``MULTI`` as the entry write, ``LLEN`` is the generation), the epoch,
  the known kb versions and the current one (the *version key*), per-version
  tag sets so a new version evicts the old ones' entries, persisted counters.
* ``RedisBlobStore`` - the embedding cache's shared store (vectors never go
  stale, so they carry no TTL; give Redis a ``maxmemory`` with ``allkeys-lru``).
* the **knowledge-base announcement channel**: an instance that changes the
  knowledge base publishes the new version; every instance listening drops its
  L1 entries of other versions and re-syncs its manifest at once
  (``subscribe_kb``), instead of at its next periodic check.

Failure: a ``RedisLink`` is a circuit breaker. The first failed call logs one
warning, emits ``l2_down`` (a metric) and makes every call fail fast with
``TierUnavailable`` for ``cache.redis_retry_seconds`` - no network wait per
question - after which one call tries again (``l2_up`` when it works). The
response cache treats a failed call as a miss, so answers keep flowing from L1
and the model. Values are JSON (``encode``/``decode``), never pickles: a shared
network store must not be able to run code in every instance.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any, Callable, Iterator

from neoc_assistant.reading.question_features import Features
from neoc_assistant.cache.shared_tier import TierUnavailable

log = logging.getLogger(__name__)

KB_CHANNEL = "kb"
MAX_KB_VERSIONS = 64


# -- values ---------------------------------------------------------------------------------------

def _to_json(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return {"$b": base64.b64encode(obj).decode("ascii")}
    if isinstance(obj, Features):
        return {"$f": {k: _to_json(v) for k, v in obj.__dict__.items()}}
    if isinstance(obj, frozenset):
        return {"$s": [_to_json(v) for v in sorted(obj)]}
    if isinstance(obj, tuple):
        return {"$t": [_to_json(v) for v in obj]}
    if isinstance(obj, list):
        return [_to_json(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_json(v) for k, v in obj.items()}
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$b" in obj:
        return base64.b64decode(obj["$b"])
    if "$f" in obj:
        return Features(**{k: _from_json(v) for k, v in obj["$f"].items()})
    if "$s" in obj:
        return frozenset(_from_json(v) for v in obj["$s"])
    if "$t" in obj:
        return tuple(_from_json(v) for v in obj["$t"])
    return {k: _from_json(v) for k, v in obj.items()}


def encode(value: Any) -> bytes:
    return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(raw: bytes | None) -> Any:
    return None if raw is None else _from_json(json.loads(raw))


# -- the connection -------------------------------------------------------------------------------

class RedisLink:
    """One Redis client for the process, behind a circuit breaker, plus the kb announcement channel."""

    def __init__(self, url: str, *, timeout: float, retry_seconds: float, prefix: str,
                 on_event: Callable[[str], None] | None = None):
        import redis

        self.url, self.prefix, self.retry_seconds = url, prefix, retry_seconds
        self._errors = (redis.ConnectionError, redis.TimeoutError, OSError)
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                           health_check_interval=30)
        self._on_event = on_event or (lambda name: None)
        self._down_until = 0.0
        self._down = False
        self.last_error = ""
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []
        self._listener: threading.Thread | None = None
        self._stop = threading.Event()

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def up(self) -> bool:
        return not self._down

    def call(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(client)``; raises ``TierUnavailable`` at once while Redis is known to be down."""
        if self._down and time.monotonic() < self._down_until:
            raise TierUnavailable(f"Redis at {self.url} is down ({self.last_error}); retrying shortly")
        try:
            result = fn(self.client)
        except self._errors as exc:
            self._trip(exc)
            raise TierUnavailable(f"Redis at {self.url}: {exc}") from exc
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                log.warning("Redis at %s is reachable again: the shared cache is back", self.url)
                self._on_event("l2_up")
        return result

    def _trip(self, exc: Exception) -> None:
        with self._lock:
            was_down = self._down
            self._down, self._down_until, self.last_error = True, time.monotonic() + self.retry_seconds, str(exc)
        if not was_down:
            log.warning("Redis at %s is unreachable (%s): answers continue with this process's memory cache "
                        "only; retrying every %.0f s", self.url, exc, self.retry_seconds)
            self._on_event("l2_down")

    # -- announcements ------------------------------------------------------------------------------
    def publish_kb(self, version: str) -> None:
        self.call(lambda r: r.publish(self.key(KB_CHANNEL), version))

    def subscribe_kb(self, callback: Callable[[str], None]) -> None:
        """``callback(version)`` on every announced knowledge-base version (a daemon thread listens,
        reconnecting after an outage)."""
        with self._lock:
            self._listeners.append(callback)
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="neoc-redis-kb", daemon=True)
                self._listener.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.key(KB_CHANNEL))
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        version = message["data"].decode("utf-8", "replace")
                        for callback in list(self._listeners):
                            try:
                                callback(version)
                            except Exception:  # noqa: BLE001 - one listener must not stop the others
                                log.exception("kb announcement listener failed")
            except self._errors as exc:
                log.debug("kb channel: %s; resubscribing", exc)
                self._stop.wait(self.retry_seconds)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:  # noqa: BLE001
                        pass

    def close(self) -> None:
        self._stop.set()
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass


# -- the response cache's L2 ------------------------------------------------------------------------

class RedisTier:
    """``DiskTier``'s methods on Redis (see the module docstring for the layout)."""

    def __init__(self, link: RedisLink, *, ttl_seconds: float):
        self.link = link
        self.ttl = int(max(1, ttl_seconds))

    def _k(self, *parts: str) -> str:
        return self.link.key("rc", *parts)

    def get(self, key: str) -> Any | None:
        return decode(self.link.call(lambda r: r.get(self._k(key))))

    def _journal_write(self, ctx_hash: str, tag: str, writes: Callable[[Any], None], record: dict) -> int:
        journal, tag_set = self._k("j", ctx_hash), self._k("tag", tag)

        def run(r):
            pipe = r.pipeline(transaction=True)
            writes(pipe)
            pipe.rpush(journal, encode(record))
            pipe.expire(journal, self.ttl)
            pipe.sadd(tag_set, journal)
            pipe.expire(tag_set, self.ttl)
            return pipe.execute()

        results = self.link.call(run)
        return int(results[-4])  # RPUSH: the list's new length = this record's sequence number

    def put_entry(self, ctx_hash: str, key: str, value: dict, journal: dict, tag: str) -> int:
        def writes(pipe):
            pipe.set(self._k(key), encode(value), ex=self.ttl)
            pipe.sadd(self._k("tag", tag), self._k(key))

        return self._journal_write(ctx_hash, tag, writes, journal)

    def delete_entry(self, ctx_hash: str, key: str, tag: str) -> bool:
        existed = bool(self.link.call(lambda r: r.exists(self._k(key))))
        self._journal_write(ctx_hash, tag, lambda pipe: pipe.delete(self._k(key)), {"op": "del", "key": key})
        return existed

    def generation(self, ctx_hash: str) -> int:
        return int(self.link.call(lambda r: r.llen(self._k("j", ctx_hash))))

    def journal(self, ctx_hash: str, start: int, stop: int) -> Iterator[tuple[int, dict | None]]:
        raw = self.link.call(lambda r: r.lrange(self._k("j", ctx_hash), start - 1, stop - 1))
        for offset, item in enumerate(raw):
            yield start + offset, decode(item)

    def epoch(self) -> int:
        return int(self.link.call(lambda r: r.get(self._k("epoch"))) or 0)

    def bump_epoch(self) -> int:
        return int(self.link.call(lambda r: r.incr(self._k("epoch"))))

    def kb_versions(self) -> dict[str, float]:
        raw = self.link.call(lambda r: r.hgetall(self._k("kb_versions")))
        return {k.decode(): float(v) for k, v in raw.items()}

    def note_kb_version(self, version: str) -> tuple[bool, list[str]]:
        """As ``DiskTier.note_kb_version``: atomic across instances (WATCH on the version hash)."""
        versions, current = self._k("kb_versions"), self._k("kb_current")

        def run(r):
            def tx(pipe):
                if pipe.hexists(versions, version):
                    return False, []
                known = {k.decode(): float(v) for k, v in pipe.hgetall(versions).items()}
                pipe.multi()
                pipe.hset(versions, version, time.time())
                pipe.set(current, version)
                oldest = sorted(known, key=known.get)[: max(0, len(known) + 1 - MAX_KB_VERSIONS)]
                if oldest:
                    pipe.hdel(versions, *oldest)
                return True, [v for v in known if v != version]

            return r.transaction(tx, versions, value_from_callable=True)

        return self.link.call(run)

    def current_kb_version(self) -> str | None:
        raw = self.link.call(lambda r: r.get(self._k("kb_current")))
        return raw.decode() if raw else None

    def evict_version(self, version: str) -> int:
        tag_set = self._k("tag", version)

        def run(r):
            keys = list(r.smembers(tag_set))
            removed = 0
            for i in range(0, len(keys), 500):
                removed += r.delete(*keys[i:i + 500])
            r.delete(tag_set)
            return sum(1 for k in keys if b":e:" in k) if removed else 0

        return int(self.link.call(run))

    def add_counters(self, deltas: dict[str, int]) -> None:
        def run(r):
            pipe = r.pipeline(transaction=False)
            for name, delta in deltas.items():
                if delta:
                    pipe.hincrby(self._k("stats"), name, int(delta))
            pipe.execute()

        self.link.call(run)

    def counters(self) -> dict[str, int]:
        raw = self.link.call(lambda r: r.hgetall(self._k("stats")))
        return {k.decode(): int(v) for k, v in raw.items()}

    def _scan(self, pattern: str) -> list[bytes]:
        return self.link.call(lambda r: list(r.scan_iter(match=self._k(pattern), count=1000)))

    def count_entries(self) -> int:
        return len(self._scan("e:*"))

    def volume_bytes(self) -> int:
        return int(self.link.call(lambda r: r.info("memory").get("used_memory", 0)))

    def clear(self) -> None:
        keys = [k for k in self._scan("*") if not k.endswith(b":epoch")]
        self.link.call(lambda r: [r.delete(*keys[i:i + 500]) for i in range(0, len(keys), 500)])
        self.bump_epoch()

    def announce(self, version: str) -> None:
        self.link.publish_kb(version)

    def close(self) -> None:
        pass  # the link is the process's; the container closes it


# -- the embedding cache's shared store ---------------------------------------------------------------

class RedisBlobStore:
    """Raw vectors by key for ``EmbeddingCache`` (the subset of ``diskcache.Cache`` it uses)."""

    def __init__(self, link: RedisLink):
        self.link = link

    def _k(self, key: str) -> str:
        return self.link.key("emb", key)

    def get(self, key: str, default=None):
        raw = self.link.call(lambda r: r.get(self._k(key)))
        return default if raw is None else raw

    def set_many(self, items: list[tuple[str, bytes]]) -> None:
        def run(r):
            pipe = r.pipeline(transaction=False)
            for key, raw in items:
                pipe.set(self._k(key), raw)
            pipe.execute()

        self.link.call(run)

    def __len__(self) -> int:
        return len(self.link.call(lambda r: list(r.scan_iter(match=self._k("*"), count=1000))))

    def volume(self) -> int:
        return 0  # shared with the response cache: see its l2_bytes (Redis's used_memory)

    def clear(self) -> None:
        keys = self.link.call(lambda r: list(r.scan_iter(match=self._k("*"), count=1000)))
        self.link.call(lambda r: [r.delete(*keys[i:i + 500]) for i in range(0, len(keys), 500)])

    def close(self) -> None:
        pass
