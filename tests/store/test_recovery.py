"""A damaged store is noticed, explained and repaired: lost vectors, a corrupt manifest, a read-only data dir.

Real manifest, real Chroma, real embedding model; each scenario is what an operator
(or a disk) actually does to the data directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neoc_assistant.errors import StoreError

from conftest import REPO_ROOT
from ingest_fixtures import run_cli
from store_fixtures import corrupt_middle, ingested  # noqa: F401 - ingested: a fixture

pytestmark = pytest.mark.slow


def test_a_deleted_vector_store_is_reported_and_the_next_ingest_re_embeds_it(ingested, make_container, monkeypatch):
    """Issue 12.8: with chroma/ deleted, ingest said "unchanged", health said "re-run ingest" (which did
    nothing) and search silently fell back to keywords."""
    ingested.vectors.close()  # as the ingesting process exiting does
    shutil.rmtree(ingested.settings.paths.chroma_dir)
    fresh = make_container()  # a new process
    store = fresh.assistant.health()["checks"]["store"]
    assert store.get("degraded"), store
    assert store["vectors"] == 0 and "ingest --repair" in store["message"]
    from neoc_assistant.ingest.isolation import IsolatedParser

    monkeypatch.setattr(IsolatedParser, "load", lambda *a: pytest.fail("repair must not re-read files"))
    summary = fresh.assistant.ingest()
    assert summary.count("unchanged") == 3
    assert any("re-embedded 3 chunk" in note for note in summary.notes), summary.notes
    assert fresh.vectors.count() == fresh.manifest.counts()["chunks"] == 3
    hit = fresh.assistant.search("how many rescue boats", k=1)[0]
    assert hit.source == "boats.md" and "vector" in hit.scores
    assert not fresh.assistant.health()["checks"]["store"]["degraded"]


def test_ingest_repair_finds_drift_that_counts_do_not_show(ingested):
    """One chunk lost its vector and a stray vector took its place: same count, wrong ids."""
    vectors, manifest = ingested.vectors, ingested.manifest
    victim = sorted(manifest.chunks_by_id(vectors.ids()))[0]
    vectors.delete_ids([victim])
    stray = vectors.vectors([sorted(vectors.ids())[0]])
    vectors.upsert(["ffffffffffffffff-00000"], next(iter(stray.values()))[None, :], "f" * 32, [None])
    assert vectors.count() == manifest.counts()["chunks"]
    store = ingested.assistant.health()["checks"]["store"]
    assert store["degraded"] and store["missing_vectors"] == 1 and store["stray_vectors"] == 1
    summary = ingested.assistant.repair_store()
    assert any("re-embedded 1" in n and "removed 1" in n for n in summary.notes), summary.notes
    assert vectors.ids() == set(manifest.chunk_ids_of([d.doc_hash for d in manifest.documents()]))


def test_a_corrupt_manifest_is_unhealthy_and_every_command_says_how_to_rebuild(ingested, make_container):
    """Issue 12.9: health said "store ok", search/ask crashed with "database disk image is malformed",
    ingest said "unchanged"."""
    paths = ingested.settings.paths
    ingested.manifest.close()
    corrupt_middle(paths.manifest_path)
    fresh = make_container()
    health = fresh.assistant.health()
    assert not health["healthy"] and not health["checks"]["integrity"]["ok"]
    assert "ingest --rebuild" in health["checks"]["integrity"]["message"]
    with pytest.raises(StoreError, match="ingest --rebuild"):
        fresh.assistant.search("rescue boats")
    with pytest.raises(StoreError, match="ingest --rebuild"):
        fresh.assistant.ingest()
    proc = run_cli(["search", "rescue boats"], paths.data_dir, NEOC_KB_DIR=str(paths.kb_dir))
    assert proc.returncode == 2 and "ingest --rebuild" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(["ingest", "--rebuild", "--json"], paths.data_dir, NEOC_KB_DIR=str(paths.kb_dir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(p.name.startswith("damaged-") for p in paths.data_dir.iterdir())
    after = make_container()
    assert after.assistant.health()["checks"]["integrity"]["ok"]
    assert after.assistant.search("how many rescue boats", k=1)[0].source == "boats.md"


# Tests run as root, whom file permissions do not stop: a chmod alone would prove nothing. The CLI
# runs as root without the two capabilities that override them (it keeps uid 0, so the interpreter
# under /root stays readable), which is exactly an ordinary user facing a folder it may not write.
WITHOUT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search"]


def _run_unprivileged(args: list[str], paths, tmp: Path) -> subprocess.CompletedProcess:
    prefix = WITHOUT_OVERRIDE if os.geteuid() == 0 else []
    env = {k: v for k, v in os.environ.items() if k != "NEOC_MODEL_PATH"}
    env.update(NEOC_DATA_DIR=str(paths.data_dir), NEOC_KB_DIR=str(paths.kb_dir), NEOC_MODELS_DIR=str(tmp / "models"),
               TMPDIR=str(tmp))
    return subprocess.run([*prefix, sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which("setpriv"), reason="root without setpriv ignores chmod")
def test_a_read_only_data_dir_still_answers_and_ingest_names_the_permission_problem(ingested, tmp_path):
    """Issue 12.12: with the data dir read-only, search, ask and documents failed with "unable to open
    database file" (then Chroma's "attempt to write a readonly database")."""
    paths = ingested.settings.paths
    ingested.vectors.close()
    ingested.manifest.close()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["chmod", "-R", "a-w", str(paths.data_dir)], check=True)
    try:
        probe = _run_unprivileged(["-c", f"open({str(paths.data_dir / 'probe')!r}, 'w')"], paths, scratch)
        assert "PermissionError" in probe.stderr, "the CLI below must really be denied writing"
        cli = ["-m", "neoc_assistant"]
        proc = _run_unprivileged([*cli, "search", "how many rescue boats", "--json"], paths, scratch)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)[0]["source"] == "boats.md"
        proc = _run_unprivileged([*cli, "ask", "how many rescue boats are stored?"], paths, scratch)
        assert proc.returncode == 0 and "Fourteen inflatable rescue boats" in proc.stdout, proc.stderr[-2000:]
        proc = _run_unprivileged([*cli, "documents"], paths, scratch)
        assert proc.returncode == 0 and "boats.md" in proc.stdout, proc.stderr[-2000:]
        proc = _run_unprivileged([*cli, "health", "--json"], paths, scratch)
        checks = json.loads(proc.stdout)["checks"]
        assert checks["store"]["ok"] and checks["integrity"]["read_only"], checks
        assert "ingest needs write access" in checks["integrity"]["message"]
        proc = _run_unprivileged([*cli, "ingest"], paths, scratch)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert "read-only for this user" in proc.stderr and "Permission denied" in proc.stderr
        assert not list(scratch.glob("neoc-chroma-readonly-*")), "the private copy of the vectors is removed"
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(paths.data_dir)], check=True)
