"""The ingest's second stage: chunks of several files embedded together, files handed back whole.

Why: per-file batches left the embedder with a handful of chunks for every small
file (an ICS form is 2-5 chunks), and the sentence-transformers encoder sorts a
call's texts by length, so a larger call pads less. Files queue here in plan
order; ``embed_next`` embeds up to ``batch_chunks`` of the chunks not yet
embedded, across file boundaries; ``pop_done`` hands back, in order, the files
whose chunks all have their vectors, so each is committed whole (the protocol
in ``store/manifest.py`` is unchanged: nothing of a file is written before all
of it is embedded).

A batch whose embedding raises is retried file by file, so only the file that
cannot be embedded fails.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from neoc_assistant.ingest.feed import Prepared

log = logging.getLogger(__name__)


@dataclass
class Job:
    item: Prepared
    parts: list[np.ndarray] = field(default_factory=list)
    embedded: int = 0
    error: BaseException | None = None

    @property
    def total(self) -> int:
        return len(self.item.chunks) if self.item.kind == "new" else 0

    @property
    def done(self) -> bool:
        return self.error is not None or self.embedded >= self.total

    @property
    def vectors(self) -> np.ndarray:
        return np.vstack(self.parts).astype(np.float32, copy=False)


class CrossFileBatches:
    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], batch_chunks: int):
        self._encode = encode
        self._batch = max(1, batch_chunks)
        self._jobs: deque[Job] = deque()
        self.waiting = 0  # chunks queued and not embedded yet

    @property
    def batch_chunks(self) -> int:
        return self._batch

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, item: Prepared) -> None:
        job = Job(item)
        self._jobs.append(job)
        self.waiting += job.total

    def embed_next(self) -> None:
        """Embed the next ``batch_chunks`` waiting chunks, oldest file first."""
        taken: list[tuple[Job, int, int]] = []  # job, first chunk, end
        room = self._batch
        for job in self._jobs:
            if room == 0:
                break
            if job.done:
                continue
            end = min(job.total, job.embedded + room)
            taken.append((job, job.embedded, end))
            room -= end - job.embedded
        if not taken:
            return
        texts = [c.text for job, a, b in taken for c in job.item.chunks[a:b]]
        try:
            vectors = self._encode(texts)
        except Exception:  # noqa: BLE001 - find the file that cannot be embedded; the others go on
            log.warning("embedding a batch of %d files failed; retrying them one by one", len(taken))
            for job, a, b in taken:
                self._embed_alone(job, a, b)
            return
        row = 0
        for job, a, b in taken:
            self._record(job, vectors[row : row + b - a], b - a)
            row += b - a

    def _embed_alone(self, job: Job, a: int, b: int) -> None:
        try:
            self._record(job, self._encode([c.text for c in job.item.chunks[a:b]]), b - a)
        except Exception as exc:  # noqa: BLE001 - the file fails with this reason (pipeline.py)
            self.waiting -= job.total - job.embedded
            job.error = exc

    def _record(self, job: Job, vectors: np.ndarray, n: int) -> None:
        job.parts.append(vectors)
        job.embedded += n
        self.waiting -= n

    def pop_done(self) -> Iterator[Job]:
        """Files whose chunks are all embedded (or that need no embedding), in plan order."""
        while self._jobs and self._jobs[0].done:
            yield self._jobs.popleft()
