"""One data directory, several processes: a running server and CLI ingests beside it.

The "server" is a real assistant in this process behind the real FastAPI app;
the other writers are real ``python -m neoc_assistant ingest`` processes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from neoc_assistant.serve.app import create_app

from ingest_fixtures import run_cli

pytestmark = pytest.mark.slow


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def vector_sources(container, query: str) -> set[str]:
    """The sources the *vector* half of search finds (what went stale before the fix)."""
    hits = container.vectors.query(container.embedder.embed_query_vector(query), 10)
    chunks = container.manifest.chunks_by_id([h.chunk_id for h in hits])
    names = container.manifest.sources_of(c.doc_hash for c in chunks.values())
    return {s for c in chunks.values() for s in names.get(c.doc_hash, [])}


def test_a_cli_ingest_while_the_server_runs_is_seen_by_the_server_at_once(container):
    """Issue 12.7: /api/ask returned 500 (chromadb "Error finding id") for questions touching a
    document a CLI ingest had added, and its vectors stayed invisible until a restart."""
    kb = container.settings.paths.kb_dir
    write(kb / "water.md", "# Water\n\nEach person needs at least 15 litres of water per day.\n")
    assistant = container.assistant
    assistant.ingest()
    app = create_app(assistant, concurrency_limit=1, mode="extractive")
    env = {"NEOC_KB_DIR": str(kb)}
    with TestClient(app) as client:
        assert client.post("/api/ask", json={"question": "How much water per person per day?"}).status_code == 200
        before = assistant.kb_version()

        write(kb / "generator.md", "# Generator\n\nThe Banepa relay generator is refuelled every 18 hours "
                                   "with 40 litres of diesel.\n")
        proc = run_cli(["ingest", "--json", "--no-progress"], container.settings.paths.data_dir, **env)
        assert proc.returncode == 0, proc.stderr[-2000:]

        resp = client.post("/api/ask", json={"question": "How often is the Banepa relay generator refuelled?"})
        assert resp.status_code == 200, resp.text
        assert any(s["source"] == "generator.md" for s in resp.json()["sources"])
        assert assistant.kb_version() != before
        assert "generator.md" in vector_sources(container, "Banepa relay generator diesel refuelling")

        proc = run_cli(["ingest", "--delete", "water.md", "--json"], container.settings.paths.data_dir, **env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        resp = client.post("/api/ask", json={"question": "How much water per person per day?"})
        assert resp.status_code == 200
        assert all(s["source"] != "water.md" for s in resp.json()["sources"])


def test_the_server_writing_after_a_cli_ingest_keeps_the_cli_s_vectors(container):
    """The server's own (UI) ingest must not write back a stale copy of the vector index."""
    kb = container.settings.paths.kb_dir
    write(kb / "water.md", "# Water\n\nEach person needs at least 15 litres of water per day.\n")
    assistant = container.assistant
    assistant.ingest()
    assistant.search("water per person")  # the server's vector index is open
    data_dir = container.settings.paths.data_dir
    write(kb / "radio.md", "# Radio\n\nDistrict EOCs check in by VHF radio at 07:30 and 19:30 daily.\n")
    assert run_cli(["ingest", "--json"], data_dir, NEOC_KB_DIR=str(kb)).returncode == 0
    write(kb / "uploads" / "boats.md", "# Boats\n\nFourteen inflatable rescue boats are stored at Sunsari.\n")
    assistant.ingest([kb], prune=False)  # what the UI's upload does
    proc = run_cli(["search", "VHF radio check-in times", "--json", "--k", "1"], data_dir, NEOC_KB_DIR=str(kb))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)[0]["source"] == "radio.md"
    health = assistant.health()["checks"]["store"]
    assert health["vectors"] == health["chunks"] == 3
