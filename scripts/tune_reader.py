#!/usr/bin/env python
"""Choose the reader's settings on a tune split, then report them once on the held-out split.

Usage::

    python scripts/tune_reader.py tests/data/reader_kb.jsonl tests/data/answers_kb.jsonl
    python scripts/tune_reader.py tests/data/reader_kb.jsonl \\
        tests/data/reader_fema.jsonl=../shared/corpora/fema   # one setting chosen for both corpora

Retrieval, the answerability check and the statements' vectors are computed once per question;
then coordinate descent over the ``[reader]`` settings (each knob tried over its grid with the
others fixed, two rounds) maximises, on the **tune** split only, the sum over questions of the
share of key facts the composed answer carries (answerable questions; a not-found carries none)
plus 1 for each unanswerable question answered not-found, minus ``--word-cost`` per 100 words shown
(reading time: without it, longer answers always carry more facts, and the whole passage would
always win). The held-out split is scored once,
with the chosen settings and with the defaults, and printed beside the tune figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from neoc_assistant import runtime  # noqa: E402

runtime.configure_process()

from _answer_metrics import fact_share  # noqa: E402
from neoc_assistant.compose.extracts import ExtractWeights  # noqa: E402
from neoc_assistant.compose.quotes import render_extracts  # noqa: E402
from neoc_assistant.compose.reader import Reader, ReaderRules  # noqa: E402
from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.question import Question  # noqa: E402
from neoc_assistant.reading.asks import named, read_ask  # noqa: E402
from neoc_assistant.reading.weights import WeightRules, question_weights  # noqa: E402
from neoc_assistant.settings import ReaderSettings, Settings  # noqa: E402
from neoc_assistant.verify.answerability import check_answerable  # noqa: E402

GRID = {
    "term_weight": [0.3, 0.5, 0.8, 1.2, 1.6],
    "ask_weight": [0.0, 0.15, 0.3, 0.5],
    "length_penalty": [0.0, 0.03, 0.06, 0.1, 0.15],
    "rank_penalty": [0.0, 0.02, 0.05],
    "max_statements": [1, 2, 3, 4],
    "unit": ["window", "scattered", "passage"],
    "min_coverage": [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4],
    "second_margin": [0.0, 0.05, 0.1, 0.15, 0.25],
    "max_extracts": [1, 2, 3],
    "background_weight": [0.25, 0.5, 0.75, 1.0],
    "common_weight": [0.5, 1.0, 2.0],
    "max_block": [0, 2, 3, 4, 6],
    "below_floor": [0, 3],
    "min_coverage_below_floor": [0.3, 0.4, 0.5, 0.6, 0.7],
    "read_all_hits": [False, True],
    "second_from_other_passage": [False, True],
}
BELOW_FLOOR = 3  # passages read when none passes the relevance floor (the ``below_floor`` knob: 0 or this)


@dataclass
class Prepared:
    item: dict
    text: str  # the question as read (glossed)
    vector: object
    views: list | None  # of every hit; None: no hit, or a named constraint none of them covers
    relevant: int = 0  # the first ``relevant`` hits passed the relevance floor


def prepare(container: Container, items: list[dict]) -> list[Prepared]:
    chain, writer = container.chain, container.writer
    guard = container.vocabulary.guard(container.manifest.kb_version())
    out = []
    for n, item in enumerate(items, start=1):
        question = chain._read(Question(text=item["text"]))
        retrieved = chain._retrieve(chain._cache_lookup(question)).retrieved
        views = None
        # relevant hits first, then the others in rank order (as the router reads them)
        hits = retrieved.relevant + [h for h in retrieved.hits if h not in retrieved.relevant]
        if hits and check_answerable(question.read_as, [h.text for h in hits], guard, writer.known).answerable:
            views = writer.checker.prepare([h.text for h in hits])
        out.append(Prepared(item, question.read_as, retrieved.query_vector, views, len(retrieved.relevant)))
        print(f"\r  prepared {n}/{len(items)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def evaluate(prepared: list[Prepared], config: dict, lex, glossary, word_cost: float = 0.0) -> dict:
    weights = ExtractWeights(**{k: config[k] for k in ("term_weight", "ask_weight", "length_penalty",
                                                        "rank_penalty", "max_statements", "unit")})
    reader = Reader(ReaderRules(weights=weights, min_coverage=config["min_coverage"],
                                second_margin=config["second_margin"], max_extracts=config["max_extracts"],
                                max_block=config["max_block"],
                                second_from_other_passage=config["second_from_other_passage"]))
    rules = WeightRules(config["common_weight"], config["background_weight"])
    shares, unans_nf, unans, false_nf, words_shown = [], 0, 0, 0, []
    for p in prepared:
        answerable = p.item.get("answerable", True)
        text = ""
        below = p.relevant == 0
        if p.views is None or (below and not config["below_floor"]):
            views = None
        elif below:
            views = p.views[:BELOW_FLOOR]
        else:
            views = p.views if config["read_all_hits"] else p.views[: p.relevant]
        if views is not None:
            words = question_weights(p.item["text"], lex, glossary, rules)
            scorer = reader.scorer(p.text, p.vector, read_ask(p.item["text"]), views, words,
                                   tuple(named(p.item["text"], glossary.known_words())))
            comp = reader.compose(scorer, config["min_coverage_below_floor"] if below else None)
            if comp.answers:
                numbers = {}
                for e in comp.extracts:
                    numbers.setdefault(e.passage, len(numbers) + 1)
                text = render_extracts(comp.extracts, views, numbers)
        if text:
            words_shown.append(len(text.split()))
        if answerable:
            shares.append(fact_share(text, p.item["key_facts"]) if text else 0.0)
            false_nf += not text
        else:
            unans += 1
            unans_nf += not text
    mean_words = sum(words_shown) / max(len(words_shown), 1)
    objective = sum(shares) + unans_nf - word_cost * sum(words_shown) / 100
    return {"objective": round(objective, 3), "coverage": round(sum(shares) / max(len(shares), 1), 3),
            "words": round(mean_words), "p90_words": sorted(words_shown)[int(0.9 * (len(words_shown) - 1))] if words_shown else 0,
            "false_not_found": false_nf, "answerable": len(shares), "unanswerable_not_found": unans_nf,
            "unanswerable": unans}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("questions", nargs="+", help="FILE.jsonl, or FILE.jsonl=CORPUS_DIR (default corpus: --corpus)")
    ap.add_argument("--corpus", default=str(ROOT / "knowledge_base"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--word-cost", type=float, default=0.1,
                    help="objective cost of 100 words shown, in questions' worth of key facts (reading time)")
    args = ap.parse_args(argv)
    by_corpus: dict[Path, list[dict]] = {}
    for spec in args.questions:
        path, _, corpus = spec.partition("=")
        items = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        by_corpus.setdefault(Path(corpus or args.corpus).resolve(), []).extend(items)
    sets = []  # (name, lexicon, glossary, tune, heldout) per corpus
    for corpus, items in by_corpus.items():
        settings = Settings(data_dir=Path(f"/tmp/neoc-eval/reader-{corpus.name}"), kb_dir=corpus,
                            model_path=Path("/nonexistent/no-model.gguf"), cache_enabled=False, query_log_enabled=False)
        container = Container(settings)
        container.assistant.ingest([corpus], show_progress=True)
        lex = container.vocabulary.lexicon(container.manifest.kb_version())
        sets.append((corpus.name, lex, container.glossary,
                     prepare(container, [i for i in items if i.get("split") == "tune"]),
                     prepare(container, [i for i in items if i.get("split") == "heldout"])))

    def total(config: dict, split: int) -> dict:
        results = [evaluate(s[split], config, s[1], s[2], args.word_cost) for s in sets]
        out = {"objective": round(sum(r["objective"] for r in results), 3)}
        out.update({name: r for (name, *_), r in zip(sets, results)})
        return out

    defaults = ReaderSettings().model_dump()
    config = {k: defaults[k] for k in GRID}
    best = total(config, 3)
    print(f"defaults on tune: {best}")
    for _ in range(args.rounds):
        for knob, values in GRID.items():
            for value in values:
                trial = {**config, knob: value}
                result = total(trial, 3)
                if result["objective"] > best["objective"] + 1e-9:
                    best, config = result, trial
                    print(f"  {knob}={value}: objective {result['objective']}")
    print("\nchosen:", json.dumps({k: v for k, v in config.items() if v != defaults[k]}))
    for name, split in (("tune", 3), ("heldout", 4)):
        for label, cfg in (("defaults", {k: defaults[k] for k in GRID}), ("chosen", config)):
            result = total(cfg, split)
            print(f"{name:8} {label:8} objective {result['objective']}")
            for corpus, *_ in sets:
                print(f"    {corpus}: {result[corpus]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
