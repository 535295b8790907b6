"""Load-test machinery (used by ``scripts/loadtest.py``): simulated duty officers asking questions.

A development tool, not part of the installed assistant (it lives in
``scripts/`` and needs the ``[dev]`` extra's matplotlib for its plot).

* ``QuestionMix`` draws questions: with probability ``repeat_ratio`` a
  recurring one (an exact repeat from the hot set, or - ``paraphrase_share`` of
  those - a reworded version of one), otherwise a question not asked before
  (drawn without replacement; when the new pool runs out it is reshuffled and
  the recycled draws are labelled ``new-recycled`` and reported apart, because
  they then behave like repeats).
* ``run_load`` runs ``users`` threads, each asking, then thinking (exponential
  think time with mean ``think_seconds``), until ``max_requests`` were sent or
  ``duration_seconds`` passed. A sampler thread records RSS/CPU of this process
  and of the server process (URL mode) for peak memory.
* Targets: ``InProcessTarget`` (an ``Assistant``) and ``HttpTarget`` (``POST
  {url}/api/ask`` on a loopback server). Anything with ``ask(question) ->
  dict`` (the ``Answer.to_json()`` shape) works, which is how the unit tests
  drive it with a stand-in.
* ``build_report`` turns the records into the JSON report; ``plot_latency``
  writes the PNG.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import psutil

from neoc_assistant.figures import latency_summary, percentile
from neoc_assistant.monitoring.remote import opener, require_loopback
from neoc_assistant.monitoring.window import outcome_of

KINDS = ("repeat", "paraphrase", "new")
#: a "new" question drawn again after the new pool ran out (reported apart: it is really a repeat)
RECYCLED = "new-recycled"


# --------------------------------------------------------------------------
# questions
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    id: str
    text: str
    kind: str  # repeat | paraphrase | new
    of: str | None = None  # paraphrase_of: id of the repeat question it rewords


def load_questions(path: Path) -> list[Question]:
    questions = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        kind = item.get("kind", "new")
        if kind not in KINDS:
            raise ValueError(f"{path}:{number}: kind must be one of {KINDS}, not {kind!r}")
        questions.append(Question(str(item["id"]), str(item["text"]), kind, item.get("of")))
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


# Clearly outside an EOC's documents: these should come back "not-found".
OUT_OF_SCOPE = [
    "What is the boiling point of mercury in Fahrenheit?",
    "Who won the football world cup in 2010?",
    "How do I reset the password on my home wifi router?",
    "What is a good recipe for chocolate chip cookies?",
    "How many moons does Jupiter have?",
    "What is the exchange rate between the euro and the yen today?",
    "Which programming language should I learn first?",
    "What are the rules of cricket's duckworth-lewis method?",
    "How long should I boil an egg for a soft yolk?",
    "Who painted the ceiling of the Sistine Chapel?",
    "What is the best fertiliser for tomato plants?",
    "How do I change the oil in a motorbike?",
]


def build_question_set(kb_questions: Path, paraphrases: Path, extra_hot: int = 10) -> list[dict]:
    """The load-test question file from the KB question set and its paraphrases.

    repeat = the questions that have paraphrases plus ``extra_hot`` more (the hot set
    officers keep asking); paraphrase = their rewordings; new = every other KB
    question plus out-of-scope questions (expected "not-found").
    """
    kb = [json.loads(line) for line in Path(kb_questions).read_text(encoding="utf-8").splitlines() if line.strip()]
    para = [json.loads(line) for line in Path(paraphrases).read_text(encoding="utf-8").splitlines() if line.strip()]
    hot = {p["paraphrase_of"] for p in para}
    others = [q["id"] for q in kb if q["id"] not in hot]
    step = max(1, len(others) // max(1, extra_hot))
    hot |= set(others[::step][:extra_hot])
    rows = []
    for q in kb:
        kind = "repeat" if q["id"] in hot else "new"
        rows.append({"id": q["id"], "text": q["text"], "kind": kind, "source": q.get("source")})
    for p in para:
        rows.append({"id": p["id"], "text": p["text"], "kind": "paraphrase", "of": p["paraphrase_of"],
                     "source": p.get("source")})
    for i, text in enumerate(OUT_OF_SCOPE, start=1):
        rows.append({"id": f"oos-{i:02d}", "text": text, "kind": "new", "source": None})
    return rows


class QuestionMix:
    def __init__(self, questions: list[Question], repeat_ratio: float = 0.8, paraphrase_share: float = 0.25,
                 seed: int = 0):
        if not 0.0 <= repeat_ratio <= 1.0:
            raise ValueError("repeat_ratio must be between 0 and 1")
        if not 0.0 <= paraphrase_share <= 1.0:
            raise ValueError("paraphrase_share must be between 0 and 1")
        self.repeats = [q for q in questions if q.kind == "repeat"]
        self.paraphrases = [q for q in questions if q.kind == "paraphrase"]
        self.new = [q for q in questions if q.kind == "new"]
        if repeat_ratio > 0 and not (self.repeats or self.paraphrases):
            raise ValueError("repeat_ratio > 0 needs 'repeat' or 'paraphrase' questions")
        if repeat_ratio < 1 and not self.new:
            raise ValueError("repeat_ratio < 1 needs 'new' questions")
        self.repeat_ratio = repeat_ratio
        self.paraphrase_share = paraphrase_share
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._new_queue: list[Question] = []
        self.new_recycled = 0
        self._new_rounds = 0

    def draw(self) -> Question:
        with self._lock:
            rng = self._rng
            if rng.random() < self.repeat_ratio:
                if self.paraphrases and (not self.repeats or rng.random() < self.paraphrase_share):
                    return rng.choice(self.paraphrases)
                return rng.choice(self.repeats)
            if not self._new_queue:
                self._new_queue = list(self.new)
                rng.shuffle(self._new_queue)
                self._new_rounds += 1
            question = self._new_queue.pop()
            if self._new_rounds > 1:
                self.new_recycled += 1
                return replace(question, kind=RECYCLED)
            return question

    def warm_set(self) -> list[Question]:
        """The hot set: asked once before the run with ``--warm`` so repeats can hit the cache."""
        return list(self.repeats)


# --------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------
class Target(Protocol):
    def ask(self, question: str) -> dict: ...


class InProcessTarget:
    """Calls ``Assistant.ask`` in this process (the same code path the UI uses)."""

    def __init__(self, assistant):
        self.assistant = assistant

    def ask(self, question: str) -> dict:
        return self.assistant.ask(question).to_json()


class RequestError(Exception):
    def __init__(self, kind: str, message: str = ""):
        super().__init__(message or kind)
        self.kind = kind


class HttpTarget:
    """``POST {url}/api/ask`` with ``{"question": ...}`` -> ``Answer.to_json()`` (loopback only)."""

    def __init__(self, url: str, timeout: float = 300.0):
        self.base = require_loopback(url)
        self.timeout = timeout
        self._opener = opener()

    def ask(self, question: str) -> dict:
        import urllib.error
        import urllib.request

        body = json.dumps({"question": question}).encode("utf-8")
        req = urllib.request.Request(self.base + "/api/ask", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            kind, message = f"http_{exc.code}", ""
            try:
                # the server answers {"error": "BusyError", "message": "..."}
                data = json.loads(exc.read().decode("utf-8"))
                name = str(data.get("error_type") or data.get("error") or "")
                if name.isidentifier():
                    kind = name
                message = str(data.get("message") or data.get("detail") or "")
            except Exception:  # noqa: BLE001 - not JSON
                pass
            raise RequestError(kind, message) from None
        except (TimeoutError, OSError) as exc:
            raise RequestError("timeout" if isinstance(exc, TimeoutError) else "connection", str(exc)) from None


def error_kind(exc: BaseException) -> str:
    return exc.kind if isinstance(exc, RequestError) else type(exc).__name__


def find_listening_pid(port: int) -> int | None:
    """Best effort: the PID listening on ``port`` (only visible for our own processes without root)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return conn.pid
    except (psutil.Error, OSError):
        return None
    return None


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------
@dataclass
class RequestRecord:
    start: float  # seconds since the run started
    latency_ms: float
    outcome: str  # llm | extractive | extractive_busy | not-found | cached_l1 | cached_l2 | error:<kind>
    kind: str  # question kind
    question_id: str
    user: int
    timings_ms: dict = field(default_factory=dict)


class ResourceSampler(threading.Thread):
    """Peak RSS / CPU of this process and (optionally) the server process."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25):
        super().__init__(name="loadtest-sampler", daemon=True)
        self.interval = interval
        self.stop_event = threading.Event()
        self.procs: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            try:
                self.procs[name] = psutil.Process(pid)
                self.procs[name].cpu_percent(None)
            except psutil.Error:
                pass
        self.peak_rss: dict[str, int] = {name: 0 for name in self.procs}
        self.cpu_samples: dict[str, list[float]] = {name: [] for name in self.procs}
        self.peak_system_percent = 0.0
        self.samples = 0

    def sample_once(self) -> None:
        for name, proc in self.procs.items():
            try:
                self.peak_rss[name] = max(self.peak_rss[name], proc.memory_info().rss)
                self.cpu_samples[name].append(proc.cpu_percent(None))
            except psutil.Error:
                continue
        self.peak_system_percent = max(self.peak_system_percent, psutil.virtual_memory().percent)
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample_once()
            self.stop_event.wait(self.interval)
        self.sample_once()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(5)

    def result(self) -> dict:
        return {
            "peak_rss_bytes": dict(self.peak_rss),
            "avg_cpu_percent": {n: round(sum(v) / len(v), 1) if v else None for n, v in self.cpu_samples.items()},
            "peak_system_memory_percent": self.peak_system_percent,
            "samples": self.samples,
        }


@dataclass
class LoadResult:
    records: list[RequestRecord]
    elapsed_seconds: float
    sent: int
    resources: dict
    new_recycled: int
    stopped_by: str  # "requests" | "duration"


def run_load(
    target: Target,
    mix: QuestionMix,
    *,
    users: int,
    max_requests: int | None = None,
    duration_seconds: float | None = None,
    think_seconds: float = 1.0,
    ramp_up_seconds: float = 0.0,
    seed: int = 0,
    pids: dict[str, int] | None = None,
    on_record: Callable[[RequestRecord], None] | None = None,
) -> LoadResult:
    """Run ``users`` concurrent simulated users until ``max_requests`` or ``duration_seconds``."""
    if users < 1:
        raise ValueError("users must be >= 1")
    if max_requests is None and duration_seconds is None:
        raise ValueError("give max_requests and/or duration_seconds")
    records: list[RequestRecord] = []
    lock = threading.Lock()
    stop = threading.Event()
    sent = 0
    t0 = time.perf_counter()
    deadline = t0 + duration_seconds if duration_seconds is not None else math.inf

    def claim() -> bool:
        nonlocal sent
        with lock:
            if stop.is_set():
                return False
            if time.perf_counter() >= deadline:
                stop.set()
                return False
            if max_requests is not None and sent >= max_requests:
                stop.set()
                return False
            sent += 1
            if max_requests is not None and sent >= max_requests:
                stop.set()  # wake thinking users now; this last request still runs
            return True

    def user(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        if ramp_up_seconds > 0 and stop.wait(rng.uniform(0, ramp_up_seconds)):
            return
        while claim():
            question = mix.draw()
            start = time.perf_counter()
            timings: dict = {}
            try:
                answer = target.ask(question.text)
                outcome = outcome_of(answer)
                timings = dict(answer.get("timings_ms") or {})
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                outcome = "error:" + error_kind(exc)
            end = time.perf_counter()
            record = RequestRecord(round(start - t0, 4), round((end - start) * 1000, 3), outcome, question.kind,
                                   question.id, index, timings)
            with lock:
                records.append(record)
            if on_record is not None:
                on_record(record)
            if think_seconds > 0:
                pause = min(rng.expovariate(1.0 / think_seconds), 4 * think_seconds)
                pause = min(pause, max(0.0, deadline - time.perf_counter()))
                if stop.wait(pause):
                    break

    sampler = ResourceSampler({"loadtest": psutil.Process().pid, **(pids or {})})
    sampler.start()
    threads = [threading.Thread(target=user, args=(i,), name=f"user-{i}", daemon=True) for i in range(users)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(30)
    elapsed = time.perf_counter() - t0
    sampler.stop()
    stopped_by = "requests" if max_requests is not None and sent >= max_requests else "duration"
    records.sort(key=lambda r: r.start)
    return LoadResult(records, elapsed, sent, sampler.result(), mix.new_recycled, stopped_by)


def warm(target: Target, questions: list[Question]) -> dict:
    """Ask each question once, sequentially; not part of the measured run."""
    t0 = time.perf_counter()
    outcomes: Counter[str] = Counter()
    for q in questions:
        try:
            outcomes[outcome_of(target.ask(q.text))] += 1
        except Exception as exc:  # noqa: BLE001
            outcomes["error:" + error_kind(exc)] += 1
    return {"questions": len(questions), "seconds": round(time.perf_counter() - t0, 2), "outcomes": dict(outcomes)}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------
def _hit_rate(records: list[RequestRecord]) -> float | None:
    answered = [r for r in records if not r.outcome.startswith("error")]
    if not answered:
        return None
    return round(sum(r.outcome.startswith("cached_") for r in answered) / len(answered), 4)


def _cacheable_hit_rate(records: list[RequestRecord]) -> float | None:
    """Hits over answers the cache could have served (only model-written answers are cached)."""
    hits = sum(r.outcome.startswith("cached_") for r in records)
    cacheable = hits + sum(r.outcome == "llm" for r in records)
    return round(hits / cacheable, 4) if cacheable else None


def build_report(result: LoadResult, config: dict) -> dict:
    records = result.records
    ok = [r for r in records if not r.outcome.startswith("error")]
    errors = Counter(r.outcome.split(":", 1)[1] for r in records if r.outcome.startswith("error"))
    stages: dict[str, list[float]] = {}
    for r in ok:
        for stage, ms in r.timings_ms.items():
            if isinstance(ms, (int, float)):
                stages.setdefault(stage, []).append(float(ms))
    elapsed = result.elapsed_seconds
    # busy span: first request start to last request end (excludes trailing think time)
    active = max((r.start + r.latency_ms / 1000.0 for r in records), default=0.0) - min(
        (r.start for r in records), default=0.0)
    report = {
        "config": config,
        "requests": len(records),
        "completed": len(ok),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "elapsed_seconds": round(elapsed, 3),
        "stopped_by": result.stopped_by,
        "active_seconds": round(active, 3),
        "throughput_rps": round(len(records) / active, 3) if active > 0 else None,
        "latency_ms": latency_summary(r.latency_ms for r in records),
        "latency_ms_ok": latency_summary(r.latency_ms for r in ok),
        "outcomes": dict(Counter(r.outcome for r in records)),
        "cache_hit_rate": _hit_rate(records),
        "cacheable_hit_rate": _cacheable_hit_rate(records),
        # answered with quotes at once because every model slot was busy (admission control)
        "degraded_share": round(sum(r.outcome == "extractive_busy" for r in ok) / len(ok), 4) if ok else None,
        "by_kind": {
            kind: {"requests": len(rs), "hit_rate": _hit_rate(rs), "latency_ms": latency_summary(r.latency_ms for r in rs)}
            for kind in (*KINDS, RECYCLED) if (rs := [r for r in records if r.kind == kind])
        },
        "by_outcome_latency_ms": {
            outcome: latency_summary(r.latency_ms for r in records if r.outcome == outcome)
            for outcome in sorted({r.outcome for r in records})
        },
        "server_stage_ms": {stage: latency_summary(values) for stage, values in stages.items()},
        "resources": result.resources,
        "new_questions_recycled": result.new_recycled,
    }
    return report


def summary_line(report: dict) -> dict:
    """The one-line summary printed last."""
    lat = report["latency_ms"]
    peak = report["resources"]["peak_rss_bytes"]
    return {
        "mode": report["config"].get("mode"),
        "users": report["config"].get("users"),
        "requests": report["requests"],
        "errors": report["errors"],
        "p50_ms": lat["p50"],
        "p95_ms": lat["p95"],
        "p99_ms": lat["p99"],
        "avg_ms": lat["avg"],
        "throughput_rps": report["throughput_rps"],
        "cache_hit_rate": report["cache_hit_rate"],
        "cacheable_hit_rate": report["cacheable_hit_rate"],
        "degraded_share": report["degraded_share"],
        "error_rate": round(report["errors"] / report["requests"], 4) if report["requests"] else None,
        "peak_rss_mb": {k: round(v / 2**20, 1) for k, v in peak.items()},
        "report": report.get("report_path"),
    }


def plot_latency(records: list[RequestRecord], path: Path, title: str = "") -> Path:
    """Latency over time (by outcome, with a rolling p95) and the latency distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    outcomes = sorted({r.outcome for r in records})
    for outcome in outcomes:
        rs = [r for r in records if r.outcome == outcome]
        ax1.scatter([r.start for r in rs], [max(r.latency_ms, 0.01) for r in rs], s=10, alpha=0.6,
                    label=f"{outcome} ({len(rs)})")
    if records:
        window = max(10, len(records) // 20)
        xs, ys = [], []
        for i in range(len(records)):
            chunk = sorted(r.latency_ms for r in records[max(0, i - window + 1): i + 1])
            xs.append(records[i].start)
            ys.append(max(percentile(chunk, 95), 0.01))
        ax1.plot(xs, ys, color="black", linewidth=1.2, label=f"rolling p95 ({window} req)")
        ax1.set_yscale("log")
        ax1.legend(fontsize=8, loc="best")
        lat = [max(r.latency_ms, 0.01) for r in records]
        lo, hi = min(lat), max(lat)
        bins = [lo * (hi / lo) ** (i / 40) for i in range(41)] if hi > lo else 20
        ax2.hist(lat, bins=bins, color="steelblue")
        ax2.set_xscale("log")
        for q, style in ((50, ":"), (95, "--"), (99, "-.")):
            value = percentile(sorted(lat), q)
            ax2.axvline(value, color="black", linestyle=style, linewidth=1, label=f"p{q} {value:.0f} ms")
        ax2.legend(fontsize=8)
    ax1.set_xlabel("seconds since start")
    ax1.set_ylabel("latency (ms, log)")
    ax1.set_title(title or "request latency")
    ax2.set_xlabel("latency (ms, log)")
    ax2.set_ylabel("requests")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def records_json(records: list[RequestRecord]) -> list[dict]:
    return [asdict(r) for r in records]
