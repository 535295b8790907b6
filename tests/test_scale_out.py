"""Scale-out on real engines: two ``serve`` instances sharing a Redis cache, a Chroma server and an LLM server.

Every service is real and started here on free 127.0.0.1 ports, stopped after:
Debian's ``redis-server``, ``chroma run``, ``llama_cpp.server`` with the real
SmolLM2-135M GGUF, and two ``python -m neoc_assistant serve`` instances (A and
B) with ``NEOC_LLM_URLS`` (a dead server first, then the real one),
``NEOC_REDIS_URL`` and ``NEOC_CHROMA_URL``. The knowledge base is ingested
through A's settings by the CLI, before the instances start.

In order (each test leaves the cluster as the next one expects it):
1. Stop closes the HTTP stream at once (the backend, against the real server);
2. a question answered through A is served to B from the shared cache;
3. a changed document ingested through A is in B's very next answer, with the
   same kb_version on both and no answer cached before the change; a file whose
   publication fails half-way is in neither store;
4. the LLM server stopped: answers are the documents' quotes, labelled;
5. Redis stopped: answers keep flowing, with a warning and a metric.

About 2-4 minutes on 2 cores (two instance start-ups and one ingest).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from browser_support import ServerProcess, clean_environ, http_get, server_env
from generate_fixtures import real_model
from services import chroma_server, free_port, llm_server, redis_server

from conftest import KB_DIR, REPO_ROOT

pytestmark = [pytest.mark.slow]

CHANGED_DOC = "10-shelter-management.md"
NEW_FACT = ("\n\n## Generator fuel reserve\n\nEvery shelter keeps a generator fuel reserve of 45 litres of diesel, "
            "checked by the shelter manager every Tuesday.\n")
NEW_QUESTION = "How much generator fuel reserve does each shelter keep?"


def post_json(url: str, body: dict, timeout: float = 300) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get_json(url: str) -> dict:
    return json.loads(http_get(url, timeout=30)[1])


def metric(base: str, name: str, labels: str = "") -> float | None:
    text = http_get(base + "/metrics")[1].decode()
    for line in text.splitlines():
        if line.startswith(name + labels + " "):
            return float(line.split()[-1])
    return None


class Cluster:
    def __init__(self, root: Path):
        self.root = root
        self.logs = root / "logs"
        self.redis_port, self.chroma_port, self.llm_port, self.dead_port = (free_port() for _ in range(4))
        self.redis = redis_server(self.redis_port, root, self.logs / "redis.log")
        self.chroma = chroma_server(self.chroma_port, root / "chroma", self.logs / "chroma.log")
        self.llm = llm_server(self.llm_port, real_model("smollm2-135m"), self.logs / "llm.log")
        self.instances: dict[str, ServerProcess] = {}

    def env(self, name: str, **extra: str) -> dict[str, str]:
        base = self.root / name
        (base / "kb").mkdir(parents=True, exist_ok=True)
        return server_env(
            base / "data", base / "kb", base / "models",
            NEOC_LLM_URLS=f"http://127.0.0.1:{self.dead_port}/v1,http://127.0.0.1:{self.llm_port}/v1",
            NEOC_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            NEOC_CHROMA_URL=f"http://127.0.0.1:{self.chroma_port}",
            NEOC_N_CTX="2048", NEOC_MAX_TOKENS="200", NEOC_LLM_RETRY_SECONDS="600", **extra)

    def cli(self, name: str, *args: str) -> dict:
        proc = subprocess.run([sys.executable, "-m", "neoc_assistant", *args], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=600, env={**clean_environ(), **self.env(name)})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    def url(self, name: str) -> str:
        return self.instances[name].url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("scale"))
    started = []
    try:
        for service in (cluster.redis, cluster.chroma, cluster.llm):
            started.append(service.start())
        shutil.copytree(KB_DIR, cluster.root / "a" / "kb")
        summary = cluster.cli("a", "ingest", "--json")
        assert summary["failed"] == 0 and summary["added"] >= 10, summary
        # B only hears of changes from Redis (or at start): a long interval proves the announcement works
        envs = {"a": cluster.env("a"), "b": cluster.env("b", NEOC_STORE__SYNC_INTERVAL_SECONDS="3600")}
        for name, env in envs.items():
            cluster.instances[name] = ServerProcess(env, log_path=cluster.logs / f"serve-{name}.log")
        errors: list[BaseException] = []

        def start(server: ServerProcess) -> None:
            try:
                server.start()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(s,)) for s in cluster.instances.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        started.extend(cluster.instances.values())
        if errors:
            raise errors[0]
        yield cluster
    finally:
        for service in reversed(started):
            service.stop()


def test_stop_closes_the_server_stream_at_once(cluster):
    from neoc_assistant.generate.openai_backend import OpenAIBackend
    from neoc_assistant.settings import Settings

    backend = OpenAIBackend(Settings(llm_urls=f"http://127.0.0.1:{cluster.llm_port}", max_tokens=400).generation)
    messages = [{"role": "user", "content": "Write a long story about a flood."}]
    for delay in (0.05, None):  # while the server reads the prompt; while it streams
        cancel = threading.Event()
        stream = backend.stream(messages, cancel=cancel)
        if delay is None:
            next(iter(stream))
        else:
            time.sleep(delay)
        t0 = time.perf_counter()
        cancel.set()
        rest = list(stream)
        assert time.perf_counter() - t0 < 0.5 and len(rest) <= 1, (delay, rest)
        assert stream.stats["finish_reason"] == "cancelled"
    assert backend.pool_stats()["in_use"] == 0
    # the server is free again at once: a new answer streams
    assert "".join(backend.stream(messages, max_tokens=5))


def test_answer_through_a_is_served_to_b_from_the_shared_cache(cluster):
    from generate_fixtures import SMOLLM2_ANSWERED_QUESTIONS

    for question in SMOLLM2_ANSWERED_QUESTIONS:  # the first the model answers itself (quotes are not cached)
        status, first = post_json(cluster.url("a") + "/api/ask", {"question": question})
        assert status == 200 and not first["cached"], first
        if first["mode"] == "llm" and first["finish_reason"] == "stop":  # cached only if it ran to its end
            break
    assert first["mode"] == "llm", first
    cluster.cached_question = question
    status, second = post_json(cluster.url("b") + "/api/ask", {"question": question})
    assert status == 200 and second["cached"] and second["cache_tier"] == "l2", second
    assert second["answer"] == first["answer"]
    servers = get_json(cluster.url("a") + "/health")["checks"]["model"]["servers"]
    assert [s["up"] for s in servers] == [False, True]  # the dead one is marked down, not retried per question
    assert metric(cluster.url("a"), "neoc_generation_backend_info", '{backend="openai"}') == 1.0


def test_ingest_through_a_is_in_b_next_answer_with_the_same_version(cluster):
    doc = cluster.root / "a" / "kb" / CHANGED_DOC
    doc.write_text(doc.read_text(encoding="utf-8") + NEW_FACT, encoding="utf-8")
    summary = cluster.cli("a", "ingest", "--json")
    assert summary["updated"] == 1 and summary["failed"] == 0, summary

    t0 = time.perf_counter()
    status, answer = post_json(cluster.url("b") + "/api/ask", {"question": NEW_QUESTION})
    assert status == 200, answer
    assert any(CHANGED_DOC == s["source"] and "45 litres" in s["text"] for s in answer["sources"]), answer
    print(f"\nB answered from the new document {time.perf_counter() - t0:.1f} s after the ingest ended")
    status, again = post_json(cluster.url("b") + "/api/ask", {"question": cluster.cached_question})
    assert status == 200 and not again["cached"], "B served an answer cached before the change"

    versions = {name: get_json(cluster.url(name) + "/health")["checks"]["store"]["kb_version"] for name in "ab"}
    assert versions["a"] == versions["b"] == summary["kb_version"], versions
    # B's own BM25 index has the new chunk, and the server's vectors find it
    from neoc_assistant.settings import Settings
    from neoc_assistant.store.chroma_server import ChromaServerStore
    from neoc_assistant.store.embeddings import Embedder
    from neoc_assistant.store.manifest import Manifest

    b_manifest = Manifest(cluster.root / "b" / "data" / "manifest.sqlite3")
    lexical = b_manifest.lexical_search('"generator" AND "fuel" AND "reserve"', 5)
    vectors = ChromaServerStore(Settings().store, f"http://127.0.0.1:{cluster.chroma_port}")
    vector = Embedder(Settings().embedding).embed_query_vector(NEW_QUESTION)
    nearest = [h.chunk_id for h in vectors.query(vector, 5)]
    texts = b_manifest.chunks_by_id([lexical[0][0], *nearest])
    assert "45 litres" in texts[lexical[0][0]].text
    assert any("45 litres" in texts[c].text for c in nearest if c in texts)


def test_a_file_failing_mid_publish_is_in_neither_store(cluster, embedder, tmp_path):
    from neoc_assistant.errors import StoreUnavailableError
    from neoc_assistant.ingest.pipeline import Ingestor
    from neoc_assistant.settings import Settings
    from neoc_assistant.store.chroma_server import ChromaCatalog, ChromaServerStore
    from neoc_assistant.store.replica import ReplicatedManifest

    url = f"http://127.0.0.1:{cluster.chroma_port}"
    store = Settings(collection_name="atomicity", chroma_url=url).store  # apart from A and B's knowledge base

    class NetworkDropsAfterTheChunks(ChromaCatalog):
        def _upsert(self, ids, metadatas, documents=None):
            if ids[0].startswith("doc:"):
                raise StoreUnavailableError("the network went away")
            super()._upsert(ids, metadatas, documents)

    def ingestor(catalog_class):
        manifest = ReplicatedManifest(tmp_path / "manifest.sqlite3", catalog_class(store, url), interval_seconds=0)
        return Ingestor(store, tmp_path, tmp_path / "docs", manifest, ChromaServerStore(store, url), embedder), manifest

    doc = tmp_path / "docs" / "pumps.md"
    doc.parent.mkdir()
    doc.write_text("# Pumps\n\nThe district keeps four dewatering pumps at the fire station.\n", encoding="utf-8")
    failing, manifest = ingestor(NetworkDropsAfterTheChunks)
    with pytest.raises(StoreUnavailableError):
        failing.ingest([doc.parent])
    catalog, vectors = ChromaCatalog(store, url), ChromaServerStore(store, url)
    assert catalog.files() == [] and manifest.file("pumps.md") is None and manifest.counts()["chunks"] == 0
    assert vectors.count() > 0  # the vectors were written before the failure ...
    working, _ = ingestor(ChromaCatalog)
    (tmp_path / "empty").mkdir()
    working.ingest([tmp_path / "empty"])
    assert vectors.count() == 0  # ... and the next ingest removed them, as after a crash on a laptop


def test_llm_server_stopped_answers_fall_back_to_quotes(cluster):
    cluster.llm.stop()
    t0 = time.perf_counter()
    status, answer = post_json(cluster.url("a") + "/api/ask", {"question": "What are the EOC activation levels?"})
    assert status == 200, answer
    assert answer["mode"] == "extractive" and "language-model server is not answering" in answer["notice"], answer
    assert answer["sources"] and time.perf_counter() - t0 < 30
    model = get_json(cluster.url("a") + "/health")["checks"]["model"]
    assert model["degraded"] and not any(s["up"] for s in model["servers"]), model


def test_redis_stopped_answers_keep_flowing_with_a_warning_and_a_metric(cluster):
    cluster.redis.stop()
    base = cluster.url("b")
    for question in ("Who chairs the EOC at activation level 1?", "What are the EOC activation levels?"):
        status, answer = post_json(base + "/api/ask", {"question": question})
        assert status == 200 and answer["answer"], answer
    assert metric(base, "neoc_cache_shared_tier_up") == 0.0
    assert (metric(base, "neoc_cache_events_total", '{event="l2_down"}') or 0) >= 1
    assert get_json(base + "/health")["checks"]["cache"]["degraded"]
    assert "Redis at redis://127.0.0.1" in cluster.instances["b"].log_path.read_text(errors="replace")
