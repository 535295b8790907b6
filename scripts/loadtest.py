#!/usr/bin/env python
"""Load test: N concurrent simulated duty officers against the assistant.

In process (the ``Assistant`` built from Settings / NEOC_* env vars; the same
``Assistant.ask`` the UI calls):

    python scripts/loadtest.py --in-process --users 50 --requests 500 --think 1 --warm --out bench-output/load
    python scripts/loadtest.py --in-process --data-dir /tmp/neoc-load --ingest --retrieval-only ...

Against a running server on this machine (``POST {url}/api/ask`` JSON
``{"question": ...}`` -> ``Answer.to_json()``; loopback URLs only):

    python scripts/loadtest.py --url http://127.0.0.1:7860 --users 20 --duration 120

Several instances (e.g. two ``serve`` behind one LLM server, docs/deploy.md):
``--url http://127.0.0.1:7860,http://127.0.0.1:7861`` sends the requests to
them in turn, as a round-robin load balancer would.

Question mix: ``--questions`` (default tests/data/loadtest_questions.jsonl, each
line ``{"id", "text", "kind": "repeat"|"paraphrase"|"new"}``); ``--repeat-ratio``
of the requests are recurring questions (``--paraphrase-share`` of those
reworded), the rest new ones. ``--warm`` asks the hot set once first.
``--build-questions`` regenerates the question file from tests/data/kb_questions.jsonl
and kb_paraphrases.jsonl.

Prints p50/p95/p99, average, throughput, errors by kind, cache hit rate and
peak RSS (this process, plus the server with ``--server-pid`` or found by
port); writes ``report.json``, ``requests.jsonl`` and ``latency.png`` to
``--out``. The last line printed is the summary as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # loadgen.py, next to this script

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()
import _loadgen_report  # noqa: E402
import loadgen  # noqa: E402

DEFAULT_QUESTIONS = ROOT / "tests" / "data" / "loadtest_questions.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--in-process", action="store_true", help="Run the assistant in this process.")
    target.add_argument("--url", help="Loopback server(s), e.g. http://127.0.0.1:7860 (POST /api/ask); "
                        "comma-separated for several instances, asked in turn.")
    p.add_argument("--users", type=int, default=10, help="Concurrent simulated users (threads).")
    p.add_argument("--requests", type=int, default=None, help="Stop after this many requests.")
    p.add_argument("--duration", type=float, default=None, help="Stop after this many seconds.")
    p.add_argument("--think", type=float, default=1.0, help="Mean think time between a user's questions (s).")
    p.add_argument("--ramp-up", type=float, default=0.0, help="Spread user start over this many seconds.")
    p.add_argument("--repeat-ratio", type=float, default=0.8, help="Share of recurring questions (0..1).")
    p.add_argument("--paraphrase-share", type=float, default=0.25,
                   help="Share of recurring questions asked in other words (0..1).")
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warm", action="store_true", help="Ask the hot set once before the run (pre-warm the cache).")
    p.add_argument("--out", type=Path, default=None, help="Report directory (default bench-output/loadtest-<time>).")
    p.add_argument("--server-pid", type=int, default=None, help="Server PID to sample for peak RSS (URL mode).")
    p.add_argument("--timeout", type=float, default=300.0, help="Per-request timeout in URL mode (s).")
    p.add_argument("--data-dir", type=Path, default=None, help="In-process: NEOC data dir (default from settings).")
    p.add_argument("--ingest", action="store_true", help="In-process: ingest the default knowledge base first.")
    p.add_argument("--retrieval-only", action="store_true", help="In-process: run without a model.")
    p.add_argument("--no-preflight", action="store_true",
                   help="In-process: include start-up costs (embedder/model load, cache init) in the run.")
    p.add_argument("--build-questions", action="store_true",
                   help=f"Write {DEFAULT_QUESTIONS.relative_to(ROOT)} from the KB question sets and exit.")
    args = p.parse_args(argv)
    if args.build_questions:
        return args
    if not args.in_process and not args.url:
        p.error("choose a target: --in-process or --url http://127.0.0.1:PORT")
    if args.requests is None and args.duration is None:
        p.error("bound the run with --requests N and/or --duration SECONDS")
    if args.users < 1:
        p.error("--users must be >= 1")
    return args


def build_questions(path: Path) -> None:
    rows = loadgen.build_question_set(ROOT / "tests/data/kb_questions.jsonl", ROOT / "tests/data/kb_paraphrases.jsonl")
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = {k: sum(r["kind"] == k for r in rows) for k in loadgen.KINDS}
    print(f"wrote {len(rows)} questions to {path}: {counts}")


class RoundRobin:
    """Several instances behind one address: each request goes to the next one in turn."""

    def __init__(self, targets: list):
        self.targets = targets
        self.base = ",".join(t.base for t in targets)
        self._next = 0
        self._lock = threading.Lock()

    def ask(self, question: str) -> dict:
        with self._lock:
            target = self.targets[self._next % len(self.targets)]
            self._next += 1
        return target.ask(question)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def in_process_target(args):
    from neoc_assistant.container import Container
    from neoc_assistant.settings import Settings

    overrides = {}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.retrieval_only:
        overrides["model_path"] = None
        overrides["models_dir"] = Path("/nonexistent/neoc-loadtest-no-models")
    settings = Settings(**overrides)
    assistant = Container(settings).assistant
    if args.retrieval_only and os.environ.get("NEOC_MODEL_PATH"):
        log("note: --retrieval-only ignores NEOC_MODEL_PATH")
    if args.ingest:
        t0 = time.perf_counter()
        summary = assistant.ingest()
        log(f"ingested {settings.paths.kb_dir}: {summary.to_dict()['chunks']} chunks in "
            f"{time.perf_counter() - t0:.1f}s")
    model = settings.generation.resolved_model_path()
    preflight = None
    if not args.no_preflight:
        # One-time start-up costs (embedder load, store open, model load, the response cache's guard
        # vocabulary built on its first lookup) are measured here, not in the steady-state percentiles.
        # An out-of-scope question is "not-found": it runs the whole chain without a generation.
        t0 = time.perf_counter()
        assistant.search("EOC activation levels")
        t1 = time.perf_counter()
        if model is not None:
            assistant.generation_slots()  # loads the model
        t2 = time.perf_counter()
        first = assistant.ask(loadgen.OUT_OF_SCOPE[0])
        t3 = time.perf_counter()
        preflight = {"embedder_and_store_s": round(t1 - t0, 2), "model_load_s": round(t2 - t1, 2),
                     "first_ask_s": round(t3 - t2, 2), "first_ask_mode": first.mode,
                     "first_ask_timings_ms": {k: round(v, 1) for k, v in first.timings_ms.items()}}
        log(f"pre-flight (not measured): {preflight}")
    log(f"model: {model or 'none (retrieval-only)'}; data dir {settings.paths.data_dir}")
    return loadgen.InProcessTarget(assistant), assistant, model, preflight


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_questions:
        build_questions(args.questions)
        return 0

    questions = loadgen.load_questions(args.questions)
    mix = loadgen.QuestionMix(questions, args.repeat_ratio, args.paraphrase_share, seed=args.seed)
    pids: dict[str, int] = {}
    assistant = None
    model = None
    preflight = None
    try:
        if args.in_process:
            target, assistant, model, preflight = in_process_target(args)
            mode = "in-process"
        else:
            from urllib.parse import urlsplit

            targets = [loadgen.HttpTarget(u.strip(), timeout=args.timeout) for u in args.url.split(",") if u.strip()]
            target = targets[0] if len(targets) == 1 else RoundRobin(targets)
            mode = "url"
            for n, one in enumerate(targets):
                pid = args.server_pid if len(targets) == 1 and args.server_pid else \
                    loadgen.find_listening_pid(urlsplit(one.base).port or 80)
                if pid:
                    pids["server" if len(targets) == 1 else f"server{n + 1}"] = pid
                else:
                    log(f"note: PID of {one.base} unknown (give --server-pid); peak RSS leaves it out")
    except Exception as exc:  # NeocError (e.g. non-loopback URL) and setup failures: one line
        log(f"error: {exc}")
        return 2

    out = args.out or ROOT / "bench-output" / time.strftime("loadtest-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "mode": mode, "url": args.url, "users": args.users, "requests": args.requests, "duration": args.duration,
        "think_seconds": args.think, "ramp_up_seconds": args.ramp_up, "repeat_ratio": args.repeat_ratio,
        "paraphrase_share": args.paraphrase_share, "questions": str(args.questions), "seed": args.seed,
        "warm": args.warm, "model": str(model or "") if assistant else None,
        "cpu_count": os.cpu_count(),
    }
    warm_info = None
    if args.warm:
        log(f"warming the cache with {len(mix.warm_set())} hot-set questions ...")
        warm_info = loadgen.warm(target, mix.warm_set())
        log(f"warm-up: {warm_info}")

    done = [0]
    errors = [0]

    def on_record(record) -> None:
        done[0] += 1
        if record.outcome.startswith("error"):
            errors[0] += 1

    stop_progress = threading.Event()

    def progress() -> None:
        t0 = time.perf_counter()
        while not stop_progress.wait(10):
            log(f"  {time.perf_counter() - t0:5.0f}s  {done[0]} requests, {errors[0]} errors")

    log(f"load test: {args.users} users, mode {mode}, requests={args.requests}, duration={args.duration}, "
        f"think {args.think}s, repeat ratio {args.repeat_ratio}")
    progress_thread = threading.Thread(target=progress, daemon=True)
    progress_thread.start()
    result = loadgen.run_load(target, mix, users=args.users, max_requests=args.requests,
                              duration_seconds=args.duration, think_seconds=args.think,
                              ramp_up_seconds=args.ramp_up, seed=args.seed, pids=pids, on_record=on_record)
    stop_progress.set()

    report = _loadgen_report.build_report(result, config)
    report["warm"] = warm_info
    report["preflight"] = preflight
    if assistant is not None:
        snap = assistant.stats()
        report["server_metrics"] = {k: snap.get(k) for k in ("window", "latency_ms", "outcomes", "hit_rate",
                                                              "error_rate", "memory", "pool", "alerts")}
    report_path = out / "report.json"
    report["report_path"] = str(report_path)
    plot_path = _loadgen_report.plot_latency(result.records, out / "latency.png",
                                             title=f"{mode}, {args.users} users, repeat ratio {args.repeat_ratio}")
    report["plot_path"] = str(plot_path)
    report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    with open(out / "requests.jsonl", "w", encoding="utf-8") as fh:
        for row in _loadgen_report.records_json(result.records):
            fh.write(json.dumps(row) + "\n")

    lat = report["latency_ms"]
    print(f"requests {report['requests']} ({report['completed']} ok, {report['errors']} errors) in "
          f"{report['elapsed_seconds']:.1f}s, stopped by {report['stopped_by']}")
    print(f"latency ms: p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  avg {lat['avg']}  max {lat['max']}")
    print(f"throughput {report['throughput_rps']} req/s   cache hit rate {report['cache_hit_rate']} "
          f"(of cacheable, i.e. model-written, answers: {report['cacheable_hit_rate']})")
    print(f"outcomes {report['outcomes']}")
    if report["errors_by_kind"]:
        print(f"errors by kind {report['errors_by_kind']}")
    for kind, row in report["by_kind"].items():
        print(f"  {kind:<11} n={row['requests']:<5} hit rate {row['hit_rate']}  p95 {row['latency_ms']['p95']} ms")
    peak = report["resources"]["peak_rss_bytes"]
    print("peak RSS " + ", ".join(f"{k} {v / 2**20:.0f} MB" for k, v in peak.items())
          + f"   peak system memory {report['resources']['peak_system_memory_percent']}%")
    print(f"report {report_path}   plot {plot_path}")
    print(json.dumps(_loadgen_report.summary_line(report)), flush=True)
    if assistant is not None:
        assistant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
