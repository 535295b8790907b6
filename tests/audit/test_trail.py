"""The audit trail: what is recorded, that any edit to a line is found, retention, and the CLI's verify/export.

Records are written by the real ``AuditTrail`` into a temp folder; the CLI runs in its own process
as an operator would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neoc_assistant.audit import Asker, AuditTrail
from neoc_assistant.audit.report import as_html

from ui_fixtures import make_answer

REPO_ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0


class Clock:
    def __init__(self, now: float = 1_760_000_000.0):  # 2025-10-09
        self.now = now

    def __call__(self) -> float:
        return self.now


def _trail(tmp_path, **kw) -> AuditTrail:
    return AuditTrail(tmp_path / "audit", **kw)


def _fill(trail: AuditTrail, n: int = 4) -> list[str]:
    ids = []
    for i in range(n):
        answer = make_answer(f"Answer {i}: 15 litres [1].", question=f"question {i}?", kb_version="kb-1")
        ids.append(trail.record_answer(Asker(who="key:openwebui", channel="openai", conversation="c1"), answer, i))
    return ids


def test_an_answer_record_holds_who_what_and_from_which_documents(tmp_path):
    trail = _trail(tmp_path)
    answer = make_answer("Each person needs 15 litres [1].", question="and per day?", understood_as="water per day?",
                         understood_by="model", kb_version="kb-7", mode="llm",
                         verification={"status": "partial", "claims": [
                             {"text": "Each person needs 15 litres", "supported": True},
                             {"text": "Children need 40 litres", "supported": False, "reason": "not found"}]})
    record_id = trail.record_answer(Asker(who="user:duty", channel="ui", conversation="ui-s1-0"), answer, 2)
    trail.record_feedback(record_id, False, "wrong ward", who="user:duty")
    [record] = trail.answers(conversation="ui-s1-0")
    assert record["id"] == record_id and record["who"] == "user:duty" and record["turn"] == 3
    assert (record["question"], record["understood_as"], record["answer"]) == (
        "and per day?", "water per day?", "Each person needs 15 litres [1].")
    assert record["understood_by"] == "model"  # the rules or a model: who read the follow-up so
    assert record["mode"] == "llm" and record["kb_version"] == "kb-7"
    assert record["sources"][0]["source"] == "11-minimum-standards-wash-shelter.md" and "text" not in record["sources"][0]
    assert record["verification"] == {"status": "partial", "claims": 2, "unsupported": ["Children need 40 litres"]}
    assert record["feedback"] == [{"time": record["feedback"][0]["time"], "helpful": False, "comment": "wrong ward",
                                   "who": "user:duty"}]
    assert trail.verify()["ok"]


@pytest.mark.parametrize("tamper,why", [
    (lambda lines: lines.__setitem__(1, lines[1].replace("Answer 1", "Answer 9")), "was changed"),
    (lambda lines: lines.pop(2), "does not follow"),
    (lambda lines: lines.insert(1, lines[3]), "does not follow"),
    (lambda lines: lines.__setitem__(0, lines[0][:40]), "not a JSON record"),
])
def test_one_edited_removed_or_inserted_line_is_found_and_named(tmp_path, tamper, why):
    trail = _trail(tmp_path)
    _fill(trail)
    assert trail.verify() == {**trail.verify(), "ok": True, "records": 4, "problems": []}
    [segment] = trail.segments()
    lines = segment.read_text().splitlines()
    tamper(lines)
    segment.write_text("\n".join(lines) + "\n")
    result = trail.verify()
    assert not result["ok"]
    assert any(why in p["why"] and p["file"] == segment.name for p in result["problems"]), result["problems"]


def test_an_edit_that_recomputes_the_hash_still_breaks_the_chain(tmp_path):
    from neoc_assistant.audit.trail import record_hash

    trail = _trail(tmp_path)
    _fill(trail)
    [segment] = trail.segments()
    lines = segment.read_text().splitlines()
    record = json.loads(lines[1])
    record["answer"] = "Answer 1: 50 litres [1]."
    record["hash"] = record_hash(record)  # a careful forger
    lines[1] = json.dumps(record)
    segment.write_text("\n".join(lines) + "\n")
    problems = trail.verify()["problems"]
    assert [p["line"] for p in problems] == [3] and "does not follow" in problems[0]["why"]


def test_records_cut_from_the_end_are_found_by_the_head(tmp_path):
    trail = _trail(tmp_path)
    _fill(trail)
    [segment] = trail.segments()
    segment.write_text("\n".join(segment.read_text().splitlines()[:2]) + "\n")
    problems = trail.verify()["problems"]
    assert any("records at the end were removed" in p["why"] for p in problems)


def test_retention_deletes_whole_old_months_and_the_chain_still_verifies(tmp_path):
    clock = Clock()
    trail = _trail(tmp_path, retention_days=30, clock=clock)
    _fill(trail, 2)  # October 2025
    clock.now += 40 * DAY  # 18 November
    _fill(trail, 1)
    clock.now += 25 * DAY  # 13 December: October's newest record is 65 days old, November's 25
    _fill(trail, 1)
    names = [p.name for p in trail.segments()]
    assert names == ["audit-2025-11.jsonl", "audit-2025-12.jsonl"]
    retention = [r for r in trail.records() if r["kind"] == "retention"]
    assert retention and retention[0]["removed"] == ["audit-2025-10.jsonl"]
    assert trail.verify()["ok"], trail.verify()["problems"]
    trail.segments()[0].unlink()  # a month removed by hand, not by retention
    assert not trail.verify()["ok"]


def test_the_report_escapes_what_it_shows_and_states_the_chain(tmp_path):
    trail = _trail(tmp_path)
    trail.record_answer(Asker(who="user:duty"), make_answer("<script>alert(1)</script> [1]", question="<b>q</b>?"))
    page = as_html(trail.answers(), trail.verify(), "all")
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;q&lt;/b&gt;" in page
    assert "hash chain verified (1 records)" in page
    assert "src=" not in page and "<link" not in page and "http" not in page  # loads nothing


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NEOC_")},
           "NEOC_DATA_DIR": str(data_dir), "NEOC_CONFIG": str(data_dir / "none.toml")}
    return subprocess.run([sys.executable, "-m", "neoc_assistant", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_audit_verify_and_export_from_the_cli(tmp_path):
    data = tmp_path / "data"
    trail = AuditTrail(data / "logs" / "audit")
    _fill(trail, 3)
    ok = _cli(data, "audit", "verify")
    assert ok.returncode == 0 and "audit trail verified: 3 records" in ok.stdout, ok.stderr
    exported = _cli(data, "audit", "export", "--conversation", "c1", "--format", "json")
    body = json.loads(exported.stdout)
    assert [a["question"] for a in body["answers"]] == ["question 0?", "question 1?", "question 2?"]
    assert body["verification"]["ok"] is True
    html_path = tmp_path / "report.html"
    assert _cli(data, "audit", "export", "--format", "html", "-o", str(html_path)).returncode == 0
    assert "question 2?" in html_path.read_text()
    [segment] = trail.segments()
    segment.write_text(segment.read_text().replace("question 1?", "question 7?"))
    broken = _cli(data, "audit", "verify")
    assert broken.returncode == 1 and "NOT VERIFIED" in broken.stdout
    assert f"{segment.name}:2: record 2 was changed" in broken.stdout


def test_apikey_new_prints_a_key_once_and_its_hash_for_the_settings(tmp_path):
    from neoc_assistant.serve.api_keys import ApiKeys

    out = _cli(tmp_path / "data", "apikey", "new", "openwebui")
    assert out.returncode == 0, out.stderr
    key = out.stdout.split("it is not stored anywhere): ")[1].split()[0]
    hashed = out.stdout.split('openwebui = "')[1].split('"')[0]
    assert key not in hashed and ApiKeys({"openwebui": hashed}).name_of(key) == "openwebui"
    assert ApiKeys({"openwebui": hashed}).name_of(key + "x") is None
    with pytest.raises(Exception, match="never the key itself"):
        ApiKeys({"openwebui": key})
