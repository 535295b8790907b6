"""kill -9 during `kb import`, at each step of the protocol (bundles/apply.py): the laptop's old knowledge base
stays intact and searchable (or, once the transaction committed, the new one is complete), and the import
then succeeds. The import runs in its own process, stopped at a step by NEOC_BUNDLE_IMPORT_PAUSE."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from bundle_fixtures import make_laptop, national, pub, revise  # noqa: F401 - fixtures
from conftest import REPO_ROOT
from store_fixtures import ingested  # noqa: F401 - the national store

pytestmark = pytest.mark.slow

STEPS = ["verified", "journaled", "vectors", "before-commit", "committed"]


def _import_killed_at(step, bundle, laptop) -> None:
    paths = laptop.settings.paths
    env = {**os.environ, "NEOC_DATA_DIR": str(paths.data_dir), "NEOC_KB_DIR": str(paths.kb_dir),
           "NEOC_BUNDLE_IMPORT_PAUSE": step, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "neoc_assistant", "kb", "import", str(bundle), "--no-progress"],
                            cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    seen = []
    try:
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            if not line and proc.poll() is not None:
                break
            seen.append(line)
            if f"paused at {step}" in line:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return
        pytest.fail(f"the import never reached {step}: {''.join(seen)[-2000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_kill_at_any_step_leaves_a_usable_knowledge_base_and_the_import_then_succeeds(
        national, make_laptop, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = nat.manifest.kb_version()
    revise(nat)
    nat.assistant.export_bundle(tmp_path / "v2.neockb", key=key, since=v1)
    v2 = nat.manifest.kb_version()
    setup = make_laptop(trust=(pub(key),))
    setup.assistant.import_bundle(tmp_path / "v1.neockb")
    setup.vectors.close()
    old_water = "15 litres"

    for step in STEPS:
        _import_killed_at(step, tmp_path / "v2.neockb", setup)
        laptop = make_laptop()  # the next process on the laptop
        version = laptop.manifest.kb_version()
        assert version == (v2 if step == "committed" else v1), step
        assert laptop.manifest.integrity()["ok"]
        live = laptop.manifest.all_chunk_ids()
        assert live <= laptop.vectors.ids(), step  # every chunk the manifest lists has its vector
        water = laptop.assistant.search("how much water per person per day", k=1)[0]
        assert water.source == "water.md" and "vector" in water.scores, step
        assert (old_water in water.text) == (step != "committed"), step
        if step != "committed":
            assert {d.sources[0] for d in laptop.assistant.documents()} == {"boats.md", "radio.md", "water.md"}
        else:  # committed, killed before the replaced vectors left Chroma: they are journaled for deletion
            assert set(laptop.manifest.pending_chroma_hashes()) and live < laptop.vectors.ids()
        summary = laptop.assistant.import_bundle(tmp_path / "v2.neockb")  # the re-import succeeds
        assert summary.kb_version == v2, step
        assert summary.changed == ([] if step == "committed" else ["water.md"]), step
        assert laptop.manifest.kb_version() == v2
        assert laptop.vectors.ids() == laptop.manifest.all_chunk_ids(), step  # strays and replaced vectors gone
        assert "20 litres" in laptop.assistant.search("how much water per person per day", k=1)[0].text
        laptop.vectors.close()
        # back to v1 for the next step: the full v1 bundle replaces the knowledge base
        reset = make_laptop()
        reset.assistant.import_bundle(tmp_path / "v1.neockb")
        assert reset.manifest.kb_version() == v1
        reset.vectors.close()
