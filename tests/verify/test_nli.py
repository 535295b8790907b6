"""The optional NLI cross-encoder: refused with one line when missing or not an NLI model, and
read as entailment probabilities when it is one (a tiny random model: the code path is real)."""

from __future__ import annotations

import numpy as np
import pytest

from neoc_assistant.errors import ModelError
from neoc_assistant.verify.nli import CrossEncoderEntailment


def _tiny_classifier(directory, labels: dict[int, str]):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from neoc_assistant.settings import bundled_embedding_model_path

    tokenizer = AutoTokenizer.from_pretrained(bundled_embedding_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(labels), id2label=labels,
                        label2id={v: k for k, v in labels.items()})
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_missing_directory_is_one_line(tmp_path):
    with pytest.raises(ModelError, match="NLI model directory not found"):
        CrossEncoderEntailment(str(tmp_path / "nowhere")).entailment(["a"], ["b"])


def test_a_model_without_an_entailment_label_is_refused(tmp_path):
    path = _tiny_classifier(tmp_path / "relevance", {0: "LABEL_0"})
    with pytest.raises(ModelError, match="is not an NLI model"):
        CrossEncoderEntailment(str(path)).entailment(["a"], ["b"])


def test_entailment_is_the_entailment_labels_probability(tmp_path):
    path = _tiny_classifier(tmp_path / "nli", {0: "contradiction", 1: "entailment", 2: "neutral"})
    scorer = CrossEncoderEntailment(str(path))
    premises = ["Each person needs 15 litres of water per day.", "Boats are stored at the depot."]
    hypotheses = ["People need 15 litres of water.", "The depot has no boats."]
    probabilities = scorer.entailment(premises, hypotheses)
    assert probabilities.shape == (2,) and np.all((probabilities > 0) & (probabilities < 1))
    assert scorer._index == 1
    # the same pair gives the same probability (softmax over the three labels, column "entailment")
    assert scorer.entailment(premises[:1], hypotheses[:1])[0] == pytest.approx(probabilities[0], rel=1e-5)
