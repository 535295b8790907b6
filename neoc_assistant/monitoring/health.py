"""Health check: can this installation answer questions right now?

``HealthCheck(...).check()`` (what ``Assistant.health()`` and ``/health`` call) returns::

    {"healthy": bool, "status": "ok" | "degraded" | "unhealthy",
     "checks": {"model": {...}, "store": {...}, "integrity": {...}, "disk": {...}, "memory": {...}}}

Each check has ``ok`` (False makes the whole result unhealthy), ``degraded``
(works, but not fully) and a one-line ``message``.

* **model** - no model configured = extractive (quotes-only) mode: healthy but degraded
  (answers are passages, not prose). A configured model file that is missing
  or not a valid GGUF is unhealthy: the operator expects generated answers.
  With LLM servers (``generation.backend = "openai"``): each server's state;
  some down = degraded, all down = degraded too (answers are quotes until one
  is back - every instance is in the same position, so taking this one out of
  a load balancer would not help).
* **store** - the manifest opens and reports its chunk count, and the Chroma
  collection answers ``count()``. A missing data directory or an empty
  knowledge base is unhealthy (every question would be "not found"). Drift -
  chunks without a vector, vectors of no chunk, compared id by id
  (``store/drift.py``; remembered until the version or the count moves) - is
  degraded, with the command that repairs it. Nothing is created: a missing
  store is reported, not initialised.
* **integrity** - SQLite's ``quick_check`` of the manifest (re-run only when the
  file changed): damage is unhealthy, with the command that rebuilds it.
  A replica of a Chroma server's knowledge base that cannot sync is degraded
  (it answers from its last copy).
* **cache** - with Redis as the shared tier: Redis down is degraded (the cache
  runs on this process's memory only).
* **disk** - free bytes on the filesystem holding ``data_dir`` against a
  minimum (the cache, logs and ingest need room).
* **memory** - system memory in use against ``guard_system_memory_percent``
  (where the memory guard starts refusing answers): over it = unhealthy;
  over ``alert_memory_percent`` = degraded.

Nothing is loaded or created to answer: the model is inspected (header only)
unless it is already loaded, and a missing store is reported, not initialised.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Callable

import psutil

from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.generate.model_file import configured_path_problem
from neoc_assistant.settings import GenerationSettings, MonitoringSettings, PathSettings
from neoc_assistant.store.drift import REPAIR_HINT, find_drift
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore

DEFAULT_MIN_FREE_DISK_BYTES = 1 << 30  # 1 GiB


class HealthCheck:
    def __init__(self, paths: PathSettings, generation: GenerationSettings, monitoring: MonitoringSettings,
                 engine: GenerationBackend, manifest: Manifest, vectors: VectorStore, *, redis=None):
        """``redis``: the process's ``RedisLink`` when the shared cache tier is Redis."""
        self.paths = paths
        self.generation = generation
        self.monitoring = monitoring
        self.engine = engine
        self.manifest = manifest
        self.vectors = vectors
        self._drift: tuple[tuple, dict] | None = None
        self.redis = redis

    def check(self, *, min_free_disk_bytes: int = DEFAULT_MIN_FREE_DISK_BYTES) -> dict:
        checks = {
            "model": _guard(check_servers if self.generation.backend == "openai" else check_model,
                            self.generation, self.engine),
            "store": _guard(self.check_store),
            "integrity": _guard(check_integrity, self.paths, self.manifest),
            "disk": _guard(check_disk, self.paths.data_dir, min_free_disk_bytes),
            "memory": _guard(check_memory, self.generation.guard_system_memory_percent,
                             self.monitoring.alert_memory_percent),
        }
        if self.redis is not None:
            checks["cache"] = _guard(check_redis, self.redis)
        healthy = all(c["ok"] for c in checks.values())
        degraded = any(c.get("degraded") for c in checks.values())
        status = "unhealthy" if not healthy else ("degraded" if degraded else "ok")
        return {"healthy": healthy, "status": status, "checks": checks}

    def check_store(self) -> dict:
        """Counts, and drift id by id (cached: the System tab refreshes every few seconds)."""
        paths, manifest, vectors = self.paths, self.manifest, self.vectors
        if not paths.manifest_path.is_file():  # reported, not created
            return {"ok": False, "degraded": False, "reachable": False, "chunks": 0,
                    "message": f"no knowledge base at {paths.data_dir}: run `python -m neoc_assistant ingest`"}
        try:
            counts = manifest.counts()
        except Exception as exc:  # noqa: BLE001 - StoreError or sqlite errors
            return {"ok": False, "degraded": False, "reachable": False, "chunks": 0,
                    "message": f"manifest unreadable: {exc}"}
        try:
            vectors.refresh(manifest.kb_version())
            n_vectors = int(vectors.count())
        except Exception as exc:  # noqa: BLE001
            return {"ok": False, "degraded": False, "reachable": False, "chunks": counts["chunks"],
                    "documents": counts["documents"], "message": f"vector store unreachable: {exc}"}
        result = {"reachable": True, "chunks": counts["chunks"], "documents": counts["documents"],
                  "files": counts["files"], "vectors": n_vectors, "kb_version": manifest.kb_version()}
        sync = getattr(manifest, "sync_state", None)  # a replica of a shared knowledge base
        if sync is not None:
            result["sync"] = dict(sync)
            if sync.get("error"):
                return {**result, "ok": True, "degraded": True,
                        "message": f"answering from this instance's last copy of the knowledge base: {sync['error']}"}
        if counts["chunks"] == 0 and n_vectors == 0:
            return {**result, "ok": False, "degraded": False,
                    "message": "the knowledge base is empty: run `python -m neoc_assistant ingest`"}
        stamp = (manifest.kb_version(), n_vectors, counts["chunks"])
        if self._drift is None or self._drift[0] != stamp:
            drift = find_drift(manifest, vectors)
            self._drift = (stamp, {"missing_vectors": len(drift.missing), "stray_vectors": len(drift.stray),
                                   "drift": drift.describe()})
        result.update(self._drift[1])
        if result["drift"]:
            return {**result, "ok": True, "degraded": True, "message": f"{result['drift']}: {REPAIR_HINT}"}
        return {**result, "ok": True, "degraded": False,
                "message": f"{counts['documents']} documents, {counts['chunks']} chunks, every chunk has its vector"}


class SharedHealth:
    """One health check at a time; callers that arrive while it runs get its result.

    Why: under a burst every load-balancer probe and System-tab refresh ran its own
    check (SQLite counts, the vector store's count) on a busy machine, so each took
    longer and they piled up (``/health`` up to 7 s). A caller never gets a result
    older than the check that was running when it arrived.
    """

    def __init__(self, check: Callable[[], dict]):
        self._check = check
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        self._result: tuple[dict | None, BaseException | None] = (None, None)

    def get(self) -> dict:
        with self._lock:
            running = self._running
            if running is None:
                self._running = running = threading.Event()
                leader = True
            else:
                leader = False
        if leader:
            try:
                result: tuple = (self._check(), None)
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                result = (None, exc)
            with self._lock:
                self._result, self._running = result, None
            running.set()
        else:
            running.wait()
        data, error = self._result
        if error is not None:
            raise error
        return data  # type: ignore[return-value]  # no error: a result


def _guard(fn, *args) -> dict:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a check that crashes is a failed check, not a traceback
        return {"ok": False, "degraded": False, "message": f"check failed: {type(exc).__name__}: {exc}"}


def check_model(settings: GenerationSettings, engine: GenerationBackend) -> dict:
    path = settings.resolved_model_path()
    if path is None:
        return {"ok": True, "degraded": True, "mode": "extractive", "available": False, "loaded": False,
                "path": None,
                "message": f"no model configured (no NEOC_MODEL_PATH, no *.gguf in {settings.models_dir}): "
                           "answering in extractive (quotes-only) mode"}
    result = {"path": str(path), "mode": "llm", "loaded": engine.model_loaded}  # never loads it
    problem = configured_path_problem(path)
    if problem:
        return {**result, "ok": False, "degraded": False, "available": False, "mode": "extractive",
                "message": f"{problem}; until then answers are quotes only"}
    if result["loaded"]:
        pool = None
        try:
            pool = engine.pool_stats()
        except Exception:  # noqa: BLE001
            pass
        return {**result, "ok": True, "degraded": False, "available": True, "size_bytes": path.stat().st_size,
                "pool": {k: pool.get(k) for k in ("size", "in_use", "waiting")} if pool else None,
                "message": f"model {path.name} loaded"}
    from neoc_assistant.errors import ModelError
    from neoc_assistant.generate.model_file import inspect_gguf

    try:
        info = inspect_gguf(path)
    except ModelError as exc:
        return {**result, "ok": False, "degraded": False, "available": False, "message": str(exc)}
    return {**result, "ok": True, "degraded": False, "available": True, "size_bytes": path.stat().st_size,
            "architecture": info.architecture,
            "message": f"model {path.name} ({info.architecture}) available, loads on first question"}


def check_integrity(paths: PathSettings, manifest: Manifest) -> dict:
    if not paths.manifest_path.is_file():
        return {"ok": True, "degraded": False, "message": "no manifest yet"}
    result = manifest.integrity()
    message = result["message"]
    if manifest.read_only:  # not a fault (a read-only replica, a locked-down share): say what it allows
        message += "; read-only for this user: search, ask and documents work, ingest needs write access"
    return {"ok": result["ok"], "degraded": False, "read_only": manifest.read_only, "message": message}


def check_servers(settings: GenerationSettings, engine: GenerationBackend) -> dict:
    servers = engine.pool_stats().get("servers") or []
    up = [s for s in servers if s["up"]]
    result = {"ok": True, "mode": "llm", "available": bool(up), "loaded": True, "servers": servers}
    if not up:
        return {**result, "degraded": True, "mode": "extractive",
                "message": f"no LLM server answering ({servers[0]['last_error'] if servers else 'none'}): "
                           "answers are the documents' own sentences until one is back"}
    if len(up) < len(servers):
        down = ", ".join(f"{s['url']} ({s['last_error']})" for s in servers if not s["up"])
        return {**result, "degraded": True, "message": f"{len(up)} of {len(servers)} LLM servers up; down: {down}"}
    return {**result, "degraded": False, "message": f"{len(servers)} LLM server(s) up"}


def check_redis(redis) -> dict:
    try:
        redis.call(lambda r: r.ping())
    except Exception as exc:  # noqa: BLE001 - TierUnavailable and friends
        return {"ok": True, "degraded": True, "shared": False,
                "message": f"Redis unreachable ({exc}): caching in this process's memory only"}
    return {"ok": True, "degraded": False, "shared": True, "message": f"shared cache at {redis.url}"}


def _existing_ancestor(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(data_dir: Path, min_free_bytes: int = DEFAULT_MIN_FREE_DISK_BYTES) -> dict:
    where = _existing_ancestor(data_dir)
    usage = shutil.disk_usage(where)
    result = {"path": str(where), "free_bytes": usage.free, "total_bytes": usage.total,
              "min_free_bytes": int(min_free_bytes)}
    if usage.free < min_free_bytes:
        return {**result, "ok": False, "degraded": False,
                "message": f"only {usage.free / 2**20:.0f} MB free under {where} "
                           f"(minimum {min_free_bytes / 2**20:.0f} MB): free disk space"}
    return {**result, "ok": True, "degraded": False, "message": f"{usage.free / 2**30:.1f} GB free"}


def check_memory(refuse_above_percent: float, alert_above_percent: float) -> dict:
    vm = psutil.virtual_memory()
    rss = psutil.Process().memory_info().rss
    result = {"system_percent": vm.percent, "available_bytes": vm.available, "total_bytes": vm.total,
              "process_rss_bytes": rss, "refuse_above_percent": refuse_above_percent,
              "alert_above_percent": alert_above_percent}
    if vm.percent > refuse_above_percent:
        return {**result, "ok": False, "degraded": False,
                "message": f"system memory {vm.percent:.0f}% in use: above the {refuse_above_percent:g}% "
                           "guard, new answers will be refused; close other programs"}
    if vm.percent > alert_above_percent:
        return {**result, "ok": True, "degraded": True,
                "message": f"system memory {vm.percent:.0f}% in use (alert threshold "
                           f"{alert_above_percent:g}%); {vm.available / 2**30:.1f} GB available"}
    return {**result, "ok": True, "degraded": False,
            "message": f"{vm.available / 2**30:.1f} GB available ({vm.percent:.0f}% in use)"}
