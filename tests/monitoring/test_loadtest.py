"""The load tester itself, driven against a stand-in service (in process and over loopback HTTP).

These tests are about the load-test machinery - concurrency, bounds, the question
mix, error accounting, the report and the plot - so a fake service is the right
target here; the real assistant is load-tested by running scripts/loadtest.py.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from neoc_assistant.errors import BusyError, InputError
from tests.conftest import DATA_DIR, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import _loadgen_report  # noqa: E402
import loadgen  # noqa: E402  (scripts/loadgen.py: a development tool, not part of the package)

QUESTIONS = DATA_DIR / "loadtest_questions.jsonl"


class FakeAnswer:
    def __init__(self, data: dict):
        self.data = data

    def to_json(self) -> dict:
        return self.data


class FakeAssistant:
    """First sight of a text: a slow extractive answer; later: a fast L1 hit. 'busy' texts raise BusyError."""

    def __init__(self, slow=0.02, fast=0.001, busy_texts=()):
        self.slow, self.fast = slow, fast
        self.busy_texts = set(busy_texts)
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.calls = 0

    def ask(self, question: str):
        with self.lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            first = question not in self.seen
            self.seen.add(question)
        try:
            if question in self.busy_texts:
                time.sleep(self.fast)
                raise BusyError("all model contexts busy")
            time.sleep(self.slow if first else self.fast)
            return FakeAnswer({"answer": "x", "mode": "extractive", "cached": not first,
                               "cache_tier": None if first else "l1",
                               "timings_ms": {"retrieve": 15.0, "total": 20.0} if first else {"cache": 0.5, "total": 1.0},
                               "tokens": {"prompt": 0, "completion": 0}})
        finally:
            with self.lock:
                self.active -= 1


@pytest.fixture(scope="module")
def questions():
    return loadgen.load_questions(QUESTIONS)


def test_question_file_is_built_from_the_kb_sets(questions):
    rows = loadgen.build_question_set(DATA_DIR / "kb_questions.jsonl", DATA_DIR / "kb_paraphrases.jsonl")
    committed = [json.loads(line) for line in QUESTIONS.read_text().splitlines()]
    assert committed == rows  # the file is in sync with its generator
    kinds = Counter(q.kind for q in questions)
    assert kinds["repeat"] >= 20 and kinds["paraphrase"] >= 15 and kinds["new"] >= 40
    repeat_ids = {q.id for q in questions if q.kind == "repeat"}
    assert all(q.of in repeat_ids for q in questions if q.kind == "paraphrase")
    assert len({q.text for q in questions}) == len(questions)


def test_mix_ratio_and_new_without_replacement(questions):
    mix = loadgen.QuestionMix(questions, repeat_ratio=0.8, paraphrase_share=0.25, seed=1)
    draws = [mix.draw() for _ in range(4000)]
    kinds = Counter(q.kind for q in draws)
    assert 0.77 < (kinds["repeat"] + kinds["paraphrase"]) / 4000 < 0.83
    assert 0.22 < kinds["paraphrase"] / (kinds["repeat"] + kinds["paraphrase"]) < 0.28

    only_new = loadgen.QuestionMix(questions, repeat_ratio=0.0, seed=2)
    n_new = sum(q.kind == "new" for q in questions)
    first = [only_new.draw() for _ in range(n_new)]
    assert len({q.id for q in first}) == n_new and only_new.new_recycled == 0  # each new question once
    assert all(q.kind == "new" for q in first)
    assert only_new.draw().kind == "new-recycled" and only_new.new_recycled == 1
    with pytest.raises(ValueError):
        loadgen.QuestionMix([q for q in questions if q.kind == "new"], repeat_ratio=0.5)


def test_run_is_bounded_by_requests_and_concurrent(questions):
    fake = FakeAssistant()
    busy = next(q.text for q in questions if q.kind == "repeat")
    fake.busy_texts = {busy}
    mix = loadgen.QuestionMix(questions, repeat_ratio=0.8, seed=3)
    result = loadgen.run_load(loadgen.InProcessTarget(fake), mix, users=8, max_requests=200, think_seconds=0.005,
                              seed=3)
    assert len(result.records) == 200 == result.sent == fake.calls
    assert result.stopped_by == "requests"
    assert fake.max_active >= 4  # users really ran concurrently
    assert {r.user for r in result.records} == set(range(8))
    report = _loadgen_report.build_report(result, {"mode": "in-process", "users": 8})
    n_busy = sum(r.outcome == "error:BusyError" for r in result.records)
    assert n_busy > 0 and report["errors_by_kind"] == {"BusyError": n_busy} and report["errors"] == n_busy
    ok = [r for r in result.records if not r.outcome.startswith("error")]
    hits = sum(r.outcome == "cached_l1" for r in ok)
    assert report["cache_hit_rate"] == pytest.approx(round(hits / len(ok), 4))
    assert report["cacheable_hit_rate"] == 1.0  # the fake never answers "llm": every cacheable answer hit
    assert report["outcomes"]["extractive"] == len(fake.seen) - (1 if busy in fake.seen else 0)
    # slow first answers (~20 ms) vs fast hits (~1 ms) show up in the percentiles
    assert report["latency_ms"]["p99"] >= 15 and report["latency_ms"]["p50"] < report["latency_ms"]["p99"]
    assert report["server_stage_ms"]["total"]["n"] == len(ok)
    assert report["by_kind"]["new"]["hit_rate"] < report["by_kind"]["repeat"]["hit_rate"]
    assert report["throughput_rps"] > 0 and report["resources"]["peak_rss_bytes"]["loadtest"] > 10 * 2**20
    line = _loadgen_report.summary_line(report)
    assert line["requests"] == 200 and line["errors"] == n_busy and json.dumps(line)


def test_run_is_bounded_by_duration(questions):
    fake = FakeAssistant(slow=0.01, fast=0.01)
    mix = loadgen.QuestionMix(questions, seed=4)
    t0 = time.perf_counter()
    result = loadgen.run_load(loadgen.InProcessTarget(fake), mix, users=4, duration_seconds=0.6, think_seconds=0.05)
    elapsed = time.perf_counter() - t0
    assert 0.55 < elapsed < 2.0
    assert result.stopped_by == "duration" and 10 < len(result.records) < 200
    assert max(r.start for r in result.records) <= 0.6  # starts are rounded to 0.1 ms


def test_warm_primes_the_hot_set(questions):
    fake = FakeAssistant(slow=0.0, fast=0.0)
    mix = loadgen.QuestionMix(questions, repeat_ratio=1.0, paraphrase_share=0.0, seed=5)
    info = loadgen.warm(loadgen.InProcessTarget(fake), mix.warm_set())
    assert info["questions"] == sum(q.kind == "repeat" for q in questions)
    result = loadgen.run_load(loadgen.InProcessTarget(fake), mix, users=3, max_requests=60, think_seconds=0)
    assert all(r.outcome == "cached_l1" for r in result.records)  # every repeat was pre-warmed


class _AskHandler(http.server.BaseHTTPRequestHandler):
    fake = FakeAssistant(slow=0.005, fast=0.001)

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/api/ask":
            self.send_error(404)
            return
        try:
            data, status = self.fake.ask(body["question"]).to_json(), 200
        except BusyError as exc:
            data, status = {"error": type(exc).__name__, "message": str(exc)}, 503  # serve/app.py's shape
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AskHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _script():
    spec = importlib.util.spec_from_file_location("loadtest_script", REPO_ROOT / "scripts" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_url_mode_end_to_end(server, tmp_path, capsys, questions):
    busy = next(q.text for q in questions if q.kind == "paraphrase")
    _AskHandler.fake.busy_texts = {busy}
    url = f"http://127.0.0.1:{server.server_address[1]}"
    out = tmp_path / "out"
    rc = _script().main(["--url", url, "--users", "6", "--requests", "120", "--think", "0.01", "--warm",
                         "--paraphrase-share", "0.5", "--out", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])  # the last line is the JSON summary
    assert summary["requests"] == 120 and summary["mode"] == "url" and summary["users"] == 6
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]
    report = json.loads((out / "report.json").read_text())
    assert report["requests"] == 120 and report["warm"]["questions"] == 30
    assert report["errors_by_kind"].get("BusyError", 0) == summary["errors"] > 0
    assert report["resources"]["peak_rss_bytes"]["server"] > 0  # found by port (same process here)
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "requests.jsonl").read_text().splitlines()) == 120


def test_url_mode_refuses_non_loopback(capsys):
    with pytest.raises(InputError):
        loadgen.HttpTarget("http://192.168.1.10:7860")
    rc = _script().main(["--url", "http://example.org:7860", "--requests", "1"])
    assert rc == 2 and "loopback" in capsys.readouterr().err
