"""How a shown answer is judged: key facts it carries, numbers no passage holds, repeated lines.

Shared by ``eval_answers.py`` and ``eval_reader.py`` so both judge answers the same way. The judge is
lexical on purpose (the question tokenizer, ``language/normalize.py``): "7.5 litres" is carried by
"7.5 l" and "7,5 litres" alike, and the same rule is applied to the ceiling row (the evidence
passage itself), so every row is measured with one ruler.
"""

from __future__ import annotations

from neoc_assistant.compose.worked import WORKED_LABEL
from neoc_assistant.language.normalize import tokenize
from neoc_assistant.language.facts import extract_facts


def _padded(text: str) -> str:
    return " " + " ".join(tokenize(text)) + " "


def carries(text: str, fact: str) -> bool:
    """The fact's tokens stand in the text, in order and together."""
    return _padded(fact) in _padded(text)


def fact_share(text: str, facts: list[str]) -> float:
    """Share of the key facts the text carries (0 for no facts)."""
    if not facts:
        return 0.0
    padded = _padded(text)
    return sum(1 for f in facts if _padded(f) in padded) / len(facts)


def shown_numbers_unsupported(answer: dict, question: str) -> list[str]:
    """Numbers the user sees that no passage given to the model holds (and the question does not).
    Worked figures (labelled calculations from the quoted numbers) are checked apart."""
    text = answer["answer"].split(WORKED_LABEL)[0]  # a labelled calculation is checked apart
    if answer["mode"] == "not-found":
        return []
    passages = [s.get("text") or "" for s in answer.get("sources", [])]
    known = extract_facts(question).all_numbers()
    for p in passages:
        f = extract_facts(p)
        known |= f.all_numbers() | f.phones
    shown = extract_facts(text)
    bad = [n for n in shown.all_numbers() if n not in known]
    bad += [p for p in shown.phones if not any(p.lstrip("0")[-7:] in k for k in known)]
    return bad


def repeated_lines(text: str) -> int:
    """Lines shown more than once (the same document line quoted twice, the same source listed twice)."""
    seen: set[str] = set()
    repeats = 0
    for line in text.splitlines():
        key = " ".join(line.lower().split()).strip("-• ")
        if len(key) < 8:
            continue
        if key in seen:
            repeats += 1
        seen.add(key)
    return repeats


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]
