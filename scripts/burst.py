"""A burst of concurrent questions against a running ``serve``: what the callers got, and ``/health`` meanwhile.

Why: the adversarial test's 200 concurrent questions gave 8 HTTP 500s, 8 client
time-outs at 60 s and ``/health`` answers of up to 7 s. This fires ``--n``
``POST /api/ask`` at once (distinct questions, cache off, so each is answered),
polls ``GET /health`` every ``--health-every`` seconds while they run, and
prints one JSON object: status counts, time-outs, answer latency, ``/health``
p50/p95/max, and the server's thread count before/peak/after (``--server-pid``).

    .venv/bin/python scripts/burst.py --url http://127.0.0.1:7860 --n 200 --server-pid PID
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from neoc_assistant.figures import percentile  # noqa: E402

TOPICS = ["water per person", "shelter space", "evacuation routes", "EOC activation levels", "shift handover",
          "flood warnings", "earthquake aftershocks", "landslide signs", "cold wave shelters", "epidemic reporting",
          "fire evacuation", "ICS roles", "sirens", "boats", "casualty reporting", "food rations", "latrines",
          "generators", "radio checks", "damage assessment"]


def question(i: int) -> str:
    return f"What does the plan say about {TOPICS[i % len(TOPICS)]} for district {i}?"


def post(url: str, payload: dict, timeout: float) -> tuple[int | str, float, str]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            resp.read()
            return resp.status, time.perf_counter() - started, ""
    except urllib.error.HTTPError as exc:
        return exc.code, time.perf_counter() - started, exc.headers.get("Retry-After") or ""
    except (TimeoutError, OSError) as exc:
        return f"client:{type(exc).__name__}", time.perf_counter() - started, ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--timeout", type=float, default=60.0, help="per question, as the adversarial client's")
    p.add_argument("--health-every", type=float, default=0.25)
    p.add_argument("--server-pid", type=int, default=None)
    args = p.parse_args()
    base = args.url.rstrip("/")
    server = psutil.Process(args.server_pid) if args.server_pid else None
    threads_before = server.num_threads() if server else None
    peak = [threads_before or 0]
    results: list[tuple] = []
    health: list[tuple[int | str, float]] = []
    done = threading.Event()

    def poll_health():
        while not done.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(base + "/health", timeout=30) as resp:  # noqa: S310
                    resp.read()
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                status = f"client:{type(exc).__name__}"
            health.append((status, time.perf_counter() - started))
            if server:
                peak[0] = max(peak[0], server.num_threads())
            done.wait(args.health_every)

    gate = threading.Barrier(args.n)

    def ask(i: int):
        gate.wait()
        results.append(post(base + "/api/ask", {"question": question(i), "use_cache": False}, args.timeout))

    poller = threading.Thread(target=poll_health, daemon=True)
    poller.start()
    workers = [threading.Thread(target=ask, args=(i,)) for i in range(args.n)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - started
    done.set()
    poller.join()
    statuses = Counter(str(r[0]) for r in results)
    ok = [r[1] for r in results if r[0] == 200]
    retry_after = Counter(r[2] for r in results if r[0] == 503)
    health_s = sorted(h[1] for h in health)
    print(json.dumps({
        "questions": args.n, "wall_seconds": round(wall, 1), "statuses": dict(statuses),
        "http_500": statuses.get("500", 0), "http_503": statuses.get("503", 0),
        "client_timeouts": sum(v for k, v in statuses.items() if k.startswith("client:")),
        "answer_seconds_p50_p95": [round(percentile(sorted(ok), q), 2) for q in (50, 95)] if ok else None,
        "retry_after_values": dict(retry_after),
        "health": {"polls": len(health), "statuses": dict(Counter(str(h[0]) for h in health)),
                   "p50_ms": round(percentile(health_s, 50) * 1000), "p95_ms": round(percentile(health_s, 95) * 1000),
                   "max_ms": round(max(health_s) * 1000)} if health else None,
        "server_threads": {"before": threads_before, "peak": peak[0],
                           "after": server.num_threads() if server else None},
    }, indent=1))


if __name__ == "__main__":
    main()
