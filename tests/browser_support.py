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
* For ``test_ui_browser.py``: ``live_session()`` (a server on a copy of an
  ingested data dir, its socket watcher and a browser context recording every
  request: ``Live``), and the page and HTTP helpers its tests share (``ask``,
  ``wait_bot``, ``metric``, ``post_json``, ``screenshot``...). They live here so
  the test file holds the tests and their fixtures only.
"""

from __future__ import annotations

import json
import os
import re
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
OUTPUT_DIR = REPO_ROOT / "test-output"  # screenshots and server logs of the browser tests (git-ignored)
BOT = '#neoc-chat [data-testid="bot"]'


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


# ---------------------------------------------------------------------------
# live server + browser, and page helpers (test_ui_browser.py)
# ---------------------------------------------------------------------------
def server_root(ingested: Path, tmp_path_factory, name: str) -> Path:
    """A copy of the ingested data dir and knowledge base, so each server's uploads stay its own."""
    root = tmp_path_factory.mktemp(name)
    shutil.copytree(ingested / "data", root / "data")
    shutil.copytree(ingested / "kb", root / "kb")
    (root / "models").mkdir()
    return root


class Recorder:
    """Every request made by any page of the browser context."""

    def __init__(self, port: int):
        self.port = port
        self.urls: list[str] = []

    def __call__(self, request) -> None:
        self.urls.append(request.url)

    def external(self) -> list[str]:
        return [u for u in self.urls if not is_local(u, self.port)]


class Live:
    def __init__(self, server: ServerProcess, watcher: ConnectionWatcher, context, recorder: Recorder):
        self.server, self.watcher, self.context, self.recorder = server, watcher, context, recorder
        self.url = server.url

    def new_page(self):
        page = self.context.new_page()
        page.set_default_timeout(60_000)
        page.goto(self.url + "/", wait_until="load")
        page.wait_for_selector("#neoc-chat")
        page.wait_for_selector("#neoc-input textarea")
        return page

    def assert_offline(self) -> None:
        assert self.recorder.urls, "no requests were recorded at all"
        assert not self.recorder.external(), f"requests left the machine: {self.recorder.external()}"
        assert not self.watcher.remote, f"the server connected to non-local hosts: {self.watcher.remote}"


def live_session(root: Path, name: str, pw, **env_extra):
    """A server on ``root`` and a browser context (a fixture yields from it); all stopped afterwards."""
    env = server_env(root / "data", root / "kb", root / "models", **env_extra)
    server = ServerProcess(env, log_path=OUTPUT_DIR / f"ui-server-{name}.log")
    watcher = context = None
    try:  # whatever fails below, the server is stopped
        server.start()
        watcher = ConnectionWatcher(server.proc.pid).start()
        print(f"\n[{name}] server ready in {server.ready_seconds:.1f}s at {server.url}")
        context, first = launch_browser(pw, root / "chromium-profile")
        first.close()
        recorder = Recorder(server.port)
        context.on("request", recorder)
        yield Live(server, watcher, context, recorder)
    finally:
        if context is not None:
            context.close()
        if watcher is not None:
            watcher.stop()
        server.stop()


def ask(page, question: str, *, button: bool = False) -> None:
    box = page.locator("#neoc-input textarea")
    box.fill(question)
    if button:
        page.click("#neoc-send")
    else:
        box.press("Enter")


def bot_count(page) -> int:
    return page.locator(BOT).count()


def bot_text(page, index: int = -1) -> str:
    bots = page.locator(BOT)
    n = bots.count()
    return bots.nth(n + index if index < 0 else index).inner_text() if n else ""


def wait_bot(page, n: int, predicate, timeout: float = 120, what: str = "") -> str:
    """Wait until bot message number ``n`` (1-based) satisfies ``predicate(text)``."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        if bot_count(page) >= n:
            text = page.locator(BOT).nth(n - 1).inner_text()
            if predicate(text):
                return text
        time.sleep(0.1)
    raise AssertionError(f"bot message {n} never {what or 'matched'}; last text: {text[:500]!r}")


def metric(base_url: str, name: str, labels: str = "") -> float | None:
    status, body = http_get(base_url + "/metrics")
    assert status == 200, body[:200]
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)}\s+([0-9.eE+-]+)$", re.MULTILINE)
    match = pattern.search(body.decode())
    return float(match.group(1)) if match else None


def cancelled(base_url: str) -> float:
    """Requests the service counted as cancelled (finished early, or closed by the UI)."""
    return sum(metric(base_url, "neoc_requests_total", f'{{outcome="{o}"}}') or 0.0
               for o in ("cancelled", "error:cancelled"))


def post_json(url: str, payload: dict, timeout: float = 600) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - localhost
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def screenshot(page, name: str) -> Path:
    OUTPUT_DIR.mkdir(exist_ok=True)
    path = OUTPUT_DIR / name
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def streaming(text: str, min_chars: int = 20) -> bool:
    """Still streaming (cursor at the end) with some visible text already."""
    text = text.rstrip()
    return text.endswith("▌") and len(text) > min_chars


def streaming_lengths(page, n: int, samples: int = 12, every: float = 0.15) -> list[int]:
    lengths = []
    for _ in range(samples):
        text = page.locator(BOT).nth(n - 1).inner_text()
        if text.rstrip().endswith("▌"):
            lengths.append(len(text))
        time.sleep(every)
    return lengths
