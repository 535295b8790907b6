"""Reading evaluation data and scoring rankings, for ``eval_retrieval.py`` and ``tune_retrieval.py``.

BEIR files (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) and the
corpus-id <-> file-name mapping; nDCG / recall / MRR; the passage-match rule
(``evidence_in``). Kept apart from the evaluation driver because they are pure
(no model, no store): the tuning script imports them without building an
assistant, and the rules can be read in one place.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
import urllib.parse
from collections import defaultdict
from pathlib import Path

import numpy as np


# -- dataset loading -------------------------------------------------------------------
def doc_file_name(doc_id: str) -> str:
    """A safe file name for a corpus id (reversible with ``doc_id_from_source``)."""
    name = urllib.parse.quote(str(doc_id), safe="")
    if name.startswith(("." , "~")):
        name = "%" + format(ord(name[0]), "02X") + name[1:]
    return name + ".txt"


def doc_id_from_source(source: str) -> str:
    return urllib.parse.unquote(source[: -len(".txt")] if source.endswith(".txt") else source)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with open(path, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for row in reader:
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels[row[0]][row[1]] = int(row[2])
    return dict(qrels)


def write_beir_docs(dataset: Path, docs_dir: Path) -> int:
    """Write each corpus document as a text file (unchanged files are left alone, so ingest skips them)."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for doc in read_jsonl(dataset / "corpus.jsonl"):
        path = docs_dir / doc_file_name(doc["_id"])
        body = f"{(doc.get('title') or '').strip()}\n\n{(doc.get('text') or '').strip()}\n"
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
        count += 1
    return count


# -- metrics ---------------------------------------------------------------------------
def ndcg_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    dcg = sum((2 ** rels.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rels.values(), reverse=True)[:k]
    idcg = sum((2**r - 1) / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], rels: dict[str, int], k: int) -> float:
    for i, d in enumerate(ranked[:k]):
        if rels.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def collapse(text: str) -> str:
    """Whitespace-collapsed, lowercased text (the exact passage rule)."""
    return " ".join(str(text).split()).lower()


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", unicodedata.normalize("NFKC", str(text)).lower())


def in_order_share(needle: list[str], hay: list[str]) -> float:
    """Share of ``needle``'s words found in order in ``hay`` (longest common subsequence)."""
    if not needle:
        return 0.0
    prev = [0] * (len(needle) + 1)
    for word in hay:
        cur = [0]
        for j, nw in enumerate(needle, start=1):
            cur.append(prev[j - 1] + 1 if word == nw else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1] / len(needle)


PASSAGE_WORD_SHARE = 0.8


def evidence_in(evidence: str, text: str) -> str:
    """'exact', 'fuzzy' or '' -- whether a chunk contains the evidence passage (rule: eval_retrieval.py's doc)."""
    if collapse(evidence) in collapse(text):
        return "exact"
    if in_order_share(words_of(evidence), words_of(text)) >= PASSAGE_WORD_SHARE:
        return "fuzzy"
    return ""


def select_split(items: list[dict], split: str) -> list[dict]:
    """Lines whose ``split`` field is ``split``; a line without one counts as ``all``; ``all`` keeps every line."""
    if split == "all":
        return items
    return [q for q in items if q.get("split", "all") == split]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else 0.0


def docs_by_max(hits) -> list[str]:
    """Chunk hits (best first) -> document ids, each at the rank of its best chunk."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(doc_id_from_source(hit.source), None)
    return list(seen)
