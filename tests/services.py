"""Real services for the scale-out test, each started by the test on a free 127.0.0.1 port and stopped after.

* ``ManagedProcess``: a command in its own session, its output to a log file,
  waited on until a readiness probe passes, stopped by its process group (the
  server and nothing else). ``browser_support.ServerProcess`` (the assistant's
  ``serve``) is one.
* ``redis_server``, ``chroma_server``, ``llm_server`` build the commands for
  Debian's ``redis-server``, ``chroma run`` (the ``chromadb`` package) and
  ``llama_cpp.server`` (the ``llama-cpp-python[server]`` extra) with a GGUF.
* ``ensure_redis_server()``: installs Debian's ``redis-server`` with apt-get
  when it is missing (CI is a fresh machine and runs as root).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

VENV_BIN = Path(sys.executable).parent


class ServiceError(RuntimeError):
    """A service could not be started (reported as a failure, with its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    def __init__(self, cmd: list[str], *, log_path: Path, ready: Callable[[], bool], env: dict | None = None,
                 cwd: Path | None = None, startup_timeout: float = 120):
        self.cmd, self.log_path, self.ready, self.env, self.cwd = cmd, log_path, ready, env, cwd
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> "ManagedProcess":
        """Start and wait until ready; a failed start is stopped before raising."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.cmd[0]} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.1)
        raise ServiceError(f"{' '.join(self.cmd[:3])} not ready after {self.startup_timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self._log is None or self._log.closed:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own session: this service and nothing else
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> "ManagedProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def ensure_redis_server(timeout: float = 900) -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise ServiceError("redis-server is missing and apt-get is not available: install Debian's 'redis-server'")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "redis-server"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ServiceError(f"`{' '.join(cmd)}` failed (need root and a Debian mirror): {proc.stderr[-500:]}")
    return shutil.which("redis-server") or "/usr/bin/redis-server"


def redis_server(port: int, workdir: Path, log_path: Path) -> ManagedProcess:
    cmd = [ensure_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(workdir), "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]
    return ManagedProcess(cmd, log_path=log_path, ready=lambda: port_open(port), startup_timeout=30)


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness probe: ``url`` answers 200."""
    import urllib.request

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
                return resp.status == 200
        except OSError:
            return False

    return ready


def chroma_server(port: int, path: Path, log_path: Path) -> ManagedProcess:
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    cmd = [str(VENV_BIN / "chroma"), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    return ManagedProcess(cmd, log_path=log_path, ready=http_ok(f"http://127.0.0.1:{port}/api/v2/heartbeat"),
                          env=env, startup_timeout=60)


def llm_server(port: int, model: Path, log_path: Path, *, n_ctx: int = 2048, threads: int = 1) -> ManagedProcess:
    # --interrupt_requests False: by default a second request ends the streamed answer with a bare [DONE]
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch",
           str(threads), "--interrupt_requests", "False", "--verbose", "False"]
    return ManagedProcess(cmd, log_path=log_path, ready=http_ok(f"http://127.0.0.1:{port}/v1/models"),
                          startup_timeout=120)
