"""A national EOC with the 3-document store and a signing key, and empty district laptops (tests/bundles/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant.container import Container
from neoc_assistant.settings import Settings
from neoc_assistant.store.embeddings import Embedder

from store_fixtures import ingested  # noqa: F401 - the national EOC's store


class NoEncodingEmbedder(Embedder):
    """The real model's identity, but any attempt to embed fails: an import must not re-embed."""

    def encode(self, texts, show_progress: bool = False):
        raise AssertionError("the laptop embedded text during a bundle import")


@pytest.fixture
def national(ingested, tmp_path: Path):  # noqa: F811 - the fixture of the same name
    """(container, private key path) of the national EOC."""
    key = tmp_path / "keys" / "national.key"
    ingested.assistant.bundle_keygen(key)
    return ingested, key


@pytest.fixture
def make_laptop(embedder, tmp_path: Path):
    """A district laptop's container on its own data dir (``name``), trusting ``trust`` keys; ``embedder``
    given explicitly or the shared real one. Every laptop's vector client is closed at teardown."""
    built: list[Container] = []

    def _make(name: str = "laptop", *, trust: tuple[Path, ...] = (), use_embedder=None, **components) -> Container:
        settings = Settings(data_dir=tmp_path / name, kb_dir=tmp_path / f"{name}-kb", models_dir=tmp_path / "models")
        container = Container(settings, embedder=use_embedder or embedder, **components)
        for key in trust:
            container.assistant.trust_key(key)
        built.append(container)
        return container

    yield _make
    for container in built:
        container.vectors.close()


def pub(key: Path) -> Path:
    return key.with_name(key.name + ".pub")


def revise(national: Container) -> None:
    """A new national version: water.md changed, radio.md removed, shelter.md added."""
    kb = national.settings.paths.kb_dir
    (kb / "water.md").write_text("# Water\n\nEach person needs at least 20 litres of water per day after the flood.\n")
    (kb / "radio.md").unlink()
    (kb / "shelter.md").write_text("# Shelter\n\nEach shelter must give every person 3.5 square metres of floor.\n")
    assert national.assistant.ingest().ok
