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
* ``_loadgen_report.py`` turns the records into the JSON report
  (``build_report``) and the PNG (``plot_latency``).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Protocol

import psutil

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

    def claim() -> float | None:
        """The start time of the next request, or None once the run is over (the deadline is
        checked at the same instant the start is taken, so no request starts after it)."""
        nonlocal sent
        with lock:
            now = time.perf_counter()
            if stop.is_set():
                return None
            if now >= deadline:
                stop.set()
                return None
            if max_requests is not None and sent >= max_requests:
                stop.set()
                return None
            sent += 1
            if max_requests is not None and sent >= max_requests:
                stop.set()  # wake thinking users now; this last request still runs
            return now

    def user(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        if ramp_up_seconds > 0 and stop.wait(rng.uniform(0, ramp_up_seconds)):
            return
        while (start := claim()) is not None:
            question = mix.draw()
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
