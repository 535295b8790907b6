#!/usr/bin/env python
"""Conversations: are follow-ups read right, answered with their evidence, and never inherit a topic?

Usage::

    python scripts/eval_dialogues.py tests/data/dialogues.jsonl --split heldout
    # --fema ../shared/corpora/fema (default), --model PATH, --limit N, --out FILE.jsonl
    python scripts/eval_dialogues.py tests/data/dialogues.jsonl --split tune \
        --resolver model --resolver-model ~/.cache/neoc-assistant/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
    # --resolver rules (default) | model: how follow-ups are read (conversation.resolver);
    # --resolver-model: the GGUF that rewrites them (default: --model, the answer model); --threads N
    # --bare-retrieval on|off, --bare-margin X: conversation.bare_retrieval / bare_margin

Each dialogue is asked turn by turn through the ``Assistant`` with the conversation so far, on the
default knowledge base or the FEMA corpus (its ``corpus`` field). Per kind of follow-up:

* **resolved** - the standalone question the assistant understood contains every ``must_include``
  word and no ``must_not_include`` word (words compared by their light stems);
* **evidence** - share of the turn's key facts in the shown answer, against the same share when the
  reference standalone question (``resolved``) is asked alone: follow-ups should do as well;
* **wrong carry-overs** - topic changes (and turns that must not inherit) whose reading kept a word
  of the old topic;
* **read latency** - what reading a follow-up adds (the chain's ``read`` stage), p50/p95 in ms; with
  ``--resolver model``, how often the model's rewrite was used and why it was not (``understood_by``);
* **worked figures** - turns with an expected calculation: correct (the expected result shown),
  other rate (a calculation from another quoted rate, none with that result), not offered; and
  calculations shown where none was expected (read them: ``--out``).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

from _answer_metrics import fact_share  # noqa: E402
from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.language.normalize import light_stem  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

NO_MODEL = Path("/nonexistent/no-model.gguf")


def has_word(text: str, word: str) -> bool:
    stems = {light_stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())}
    return all(light_stem(p) in stems for p in re.findall(r"[a-z0-9]+", word.lower()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dialogues")
    ap.add_argument("--split", default="all", choices=["tune", "heldout", "all"])
    ap.add_argument("--fema", default=str(ROOT.parent / "shared/corpora/fema"))
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--resolver", default="rules", choices=["rules", "model"])
    ap.add_argument("--resolver-model", help="GGUF that rewrites follow-ups (default: --model)")
    ap.add_argument("--resolver-timeout", type=float, default=4.0, help="conversation.timeout_seconds")
    ap.add_argument("--threads", type=int, default=2, help="model threads (answers and rewrites)")
    ap.add_argument("--bare-retrieval", default="on", choices=["on", "off"],
                    help="conversation.bare_retrieval: also look a read follow-up up as asked")
    ap.add_argument("--bare-margin", type=float, default=None, help="conversation.bare_margin")
    args = ap.parse_args(argv)
    dialogues = [json.loads(line) for line in Path(args.dialogues).read_text().splitlines() if line.strip()]
    dialogues = [d for d in dialogues if args.split == "all" or d["split"] == args.split]
    dialogues = dialogues[: args.limit] if args.limit else dialogues
    model = Path(args.model).expanduser() if args.model else NO_MODEL
    corpora = {"kb": ROOT / "knowledge_base", "fema": Path(args.fema).resolve()}
    assistants = {}
    for name, corpus in corpora.items():
        if not any(d["corpus"] == name for d in dialogues):
            continue
        data = Path(f"/tmp/neoc-eval/reader-{corpus.name}")
        rewriter = Path(args.resolver_model).expanduser() if args.resolver_model else None
        container = Container(Settings(data_dir=data, kb_dir=corpus, model_path=model, cache_enabled=False,
                                       query_log_enabled=False, n_threads=args.threads,
                                       conversation={"resolver": args.resolver, "model_path": rewriter,
                                                     "timeout_seconds": args.resolver_timeout,
                                                     "bare_retrieval": args.bare_retrieval == "on",
                                                     **({} if args.bare_margin is None
                                                        else {"bare_margin": args.bare_margin})}))
        container.assistant.ingest([corpus], show_progress=True)
        if args.resolver == "model":
            container.followups.warm()  # type: ignore[attr-defined]  # the load is not a follow-up's latency
        assistants[name] = container.assistant

    rows = []
    for n, d in enumerate(dialogues, start=1):
        assistant = assistants[d["corpus"]]
        history: list[tuple[str, str]] = []
        for i, turn in enumerate(d["turns"]):
            answer = assistant.ask(turn["text"], history=list(history), use_cache=False)
            understood = answer.understood_as or turn["text"]
            row = {"id": d["id"], "turn": i, "kind": d["kind"] if i else "first", "text": turn["text"],
                   "understood": understood, "mode": answer.mode, "answer": answer.answer,
                   "worked": answer.worked, "expected": turn, "by": answer.understood_by,
                   "read_ms": answer.timings_ms.get("read")}
            row["resolved_ok"] = (all(has_word(understood, w) for w in turn["must_include"])
                                  and not any(has_word(understood, w) for w in turn["must_not_include"]))
            row["carried_wrong"] = bool(turn["must_not_include"]) and any(
                has_word(understood, w) for w in turn["must_not_include"])
            if turn.get("answerable", True) and turn["key_facts"]:
                row["evidence"] = fact_share(answer.answer, turn["key_facts"]) if answer.mode != "not-found" else 0.0
                alone = assistant.ask(turn["resolved"], use_cache=False)
                row["evidence_alone"] = fact_share(alone.answer, turn["key_facts"]) if alone.mode != "not-found" else 0.0
            expected = turn.get("worked_figure")
            if expected:
                result = expected["result"]
                marks = {f"= {about}{result:,} " for about in ("", "about ")} | {f"= {result} ", f"= {result:,.1f} "}
                shown = any(any(m in w + " " for m in marks) for w in answer.worked)
                # "other rate": a calculation from another quoted rate (its arithmetic is right, its
                # rate not the one the reference expected); the arithmetic itself is tested in tests/
                row["worked_result"] = "correct" if shown else ("other rate" if answer.worked else "not offered")
            elif answer.worked:
                row["worked_result"] = "unexpected"
            rows.append(row)
            history.append((turn["text"], answer.answer))
        print(f"\r  {n}/{len(dialogues)} dialogues", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    report = summarise(rows)
    print_report(report)
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(json.dumps({"dialogues": args.dialogues, "split": args.split, "model": str(model),
                      "resolver": args.resolver, "resolver_model": args.resolver_model, **report}))
    return 0


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None}
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))], 1)}


def summarise(rows: list[dict]) -> dict:
    kinds = defaultdict(list)
    for r in rows:
        if r["turn"] > 0:
            kinds[r["kind"]].append(r)
    per_kind = {}
    for kind, rs in sorted(kinds.items()):
        ev = [r["evidence"] for r in rs if "evidence" in r]
        alone = [r["evidence_alone"] for r in rs if "evidence_alone" in r]
        per_kind[kind] = {"turns": len(rs), "resolved": sum(r["resolved_ok"] for r in rs),
                          "evidence": round(statistics.mean(ev), 3) if ev else None,
                          "evidence_alone": round(statistics.mean(alone), 3) if alone else None,
                          "wrong_carry_overs": sum(r["carried_wrong"] for r in rs),
                          "read_ms": percentiles([r["read_ms"] for r in rs if r.get("read_ms") is not None])}
    follow = [r for r in rows if r["turn"] > 0]
    ev = [r["evidence"] for r in follow if "evidence" in r]
    alone = [r["evidence_alone"] for r in follow if "evidence_alone" in r]
    changes = [r for r in follow if r["kind"] in ("topic-change", "no-inherit")]
    worked = defaultdict(int)
    for r in rows:
        if "worked_result" in r:
            worked[r["worked_result"]] += 1
    return {"per_kind": per_kind, "follow_ups": len(follow), "resolved": sum(r["resolved_ok"] for r in follow),
            "evidence": round(statistics.mean(ev), 3) if ev else None,
            "evidence_alone": round(statistics.mean(alone), 3) if alone else None,
            "topic_changes": len(changes), "wrong_carry_overs": sum(r["carried_wrong"] for r in changes),
            "worked": dict(worked),
            "read_ms": percentiles([r["read_ms"] for r in follow if r.get("read_ms") is not None]),
            "understood_by": dict(sorted(_by_counts(follow).items()))}


def _by_counts(rows: list[dict]) -> dict:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        by = r.get("by") or "unchanged"
        counts[by if by in ("rules", "model", "unchanged") else "rules: " + by.partition("(")[2].rstrip(")")[:24]] += 1
    return counts


def print_report(report: dict) -> None:
    print(f"\n{'kind':18}{'turns':>7}{'resolved':>10}{'evidence':>10}{'alone':>8}{'wrong':>7}{'read p50/p95 ms':>18}")
    for kind, k in report["per_kind"].items():
        ms = f"{k['read_ms']['p50']}/{k['read_ms']['p95']}"
        print(f"{kind:18}{k['turns']:>7}{k['resolved']:>10}{str(k['evidence']):>10}{str(k['evidence_alone']):>8}"
              f"{k['wrong_carry_overs']:>7}{ms:>18}")
    print(f"follow-ups {report['follow_ups']}: resolved {report['resolved']}, evidence {report['evidence']} "
          f"(asked alone {report['evidence_alone']}); wrong carry-overs {report['wrong_carry_overs']} of "
          f"{report['topic_changes']} topic changes; worked figures {report['worked']}; read "
          f"p50/p95 {report['read_ms']['p50']}/{report['read_ms']['p95']} ms; read by {report['understood_by']}")


if __name__ == "__main__":
    raise SystemExit(main())
