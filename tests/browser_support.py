"""Support for the browser tests and ``scripts/ui_startup_time.py``.

* ``ensure_chromium()``: Debian's ``chromium`` at /usr/bin/chromium, installed
  with apt-get when missing (CI is a fresh machine and runs as root). Never
  ``playwright install`` (that downloads a browser).
* ``ServerProcess``: ``python -m neoc_assistant serve --port <free port>`` in a
  subprocess with its own ``NEOC_*`` environment, waited on until the page is
  usable (HTTP 200 on ``/`` and the Gradio config loaded), stopped by its
  process group (``services.ManagedProcess``).
* ``launch_browser()``: headless Chromium through Playwright's Python API with
  the offline flags and a fresh user-data-dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from services import ManagedProcess, ServiceError, free_port  # noqa: F401 - free_port: for the browser tests

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


class SetupError(ServiceError):
    """The browser test cannot run on this machine (reported as a failure, not a skip)."""


def ensure_chromium(timeout: float = 900) -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None:
        raise SetupError(f"{CHROMIUM} is missing and apt-get is not available: install Debian's 'chromium' package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [[apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SetupError(f"`{' '.join(cmd)}` failed: {exc}") from exc
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
            raise SetupError(
                f"`{' '.join(cmd)}` exited {proc.returncode} (need root and a Debian mirror): " + " | ".join(tail)
            )
    if not CHROMIUM.exists():
        raise SetupError(f"apt-get installed 'chromium' but {CHROMIUM} does not exist")
    return CHROMIUM


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - localhost only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class ServerProcess(ManagedProcess):
    """The real server in a subprocess; ``with ServerProcess(env) as server: server.url``."""

    def __init__(self, env: dict[str, str], *, log_path: Path, port: int | None = None,
                 extra_args: list[str] | None = None, startup_timeout: float = 240):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started_at = 0.0
        self.ready_seconds: float | None = None
        cmd = [sys.executable, "-m", "neoc_assistant", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               *(extra_args or [])]
        super().__init__(cmd, log_path=log_path, ready=self._usable, cwd=REPO_ROOT, startup_timeout=startup_timeout,
                         env={**clean_environ(), **env, "PYTHONUNBUFFERED": "1"})

    def start(self) -> "ServerProcess":
        self.started_at = time.perf_counter()
        super().start()
        return self

    def _usable(self) -> bool:
        """HTTP 200 on ``/`` and the Gradio config loaded."""
        try:
            status, _ = http_get(self.url + "/", timeout=2)
            if status == 200:
                cstatus, body = http_get(self.url + "/config", timeout=5)
                if cstatus == 200 and json.loads(body).get("components"):
                    self.ready_seconds = time.perf_counter() - self.started_at
                    return True
        except (OSError, ValueError):
            pass
        return False


def clean_environ() -> dict[str, str]:
    """This process's environment without NEOC_* settings (a server gets only the ones we pass)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NEOC_")}


def server_env(data_dir: Path, kb_dir: Path, models_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "NEOC_DATA_DIR": str(data_dir),
        "NEOC_KB_DIR": str(kb_dir),
        "NEOC_MODELS_DIR": str(models_dir),
        "NEOC_CONFIG": str(data_dir / "no-such-neoc.toml"),  # ignore any ./neoc.toml
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def launch_browser(playwright, user_data_dir: Path | None = None):
    """A persistent context on a fresh profile: returns (context, page)."""
    profile = user_data_dir or Path(tempfile.mkdtemp(prefix="neoc-chromium-"))
    context = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=str(ensure_chromium()),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1366, "height": 768},
        service_workers="block",
    )
    page = context.pages[0] if context.pages else context.new_page()
    return context, page


def is_local(url: str, port: int) -> bool:
    """True for requests the page may make: this server, or in-page data/blob URLs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in LOCAL_HOSTS and (parts.port or 80) == port


class ConnectionWatcher:
    """Samples the server process's sockets; records any remote address that is not loopback."""

    def __init__(self, pid: int, interval: float = 0.25):
        import threading

        self.pid = pid
        self.interval = interval
        self.remote: set[str] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="conn-watch", daemon=True)

    def _run(self) -> None:
        import ipaddress

        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                for proc in procs:
                    for conn in proc.net_connections(kind="inet"):
                        if conn.raddr and not ipaddress.ip_address(conn.raddr.ip).is_loopback:
                            self.remote.add(f"{conn.raddr.ip}:{conn.raddr.port} ({conn.status})")
                self.samples += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
            self._stop.wait(self.interval)

    def start(self) -> "ConnectionWatcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
