#!/usr/bin/env python
"""Benchmark the generation engine against a bare llama.cpp decode loop.

For Qwen2.5-0.5B- and 1.5B-shaped Q4_K_M models (random weights, built with
``make_test_model.py`` into ``bench-output/models/`` if missing) it measures,
at the same context size (~1k) and prompt:

* raw llama.cpp decode tokens/s (tokenize, ``llama_decode`` one token at a
  time, greedy ``llama_sampler_sample``, ``llama_token_to_piece``) vs the
  engine's streaming tokens/s, and their ratio (target >= 0.9). Headline
  figures come from an *interleaved* run: the raw loop and the engine stream
  (each with its own context, same prompt, same context position) advance in
  alternating 16-token segments in ABBA order, so load spikes from other jobs
  on a shared machine hit both alike. Separate cold runs (fresh model load
  each) give prefill speed and a second ratio;
* prompt (prefill) tokens/s;
* time to first token: cold, with the passages+system prefix reused (new
  question), and with only the system prompt reused (new passages);
* peak RSS of a process serving 1 and 4 concurrent requests (target < 2 GB
  for the 1.5B shape with 4).

Each measurement runs in a fresh subprocess so peak RSS is per scenario. The
raw loop runs in the engine's process environment (the engine shortens
OpenMP's barrier spinning, see ``runtime._tune_openmp_spin``); an extra raw run
in a separate process keeps llama.cpp's default OpenMP policy
(``raw_default_openmp_decode_tps``, ``ratio_vs_default_openmp_raw``) so the
ratio is not flattered. The last line printed is one JSON object.

    python scripts/bench_generate.py                 # both models
    python scripts/bench_generate.py --models 0.5b --tokens 64 --reps 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from _bench_raw_llama import RawLoop, raw_decode  # noqa: E402

PRESET = {"0.5b": "qwen0.5b", "1.5b": "qwen1.5b"}
WORDS = ("shelter evacuation flood cyclone district coordinator register water sanitation radio logistics "
         "warehouse generator fuel cholera response report assessment volunteers communities warning level "
         "river gauge sirens police hospital supplies tents blankets hygiene kits").split()


def model_path(out_dir: Path, key: str) -> Path:
    return out_dir / "models" / f"{PRESET[key]}-shape-q4_k_m.gguf"


def ensure_model(out_dir: Path, key: str) -> Path:
    path = model_path(out_dir, key)
    if not path.exists():
        import make_test_model

        print(f"building {path.name} (random weights, Q4_K_M) ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        make_test_model.make_test_model(path, preset=PRESET[key], quantize="Q4_K_M")
        print(f"  built in {time.perf_counter() - t:.0f}s ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    return path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------- workers
def _settings(path: Path, args, **kw):
    from neoc_assistant.settings import Settings

    base = dict(data_dir=Path(tempfile.mkdtemp(prefix="neoc-bench-")), model_path=path, n_ctx=args.ctx,
                n_batch=256, max_tokens=args.tokens, temperature=0.0, pool_size=1, pool_wait_timeout_seconds=600,
                guard_rss_limit_mb=1 << 20, guard_system_memory_percent=100.0, n_threads=args.threads)
    base.update(kw)
    return Settings(**base)


def _messages(seed: int, n_words: int, question: str) -> list[dict]:
    from neoc_assistant.generate.prompt import SYSTEM_PROMPT

    rng = random.Random(seed)
    blocks = []
    per = max(1, n_words // 5)
    for i in range(1, 6):
        blocks.append(f"[{i}] sop/doc{i}.pdf, p. {i}\n" + " ".join(rng.choice(WORDS) for _ in range(per)))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Passages:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"}]


def _fit_messages(engine, target_tokens: int, seed: int, question: str) -> list[dict]:
    n_words = target_tokens
    for _ in range(8):
        msgs = _messages(seed, n_words, question)
        n = len(engine.prompt_tokens(msgs))
        if abs(n - target_tokens) <= 16:
            break
        n_words = max(10, int(n_words * target_tokens / max(n, 1)))
    return msgs


def interleaved_decode(engine, path: Path, msgs: list[dict], n_tokens: int, segment: int) -> dict:
    """Raw loop and engine stream advance in alternating short segments (ABBA).

    Both sit at the same context position, and a load spike from other jobs
    on a shared machine hits both sides alike - far steadier than comparing
    runs a minute apart.
    """
    prompt = engine.prompt_tokens(msgs)
    raw = RawLoop(path, prompt, engine.n_ctx, engine.n_threads)
    stream = engine.stream(msgs, max_tokens=n_tokens + 1)
    next(stream)  # prefill + first token
    raw_t = eng_t = 0.0
    raw_n = eng_n = 0
    pair_ratios = []
    for i in range(max(1, n_tokens // segment)):
        order = ("raw", "engine") if i % 2 == 0 else ("engine", "raw")
        seg = {}
        for kind in order:
            t = time.perf_counter()
            if kind == "raw":
                raw.step(segment)
                seg["raw"] = (segment, time.perf_counter() - t)
            else:
                before = stream._n_gen
                while stream._n_gen - before < segment:
                    next(stream)
                seg["engine"] = (stream._n_gen - before, time.perf_counter() - t)
        raw_n += seg["raw"][0]
        raw_t += seg["raw"][1]
        eng_n += seg["engine"][0]
        eng_t += seg["engine"][1]
        pair_ratios.append((seg["engine"][0] / seg["engine"][1]) / (seg["raw"][0] / seg["raw"][1]))
    stream.close()
    raw.close()
    return {"raw_tps": raw_n / raw_t, "engine_tps": eng_n / eng_t, "pair_ratios": pair_ratios}


def engine_decode(engine, msgs: list[dict], n_tokens: int) -> dict:
    """Consume the engine's stream exactly as a client would."""
    stats: dict = {}
    t0 = time.perf_counter()
    first = None
    n = 0
    for _piece in engine.stream(msgs, max_tokens=n_tokens, stats=stats):
        if first is None:
            first = time.perf_counter()
        n += 1
    end = time.perf_counter()
    gen = stats["generated_tokens"]
    return {
        "prefill_tps": stats["evaluated_tokens"] / stats["prefill_seconds"] if stats["evaluated_tokens"] else None,
        "ttft_s": first - t0,
        "decode_tps": (gen - 1) / (end - first),
        "evaluated": stats["evaluated_tokens"], "reused": stats["reused_tokens"], "generated": gen,
    }


def worker_speed(path: Path, args) -> dict:
    from neoc_assistant.generate.engine import GenerationEngine

    eng = GenerationEngine(_settings(path, args, pool_size=1).generation)
    target = args.ctx - args.tokens - 64
    msgs = _fit_messages(eng, target, seed=1, question="What is the procedure for opening a shelter?")
    prompt = eng.prompt_tokens(msgs)
    total = args.tokens * args.reps
    inter_msgs = _fit_messages(eng, max(256, args.ctx - total - 64), seed=3, question="Who coordinates the shelters?")
    inter_prompt = len(eng.prompt_tokens(inter_msgs))
    inter = interleaved_decode(eng, path, inter_msgs, total, args.segment)
    print(f"  interleaved: raw {inter['raw_tps']:.2f} tok/s, engine {inter['engine_tps']:.2f} tok/s, "
          f"pair-ratio median {statistics.median(inter['pair_ratios']):.3f}", file=sys.stderr, flush=True)
    raw_runs, eng_runs = [], []
    for rep in range(args.cold_reps):
        # ABBA order: a load spike from other jobs hits raw and engine runs alike
        order = ("raw", "engine") if rep % 2 == 0 else ("engine", "raw")
        for kind in order:
            if kind == "raw":
                raw_runs.append(raw_decode(path, prompt, args.tokens, args.ctx, eng.n_threads))
            else:
                eng.close()  # fresh engine each rep: cold prefix, same conditions as the raw loop
                eng = GenerationEngine(_settings(path, args, pool_size=1).generation)
                eng_runs.append(engine_decode(eng, msgs, args.tokens))
        print(f"  rep {rep + 1}: raw {raw_runs[-1]['decode_tps']:.1f} tok/s, "
              f"engine {eng_runs[-1]['decode_tps']:.1f} tok/s", file=sys.stderr, flush=True)
    cold = eng_runs[-1]
    # same system prompt + passages, new question (a follow-up): only the question is evaluated
    msgs_q = [msgs[0], {"role": "user", "content": msgs[1]["content"].rsplit("Question:", 1)[0]
                        + "Question: Who must be informed downstream?"}]
    reuse_q = engine_decode(eng, msgs_q, 8)
    # same system prompt, different passages: only the system prompt prefix is reused
    msgs_p = _fit_messages(eng, target, seed=2, question="Which stocks are tracked in the warehouse?")
    reuse_sys = engine_decode(eng, msgs_p, 8)
    eng.close()
    med = lambda runs, k: statistics.median(r[k] for r in runs)  # noqa: E731
    raw_tps, eng_tps = med(raw_runs, "decode_tps"), med(eng_runs, "decode_tps")
    return {
        "n_ctx": args.ctx, "prompt_tokens": len(prompt), "gen_tokens": args.tokens, "threads": eng.n_threads,
        # headline: interleaved segments, same process, same context position
        "raw_decode_tps": round(inter["raw_tps"], 2), "engine_stream_tps": round(inter["engine_tps"], 2),
        "ratio": round(inter["engine_tps"] / inter["raw_tps"], 3),
        "ratio_segment_median": round(statistics.median(inter["pair_ratios"]), 3),
        "interleaved_tokens_each": total, "interleaved_prompt_tokens": inter_prompt,
        "segment_tokens": args.segment,
        # separate cold runs (fresh model load each, ABBA order): decode and prefill, one minute apart
        "cold_runs_ratio_of_medians": round(eng_tps / raw_tps, 3),
        "raw_decode_tps_runs": [round(r["decode_tps"], 2) for r in raw_runs],
        "engine_stream_tps_runs": [round(r["decode_tps"], 2) for r in eng_runs],
        "raw_prefill_tps": round(med(raw_runs, "prefill_tps"), 1),
        "engine_prefill_tps": round(med(eng_runs, "prefill_tps"), 1),
        "ttft_cold_s": round(cold["ttft_s"], 3),
        "ttft_reused_prefix_s": round(reuse_q["ttft_s"], 3),
        "reused_prefix_tokens": reuse_q["reused"], "reused_prefix_evaluated": reuse_q["evaluated"],
        "ttft_system_prefix_only_s": round(reuse_sys["ttft_s"], 3),
        "system_prefix_reused_tokens": reuse_sys["reused"],
    }


def worker_raw_default_openmp(path: Path, args) -> dict:
    """Raw loop with llama.cpp's default OpenMP wait policy (long spinning), for comparison.

    The engine sets GOMP_SPINCOUNT=1000; this measures the raw loop without
    that, so the ratio is not flattered on a quiet machine.
    """
    from neoc_assistant import runtime
    from neoc_assistant.generate.engine import GenerationEngine

    runtime._tune_openmp_spin = lambda: None  # keep the library default
    os.environ.pop("OMP_WAIT_POLICY", None)
    os.environ.pop("GOMP_SPINCOUNT", None)
    eng = GenerationEngine(_settings(path, args, pool_size=1).generation)
    target = args.ctx - args.tokens - 64
    msgs = _fit_messages(eng, target, seed=1, question="What is the procedure for opening a shelter?")
    prompt = eng.prompt_tokens(msgs)
    runs = [raw_decode(path, prompt, args.tokens, args.ctx, eng.n_threads) for _ in range(min(args.reps, 3))]
    eng.close()
    return {"raw_default_openmp_decode_tps": round(statistics.median(r["decode_tps"] for r in runs), 2),
            "raw_default_openmp_runs": [round(r["decode_tps"], 2) for r in runs],
            "raw_default_openmp_prefill_tps": round(statistics.median(r["prefill_tps"] for r in runs), 1)}


def worker_rss(path: Path, args, concurrency: int) -> dict:
    from neoc_assistant.generate.engine import GenerationEngine

    base_rss = peak_rss_mb()
    eng = GenerationEngine(_settings(path, args, pool_size=concurrency, pool_max_size=max(4, concurrency)).generation)
    target = args.ctx - args.rss_tokens - 64
    msgs = [_fit_messages(eng, target, seed=10 + i, question=f"Question {i} about the flood response?")
            for i in range(concurrency)]
    errors: list[BaseException] = []
    gen: list[int] = []
    barrier = threading.Barrier(concurrency)

    def run(i):
        try:
            barrier.wait()
            stats: dict = {}
            for _ in eng.stream(msgs[i], max_tokens=args.rss_tokens, stats=stats):
                pass
            gen.append(stats["generated_tokens"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    stats = eng.pool_stats()
    eng.close()
    if errors:
        raise errors[0]
    return {"concurrency": concurrency, "peak_rss_mb": round(peak_rss_mb(), 1),
            "python_baseline_rss_mb": round(base_rss, 1), "contexts_created": stats["created"],
            "aggregate_tps": round(sum(gen) / elapsed, 2), "n_ctx": args.ctx}


# ---------------------------------------------------------------- driver
def run_worker(kind: str, key: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--models", key, "--tokens", str(args.tokens),
           "--ctx", str(args.ctx), "--reps", str(args.reps), "--out-dir", str(args.out_dir),
           "--segment", str(args.segment), "--cold-reps", str(args.cold_reps),
           "--rss-tokens", str(args.rss_tokens), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {kind} for {key} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="0.5b,1.5b", help="comma list of 0.5b,1.5b")
    ap.add_argument("--tokens", type=int, default=128, help="tokens generated per speed run")
    ap.add_argument("--rss-tokens", type=int, default=32, help="tokens per request in the RSS runs")
    ap.add_argument("--ctx", type=int, default=1024, help="context size (prompt fills most of it)")
    ap.add_argument("--reps", type=int, default=3,
                    help="interleaved decode covers reps x tokens tokens on each side")
    ap.add_argument("--segment", type=int, default=16, help="tokens per interleaved segment")
    ap.add_argument("--cold-reps", type=int, default=2, help="separate cold raw/engine runs (prefill, TTFT)")
    ap.add_argument("--threads", type=int, default=0, help="0 = physical cores")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "bench-output")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-default-openmp", action="store_true",
                    help="skip the extra raw run with llama.cpp's default (spinning) OpenMP wait policy")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    for k in keys:
        if k not in PRESET:
            ap.error(f"unknown model {k!r}; choose from {', '.join(PRESET)}")

    if args.worker:
        path = model_path(args.out_dir, keys[0])
        if args.worker == "speed":
            out = worker_speed(path, args)
        elif args.worker == "rawdefault":
            out = worker_raw_default_openmp(path, args)
        else:
            out = worker_rss(path, args, int(args.worker.removeprefix("rss")))
        print(json.dumps(out))
        return 0

    import psutil

    from neoc_assistant.runtime import physical_cores

    results: dict = {"machine": {"physical_cores": physical_cores(), "logical_cpus": os.cpu_count(),
                                 "ram_gb": round(psutil.virtual_memory().total / 1e9, 1),
                                 "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
                     "models": {}}
    for key in keys:
        path = ensure_model(args.out_dir, key)
        print(f"== {key}-shape model {path.name} ({path.stat().st_size / 1e6:.0f} MB)", file=sys.stderr, flush=True)
        entry = {"file_mb": round(path.stat().st_size / 1e6, 1)}
        entry.update(run_worker("speed", key, args))
        if not args.skip_default_openmp:
            entry.update(run_worker("rawdefault", key, args))
            entry["ratio_vs_default_openmp_raw"] = round(
                entry["engine_stream_tps"] / entry["raw_default_openmp_decode_tps"], 3)
        print(f"  raw decode {entry['raw_decode_tps']} tok/s | engine stream {entry['engine_stream_tps']} tok/s "
              f"| ratio {entry['ratio']} (segment median {entry['ratio_segment_median']}) | prefill {entry['engine_prefill_tps']} tok/s | ttft cold "
              f"{entry['ttft_cold_s']}s, reused prefix {entry['ttft_reused_prefix_s']}s, system-only "
              f"{entry['ttft_system_prefix_only_s']}s", flush=True)
        if not args.skip_rss:
            for n in (1, 4):
                r = run_worker(f"rss{n}", key, args)
                entry[f"peak_rss_mb_{n}_concurrent"] = r["peak_rss_mb"]
                entry[f"aggregate_tps_{n}_concurrent"] = r["aggregate_tps"]
                print(f"  peak RSS with {n} concurrent request(s): {r['peak_rss_mb']} MB "
                      f"({r['contexts_created']} contexts, {r['aggregate_tps']} tok/s total incl. prefill)", flush=True)
        results["models"][key] = entry
    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    targets = {}
    for key, e in results["models"].items():
        targets[f"{key}_ratio_ge_0.9"] = min(e["ratio"], e.get("ratio_vs_default_openmp_raw", e["ratio"])) >= 0.9
    if "1.5b" in results["models"] and "peak_rss_mb_4_concurrent" in results["models"]["1.5b"]:
        targets["1.5b_peak_rss_4_lt_2048mb"] = results["models"]["1.5b"]["peak_rss_mb_4_concurrent"] < 2048
    results["targets_met"] = targets
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
