"""WordNet lookups from many threads: NLTK's reader as it is, behind a lock, and ours (memory-mapped).

Why: NLTK's reader shares one file position per data file between threads; this
measures the race and what each fix costs. Each round looks up fresh words (no
cache hit), once single-threaded (240 words) and as 8 threads x 30 words.

    .venv/bin/python scripts/bench_wordnet.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import types
import warnings

from nltk.corpus.reader.wordnet import WordNetCorpusReader

from neoc_assistant.language import wordnet
from neoc_assistant.retrieve import expansion


def _variant(wn, name: str):
    """Install one reading strategy on the reader; returns the lookup to time."""
    synonyms = expansion.wordnet_synonyms.__wrapped__  # no lru cache: every word is read
    if name == "mmap (ours)":
        wn.synset_from_pos_and_offset = types.MethodType(type(wn).synset_from_pos_and_offset, wn)
        return synonyms
    wn.synset_from_pos_and_offset = types.MethodType(WordNetCorpusReader.synset_from_pos_and_offset, wn)
    if name == "nltk":
        return synonyms
    lock = threading.Lock()

    def locked(word):
        with lock:
            return synonyms(word)

    return locked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # NLTK warns about the garbled lines the race produces
    wn = wordnet.wordnet()
    if wn is None:
        raise SystemExit("WordNet is not installed (apt-get install wordnet-base)")
    words = [w for w in wn.all_lemma_names() if w.isalpha() and w.islower() and len(w) > 3]
    random.Random(0).shuffle(words)
    taken = 0

    def fresh(n: int) -> list[str]:
        nonlocal taken
        taken += n
        return words[taken - n:taken]

    def run(lookup, threads: int, per: int) -> tuple[float, int]:
        errors: list[Exception] = []
        chunks = [fresh(per) for _ in range(threads)]

        def work(chunk):
            for word in chunk:
                try:
                    lookup(word)
                except Exception as exc:  # noqa: BLE001 - counted: this is what the race raises
                    errors.append(exc)

        pool = [threading.Thread(target=work, args=(c,)) for c in chunks]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return (time.perf_counter() - started) * 1000, len(errors)

    for name in ("nltk", "lock", "mmap (ours)"):
        lookup = _variant(wn, name)
        wn._synset_offset_cache.clear()
        serial = [run(lookup, 1, 240) for _ in range(args.rounds)]
        parallel = [run(lookup, 8, 30) for _ in range(args.rounds)]
        median = sorted(p[0] for p in parallel)[len(parallel) // 2]
        print(f"{name:12s} 240 words, 1 thread: {min(s[0] for s in serial):6.1f} ms | 8 threads x 30: median "
              f"{median:6.1f} ms, {sum(p[1] for p in parallel)} errors in {args.rounds} rounds")


if __name__ == "__main__":
    main()
