#!/usr/bin/env python
"""How long until the web UI is usable after `python -m neoc_assistant serve`.

Starts the real server in a subprocess on a free localhost port (with the
current NEOC_* settings, or --data-dir/--kb-dir/--models-dir), polls until
``GET /`` answers 200 and ``GET /config`` returns the Gradio config with its
components, prints the times, stops the server, and ends with one JSON line:

    python scripts/ui_startup_time.py --runs 3
    {"metric": "ui_startup_seconds", "median": 9.8, "runs": [...], ...}

"Usable" here is what the browser needs to render the page; the embedding
model keeps warming up in the background and a model (if installed) is
loaded before the port opens, so it is included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - localhost only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def one_run(env: dict, timeout: float, log_path: Path) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "neoc_assistant", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        first_200 = config_loaded = None
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}; see {log_path}")
                try:
                    if first_200 is None:
                        status, _ = get(base + "/")
                        if status == 200:
                            first_200 = time.perf_counter() - t0
                    if first_200 is not None:
                        status, body = get(base + "/config", timeout=5)
                        if status == 200 and json.loads(body).get("components"):
                            config_loaded = time.perf_counter() - t0
                            break
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            else:
                raise RuntimeError(f"not usable after {timeout:.0f}s; see {log_path}")
            _, health = get(base + "/health", timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the server's own session only
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    mode = None
    try:
        mode = json.loads(health).get("checks", {}).get("model", {}).get("mode")
    except (ValueError, AttributeError):
        pass
    return {"http_200_seconds": round(first_200, 3), "usable_seconds": round(config_loaded, 3), "mode": mode}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--data-dir", type=Path, help="NEOC_DATA_DIR for the server (default: current settings)")
    ap.add_argument("--kb-dir", type=Path)
    ap.add_argument("--models-dir", type=Path)
    args = ap.parse_args(argv)

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    for key, value in (("NEOC_DATA_DIR", args.data_dir), ("NEOC_KB_DIR", args.kb_dir),
                       ("NEOC_MODELS_DIR", args.models_dir)):
        if value is not None:
            env[key] = str(value)
    log_dir = Path(tempfile.mkdtemp(prefix="neoc-ui-startup-"))
    runs = []
    for i in range(args.runs):
        result = one_run(env, args.timeout, log_dir / f"serve-{i + 1}.log")
        runs.append(result)
        print(f"run {i + 1}: HTTP 200 on / after {result['http_200_seconds']:.2f}s, "
              f"page usable (Gradio config loaded) after {result['usable_seconds']:.2f}s, mode {result['mode']}",
              flush=True)
    usable = [r["usable_seconds"] for r in runs]
    print(json.dumps({
        "metric": "ui_startup_seconds",
        "median": round(statistics.median(usable), 3),
        "min": min(usable),
        "max": max(usable),
        "runs": runs,
        "cpu_count": os.cpu_count(),
        "logs": str(log_dir),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
