"""Helpers for the retrieval tests: a small corpus and a tiny random CrossEncoder."""

from __future__ import annotations

from pathlib import Path

from neoc_assistant.settings import bundled_embedding_model_path

# Small, topic-distinct documents; each has a rare identifier BM25 can latch onto.
SMALL_CORPUS: dict[str, str] = {
    "sops/flood.md": (
        "# Flood Response SOP\n\n## Gauges\nWhen the river gauge at Chisapani crosses the danger level of 10.8 m, "
        "the duty officer sends the SMS warning and sounds the sirens within 15 minutes. Rescue boats are "
        "pre-positioned in Saptari and Bardiya by 15 June.\n\n## Evacuation\nLow-lying wards are evacuated "
        "when the danger level is forecast within six hours.\n"
    ),
    "sops/earthquake.md": (
        "# Earthquake Response SOP\n\n## Aftershocks\nAfter a strong aftershock, rescuers leave collapsed "
        "structures and wait 30 minutes before re-entry. Damaged houses get a red, yellow or green safety tag.\n"
    ),
    "sops/cold-wave.md": (
        "# Cold Wave SOP\n\n## Thresholds\nA cold wave alert is issued in the Terai when the minimum temperature "
        "stays below 5 degrees Celsius for three consecutive days. Warming centres open from 18:00 to 08:00.\n"
    ),
    "forms/generator-log.txt": (
        "Generator fuel log GX-4471\n\nThe standby generator GX-4471 must hold at least 50 percent diesel at every "
        "shift change. Record the fuel level, engine hours and the officer's initials on each line.\n"
    ),
    "forms/radio-plan.txt": (
        "Radio communications plan\n\nThe communications unit leader prepares the radio plan listing VHF channels, "
        "repeaters and call signs. If channel 1 fails, switch to channel 3, the backup repeater.\n"
    ),
    "handbook.md": (
        "# Shelter Handbook\n\n## Registration\nEvery family arriving at an evacuation shelter is registered within "
        "24 hours; women make up at least half of the shelter management committee.\n"
    ),
}


def write_corpus(root: Path, files: dict[str, str] = SMALL_CORPUS) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def build_tiny_cross_encoder(directory: Path) -> Path:
    """A randomly initialised 1-layer BERT sequence classifier (1 label) with the MiniLM tokenizer.

    Loads as a sentence-transformers ``CrossEncoder``; scores are noise, but the code
    path (loading, pair encoding, truncation, batching) is the real one.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bundled_embedding_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
