"""What the ``Assistant`` is given for bundles: one value, built when a bundle command first asks.

Why a value of its own: the front door's constructor stays one argument
longer, not four, and building the assistant for a question builds none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neoc_assistant.bundles.apply import BundleImporter
from neoc_assistant.bundles.export import BundleExporter


@dataclass(frozen=True)
class BundleTools:
    exporter: BundleExporter
    importer: BundleImporter
    trusted_dir: Path  # the public keys `kb import` accepts (bundles.trusted_keys_dir)
    signing_key: Path | None  # bundles.signing_key: the default for `kb export --key`
    shared_store: bool = False  # store.vector_backend = chroma-server: imports are refused (a laptop's job)
