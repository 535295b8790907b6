#!/usr/bin/env python
"""Where does retrieval rank the passage that answers? A reader set's answerable questions.

    python scripts/eval_evidence_rank.py tests/data/reader_fema.jsonl --corpus ../shared/corpora/fema \\
        --data-dir /tmp/neoc-eval/reader-fema --split tune [--answers OUT.jsonl]

The evidence passage is ``eval_reader.py``'s ceiling chunk (the chunk of the question's files that
carries the most key facts); its rank is the first of the top 30 hits (``Assistant.search``) that
carries as many. Prints each question's rank and the share found within 1/3/5/8/10/15/20/30. With
``--answers`` (an ``eval_reader.py --out`` file of the same set) each row also shows the shown
answer's key-fact share, so a reader miss can be told from a retrieval miss.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

import eval_reader  # noqa: E402
from _answer_metrics import fact_share  # noqa: E402
from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402

DEPTH = 30


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions")
    ap.add_argument("--corpus", default=str(ROOT / "knowledge_base"))
    ap.add_argument("--data-dir", required=True, help="an ingested store of the corpus (eval_reader.py's)")
    ap.add_argument("--split", default="all", choices=["tune", "heldout", "all"])
    ap.add_argument("--answers", help="eval_reader.py --out JSONL of the same set: show the quotes row's share")
    args = ap.parse_args()
    items = [q for q in eval_reader.read_jsonl(Path(args.questions))
             if q.get("answerable", True) and args.split in ("all", q.get("split"))]
    shown: dict[str, float] = {}
    if args.answers:
        for row in eval_reader.read_jsonl(Path(args.answers)):
            if row.get("config") == "quotes":
                item = next((i for i in items if i["id"] == row["id"]), None)
                answer = row["answer"]
                if item is not None:
                    shown[row["id"]] = 0.0 if answer["mode"] == "not-found" else fact_share(answer["answer"],
                                                                                            item["key_facts"])
    container = Container(Settings(data_dir=Path(args.data_dir), kb_dir=Path(args.corpus), cache_enabled=False,
                                   query_log_enabled=False))
    ceilings = eval_reader.ceiling_texts(container, items)
    ranks: list[int | None] = []
    for item in items:
        best = fact_share(ceilings.get(item["id"], ""), item["key_facts"])
        hits = container.assistant.search(item["text"], k=DEPTH)
        rank = next((n for n, h in enumerate(hits, 1)
                     if best > 0 and fact_share(h.text, item["key_facts"]) >= best - 1e-9), None)
        ranks.append(rank)
        extra = f"  shown {shown[item['id']]:.2f}" if item["id"] in shown else ""
        print(f"{item['id']:<12} rank {rank if rank is not None else '-':>3}  ceiling {best:.2f}{extra}  {item.get('kind', '')}",
              flush=True)
    within = {f"@{k}": round(sum(1 for r in ranks if r is not None and r <= k) / max(len(ranks), 1), 3)
              for k in (1, 3, 5, 8, 10, 15, 20, 30)}
    print(json.dumps({"questions": args.questions, "split": args.split, "n": len(ranks), **within}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
