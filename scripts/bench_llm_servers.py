#!/usr/bin/env python
"""llama.cpp's ``llama-server`` vs ``python -m llama_cpp.server`` as the national layout's LLM server (issue 26).

    python scripts/bench_llm_servers.py --llama-server /tmp/lcp-build/bin/llama-server \\
        --model ~/.cache/neoc-assistant/models/SmolLM2-135M-Instruct.Q4_1.gguf --reps 2 --users 8,50 --duration 90

Two phases, each alternating the servers (A, B, A, B) so both see the same
load from whatever else runs on the machine; only the ratios
llama-server / llama_cpp.server printed at the end are meant to be compared
across runs.

1. **Engine**: N concurrent streamed ``/v1/chat/completions`` with RAG-sized
   prompts straight to each server (no assistant): aggregate completion
   tokens/s, time to first token p50/p95, tokens per answer.
2. **Load**: one ``python -m neoc_assistant serve`` (response cache off,
   ``serve.api_max_running`` >= users, a fresh data dir with the default
   knowledge base ingested) pointed at the server under test
   (``NEOC_LLM_URLS``), driven by ``scripts/loadtest.py --url`` at each user
   count: requests/s, p50/p95, the share of answers written by the model (the
   rest are quotes: ``extractive_busy`` = every answer slot taken,
   ``extractive`` = the server failed or timed out), errors, and completion
   tokens/s from the instance's own ``neoc_tokens_total{kind="completion"}``.
   The instance stays up; the LLM server behind its port is swapped.

Both servers get the same GGUF, threads (``--threads``) and per-answer
context (``--slot-ctx``); llama-server gets ``--parallel`` slots with
continuous batching, llama_cpp.server queues (``--interrupt_requests False``;
its default cuts a streamed answer short when another request arrives -
``--engine-interrupting`` measures that too). Last line: everything as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _llm_servers as servers  # noqa: E402
from browser_support import ServerProcess, clean_environ, server_env  # noqa: E402 - tests/, via _llm_servers
from services import free_port  # noqa: E402

ROOT = servers.ROOT
A, B, B_INT = "llama-server", "llama_cpp.server", "llama_cpp.server(interrupting)"
METRIC = re.compile(r'^neoc_tokens_total\{kind="completion"\}\s+([0-9.e+]+)', re.M)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llama-server", type=Path, required=True, help="The llama-server binary.")
    p.add_argument("--model", type=Path, required=True, help="GGUF given to both servers.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parallel", type=int, default=8, help="llama-server slots (and the instance's answer slots).")
    p.add_argument("--slot-ctx", type=int, default=2048, help="Context per answer (llama-server -c = parallel*this).")
    p.add_argument("--max-tokens", type=int, default=200, help="Answer length limit in the load phase (NEOC_MAX_TOKENS).")
    p.add_argument("--engine-max-tokens", type=int, default=64, help="Tokens per stream in the engine phase.")
    p.add_argument("--prompt-chars", type=int, default=3600, help="Document characters per engine-phase prompt.")
    p.add_argument("--reps", type=int, default=2, help="A,B pairs per engine measurement (B,A on odd reps).")
    p.add_argument("--load-reps", type=int, default=2, help="A,B pairs per load-phase user count.")
    p.add_argument("--engine-n", default="1,8", help="Concurrent streams in the engine phase ('' to skip).")
    p.add_argument("--engine-interrupting", action="store_true",
                   help="Engine phase also measures llama_cpp.server with its default interrupt_requests=True.")
    p.add_argument("--users", default="8,50", help="Load-phase user counts ('' to skip).")
    p.add_argument("--duration", type=float, default=90.0, help="Seconds per load run.")
    p.add_argument("--think", type=float, default=1.0)
    p.add_argument("--workdir", type=Path, default=None, help="Logs, data dir, reports (default: a temp dir).")
    return p.parse_args(argv)


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_server(name: str, args, port: int, logs: Path):
    logfile = logs / f"{name.replace('(', '-').replace(')', '')}.log"
    if name == A:
        return servers.llama_server(args.llama_server, args.model, port, logfile, parallel=args.parallel,
                                    slot_ctx=args.slot_ctx, threads=args.threads)
    return servers.python_server(args.model, port, logfile, slot_ctx=args.slot_ctx, threads=args.threads,
                                 interrupt=(name == B_INT))


def engine_phase(args, work: Path) -> list[dict]:
    ns = ints(args.engine_n)
    # each round its own documents, and the warm-up another: no round starts with a prompt the server has cached
    prompts = servers.rag_prompts(ROOT / "knowledge_base", sum(ns) + 1, args.prompt_chars)
    names = [A, B] + ([B_INT] if args.engine_interrupting else [])
    rows = []
    for rep in range(args.reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            port = free_port()
            with make_server(name, args, port, work / "logs"):
                base = f"http://127.0.0.1:{port}"
                servers.engine_round(base, prompts[-1:], 8)  # warm: first-use costs paid outside the figures
                start = 0
                for n in ns:
                    row = {"phase": "engine", "server": name, "rep": rep, **servers.engine_round(
                        base, prompts[start:start + n], args.engine_max_tokens)}
                    start += n
                    log(f"engine {name:<31} n={n:<3} {row['tokens_per_s']:>7} tok/s  ttft p50 "
                        f"{row['ttft_p50_s']}s p95 {row['ttft_p95_s']}s  tokens/answer avg "
                        f"{row['tokens_per_answer_avg']} min {row['tokens_per_answer_min']}  errors {row['errors']}")
                    rows.append(row)
    return rows


def completion_tokens(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    m = METRIC.search(text)
    return float(m.group(1)) if m else 0.0


def ingest(env: dict, logs: Path) -> None:
    t0 = time.perf_counter()
    with open(logs / "ingest.log", "wb") as fh:
        subprocess.run([sys.executable, "-m", "neoc_assistant", "ingest", "--no-progress"], env=env, cwd=ROOT,
                       stdout=fh, stderr=subprocess.STDOUT, check=True, timeout=1800)
    log(f"ingested the default knowledge base in {time.perf_counter() - t0:.0f}s")


def one_load_run(args, url: str, users: int, rep: int, out: Path) -> dict:
    before, t0 = completion_tokens(url), time.perf_counter()
    cmd = [sys.executable, str(ROOT / "scripts" / "loadtest.py"), "--url", url, "--users", str(users),
           "--duration", str(args.duration), "--think", str(args.think), "--seed", str(rep), "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=args.duration + 900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"loadtest failed: {proc.stderr[-1500:]}")
    tokens = completion_tokens(url) - before
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    outcomes = report["outcomes"]
    ok = sum(n for o, n in outcomes.items() if not o.startswith("error"))
    lat = report["latency_ms"]
    return {"requests": report["requests"], "rps": report["throughput_rps"], "p50_ms": lat["p50"],
            "p95_ms": lat["p95"], "errors": report["errors"], "outcomes": outcomes,
            "llm_share": round(outcomes.get("llm", 0) / ok, 3) if ok else None,
            "completion_tokens": int(tokens), "tokens_per_s": round(tokens / elapsed, 2)}


def load_phase(args, work: Path) -> list[dict]:
    users = ints(args.users)
    port = free_port()
    llm_url = f"http://127.0.0.1:{port}/v1"
    env = {**clean_environ(), **server_env(
        work / "data", ROOT / "knowledge_base", args.model.parent,
        NEOC_LLM_URLS=llm_url, NEOC_LLM_MODEL=servers.ALIAS, NEOC_LLM_MAX_CONCURRENT=str(args.parallel),
        NEOC_LLM_RETRY_SECONDS="1", NEOC_N_CTX=str(args.slot_ctx), NEOC_MAX_TOKENS=str(args.max_tokens),
        NEOC_CACHE__ENABLED="false", NEOC_SERVE__API_MAX_RUNNING=str(max(users) + 4),
        NEOC_AUDIT__ENABLED="false")}
    ingest(env, work / "logs")
    rows = []
    with ServerProcess(env, log_path=work / "logs" / "serve.log") as serve:
        for n_users in users:
            for rep in range(args.load_reps):
                for name in (A, B) if rep % 2 == 0 else (B, A):
                    with make_server(name, args, port, work / "logs"):
                        warm = httpx.post(serve.url + "/api/ask", json={"question": "What are the EOC activation "
                                          "levels?", "use_cache": False}, timeout=300).json()
                        out = work / "load" / f"{name}-{n_users}u-{rep}"
                        row = {"phase": "load", "server": name, "users": n_users, "rep": rep,
                               "warm_mode": warm.get("mode"), **one_load_run(args, serve.url, n_users, rep, out)}
                    log(f"load {name:<17} {n_users:>3} users: {row['rps']} req/s  p50 {row['p50_ms']} ms  p95 "
                        f"{row['p95_ms']} ms  model-written {row['llm_share']}  {row['tokens_per_s']} tok/s  "
                        f"errors {row['errors']}  outcomes {row['outcomes']}")
                    rows.append(row)
                    time.sleep(2)  # the instance marks the stopped server down; the next one is probed after 1 s
    return rows


def mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.fmean(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summarize(rows: list[dict]) -> list[dict]:
    """Per phase and size: the mean of each server's figures and the ratio llama-server / llama_cpp.server."""
    out = []
    groups = sorted({(r["phase"], r.get("n") or r.get("users")) for r in rows})
    for phase, size in groups:
        sel = [r for r in rows if r["phase"] == phase and (r.get("n") or r.get("users")) == size]
        keys = (("tokens_per_s", "ttft_p50_s", "ttft_p95_s", "tokens_per_answer_avg") if phase == "engine" else
                ("rps", "p50_ms", "p95_ms", "llm_share", "tokens_per_s", "errors"))
        line: dict = {"phase": phase, "size": size}
        for name in (A, B, B_INT):
            mine = [r for r in sel if r["server"] == name]
            if mine:
                line[name] = {k: round(v, 3) if (v := mean(mine, k)) is not None else None for k in keys}
        if A in line and B in line:
            line["ratio"] = {k: ratio(line[A][k], line[B][k]) for k in keys}
        out.append(line)
    return out


def print_table(summary: list[dict]) -> None:
    for line in summary:
        size = f"{line['phase']} {'n' if line['phase'] == 'engine' else 'users'}={line['size']}"
        print(f"\n{size}")
        names = [n for n in (A, B, B_INT) if n in line] + (["ratio"] if "ratio" in line else [])
        keys = list(line[names[0]].keys())
        print(f"  {'':<31}" + "".join(f"{k:>22}" for k in keys))
        for name in names:
            label = "ratio A/B" if name == "ratio" else name
            print(f"  {label:<31}" + "".join(f"{str(line[name][k]):>22}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the servers started here are stopped
    args.model = args.model.expanduser().resolve()
    for path in (args.llama_server, args.model):
        if not path.exists():
            log(f"error: {path} does not exist")
            return 2
    keep = args.workdir is not None
    work = args.workdir or Path(tempfile.mkdtemp(prefix="neoc-llm-servers-"))
    (work / "logs").mkdir(parents=True, exist_ok=True)
    log(f"work dir {work}; model {args.model.name}; threads {args.threads}; parallel {args.parallel}; "
        f"slot ctx {args.slot_ctx}; max tokens {args.max_tokens}; load average {os.getloadavg()}")
    rows: list[dict] = []
    try:
        if args.engine_n.strip():
            rows += engine_phase(args, work)
        if args.users.strip():
            rows += load_phase(args, work)
    finally:
        if not keep:
            shutil.rmtree(work / "data", ignore_errors=True)
    summary = summarize(rows)
    print(f"model {args.model.name}, threads {args.threads}, llama-server --parallel {args.parallel} "
          f"-c {args.parallel * args.slot_ctx}, max tokens {args.max_tokens}, "
          f"reps {args.reps} engine / {args.load_reps} load (A,B alternated); "
          f"A = {A}, B = {B}; shared machine: compare the ratios, not the absolute figures")
    print_table(summary)
    print(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
