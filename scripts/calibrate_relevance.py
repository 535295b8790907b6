#!/usr/bin/env python3
"""Fit the relevance model and choose the relevance floor, on labelled questions.

``Hit.scores["relevance"]`` is ``sigmoid(bias + w_cos * cosine + w_cov * coverage)``
(see ``KnowledgeBaseRetriever._score_relevance``). This script:

1. ingests the knowledge base (default ``knowledge_base/``) into ``--data-dir``;
2. runs the full pipeline (k=5, what the chain puts in the prompt) for
   * answerable questions (``{"text","source","answer_contains"}``): the
     positives are the top-5 hits from the right file containing the answer
     text (the passage that answers);
   * absent questions (``{"text"}``: about things the knowledge base does not
     cover): every top-5 hit is a negative;
3. fits a class-balanced logistic regression on the *fit* sets
   (``kb_questions.jsonl`` + absent-01..30), so the relevance is a probability
   with 0.5 the equal-cost boundary; the floor is the Bayes-optimal threshold
   ``1 / (1 + r)`` for a cost ratio ``r`` (``--cost-ratio``, default 2: refusing
   an answerable question -- "not in the knowledge base" when it is -- costs
   twice as much as passing passages of an absent one to the model, which is
   told to say when they do not answer); the question-level decision is "any
   top-5 hit at or above the floor" vs "nothing relevant";
4. reports the same on the *held-out* sets (``kb_paraphrases.jsonl`` +
   absent-31..50) that played no part in the choice.

Prints settings lines to paste into ``settings.py`` and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()  # offline, quiet, OpenMP policy: before any library loads

import numpy as np  # noqa: E402

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import PROJECT_ROOT, Settings  # noqa: E402

DATA = PROJECT_ROOT / "tests" / "data"


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def squash(text: str) -> str:
    return " ".join(text.split()).lower()


def features(container: Container, questions: list[dict], answerable: bool):
    """Per question: list of (cosine, coverage, is_positive) for its top-5 hits."""
    out = []
    for q in questions:
        hits = container.retriever.search(q["text"], k=5)
        rows = []
        for h in hits:
            positive = (
                answerable
                and q["source"] in (h.sources or [h.source])
                and squash(q["answer_contains"]) in squash(h.text)
            )
            rows.append((h.scores["cosine"], h.scores["coverage"], positive))
        out.append(rows)
    return out


def relevance(rows, coef) -> np.ndarray:
    x = np.array([[r[0], r[1]] for r in rows]).reshape(-1, 2)
    return 1.0 / (1.0 + np.exp(-(coef[0] + x @ np.array(coef[1:]))))


def question_rates(answerable, absent, coef, floor) -> tuple[float, float]:
    """(share of answerable questions with a hit >= floor, share of absent questions with none)."""
    kept = np.mean([relevance(rows, coef).max() >= floor for rows in answerable]) if answerable else 0.0
    refused = np.mean([relevance(rows, coef).max() < floor for rows in absent]) if absent else 0.0
    return float(kept), float(refused)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kb", default=str(PROJECT_ROOT / "knowledge_base"))
    parser.add_argument("--data-dir", default="/tmp/neoc-eval/kb")
    parser.add_argument("--cost-ratio", type=float, default=2.0, help="cost of refusing an answerable question / passing an absent one")
    args = parser.parse_args()

    container = Container(Settings(data_dir=Path(args.data_dir), kb_dir=Path(args.kb)))
    container.ingestor.ingest([Path(args.kb)])
    absent = read(DATA / "kb_absent_questions.jsonl")
    fit_abs = [q for q in absent if int(q["id"].split("-")[1]) <= 30]
    held_abs = [q for q in absent if int(q["id"].split("-")[1]) > 30]
    fit_ans = features(container, read(DATA / "kb_questions.jsonl"), True)
    held_ans = features(container, read(DATA / "kb_paraphrases.jsonl"), True)
    fit_neg = features(container, fit_abs, False)
    held_neg = features(container, held_abs, False)

    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    pos = [(c, v) for rows in fit_ans for c, v, p in rows if p]
    neg = [(c, v) for rows in fit_neg for c, v, _ in rows]
    x = np.array(pos + neg)
    y = np.array([1] * len(pos) + [0] * len(neg))
    model = LogisticRegression(C=10.0, class_weight="balanced").fit(x, y)
    coef = [float(model.intercept_[0]), float(model.coef_[0][0]), float(model.coef_[0][1])]
    auc = {
        "cosine_only": roc_auc_score(y, x[:, 0]),
        "coverage_only": roc_auc_score(y, x[:, 1]),
        "model": roc_auc_score(y, model.decision_function(x)),
    }

    # The model is a class-balanced probability, so the Bayes-optimal floor for a cost
    # ratio r (refusing an answerable question costs r times passing an absent one on to
    # the model, which still sees the passages and is told to say when they do not
    # answer) is 1 / (1 + r). The curve below shows what other floors would do.
    floor = round(1.0 / (1.0 + args.cost_ratio), 3)
    print(f"{'floor':>6} {'fit kept':>9} {'fit refused':>12} {'held kept':>10} {'held refused':>13}")
    for f in sorted({*np.round(np.arange(0.1, 0.91, 0.1), 2), floor}):
        fk, fr = question_rates(fit_ans, fit_neg, coef, f)
        hk, hr = question_rates(held_ans, held_neg, coef, f)
        print(f"{f:>6.3f} {fk:>9.3f} {fr:>12.3f} {hk:>10.3f} {hr:>13.3f}" + ("   <- chosen" if f == floor else ""))
    best = (None, None, floor, *question_rates(fit_ans, fit_neg, coef, floor))
    held_kept, held_refused = question_rates(held_ans, held_neg, coef, floor)
    cosine_floor_report = {}
    for name, sets in (("fit", (fit_ans, fit_neg)), ("held_out", (held_ans, held_neg))):
        kept, refused = question_rates(*sets, coef, floor)
        cosine_floor_report[name] = {"answerable_kept": round(kept, 4), "absent_refused": round(refused, 4)}

    print(f"positives {len(pos)}  negatives {len(neg)}  AUC {json.dumps({k: round(v, 4) for k, v in auc.items()})}")
    print(f"fit:      answerable kept {best[3]:.3f}  absent refused {best[4]:.3f}  (floor {floor})")
    print(f"held-out: answerable kept {held_kept:.3f}  absent refused {held_refused:.3f}")
    print("\n# settings.py RetrievalSettings defaults ([retrieval] in neoc.toml)")
    print(f"relevance_bias = {coef[0]:.3f}")
    print(f"relevance_cosine_weight = {coef[1]:.3f}")
    print(f"relevance_coverage_weight = {coef[2]:.3f}")
    print(f"relevance_floor = {floor}")
    print(
        json.dumps(
            {
                "relevance_bias": round(coef[0], 3),
                "relevance_cosine_weight": round(coef[1], 3),
                "relevance_coverage_weight": round(coef[2], 3),
                "relevance_floor": floor,
                "auc": {k: round(v, 4) for k, v in auc.items()},
                "fit": cosine_floor_report["fit"],
                "held_out": cosine_floor_report["held_out"],
                "n": {"fit_answerable": len(fit_ans), "fit_absent": len(fit_neg), "held_answerable": len(held_ans), "held_absent": len(held_neg)},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
