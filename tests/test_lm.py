"""The interpolation language model: causal, learns real melodies, saves and loads safely."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation import lm
from evaluation.params import LMParams
from evaluation.testset import load_examples
from pipelines.representation import TRACKS


def small_lm(num_classes=(90,)) -> lm.TokenLSTM:
    torch.manual_seed(0)
    return lm.TokenLSTM(lm.LMConfig(num_classes=num_classes, embed_size=8, hidden_size=16))


def test_log_likelihood_at_a_step_depends_only_on_earlier_steps():
    model = small_lm((90, 512))
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 90, (2, 12, 2)))
    before = model.step_log_likelihood(x)
    changed = x.clone()
    changed[:, 7] = (changed[:, 7] + 1) % 90
    after = model.step_log_likelihood(changed)
    torch.testing.assert_close(after[:, :7], before[:, :7])  # the past cannot see step 7
    assert not torch.allclose(after[:, 7:], before[:, 7:])  # step 7 itself and later do


def test_untrained_model_is_near_uniform_and_per_step_values_are_log_probabilities():
    model = small_lm()
    tokens = np.random.default_rng(1).integers(0, 90, (4, 32, 1))
    per_step = lm.mean_step_log_likelihood(model, tokens)
    assert per_step.shape == (4,)
    assert np.all(per_step < 0)
    assert lm.perplexity(model, tokens) == pytest.approx(90, rel=0.1)


def test_bad_tokens_are_rejected():
    model = small_lm()
    with pytest.raises(ValueError, match="outside"):
        lm.mean_step_log_likelihood(model, np.full((1, 8, 1), 90))
    with pytest.raises(ValueError, match=r"\[N, T, 1\]"):
        lm.mean_step_log_likelihood(model, np.zeros((1, 8, 2), dtype=int))


def test_loss_falls_on_real_melodies_and_generalises_to_the_test_split(tiny_datasets):
    folder = os.path.join(tiny_datasets, "mel_2bar")
    train = load_examples(folder, "train", TRACKS["melody"], 2).tokens
    test = load_examples(folder, "test", TRACKS["melody"], 2).tokens
    model = small_lm()
    before = lm.perplexity(model, test)
    losses = lm.train(model, train, steps=60, batch_size=32, learning_rate=1e-2, seed=0)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 1.0
    after = lm.perplexity(model, test)
    # Melodies are mostly "no event" and repeated pitches: far below 90 equally likely classes.
    assert after < before / 3


def test_save_and_load_round_trip_with_weights_only(tmp_path):
    model = small_lm((90, 90, 512))
    path = tmp_path / "lm.pt"
    lm.save_lm(model, path, {"test_perplexity": 3.5})
    blob = torch.load(path, weights_only=True)  # plain dict: no pickled classes
    assert blob["metrics"]["test_perplexity"] == 3.5
    loaded = lm.load_lm(path)
    tokens = np.random.default_rng(2).integers(0, 90, (3, 16, 3))
    np.testing.assert_allclose(
        lm.mean_step_log_likelihood(loaded, tokens), lm.mean_step_log_likelihood(model, tokens)
    )


def test_stage_writes_model_and_metrics(tiny_datasets, tmp_path):
    params = {"train_steps": 40, "hidden_size": 16, "embed_size": 8, "batch_size": 8}
    out = tmp_path / "lm-mel_2bar"
    metrics = lm.run("mel_2bar", LMParams(**params), out, Path(tiny_datasets))
    assert metrics["train_steps"] == 40 and metrics["train_examples"] > 0
    assert 1.0 < metrics["test_perplexity"] < 90.0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert math.isclose(
        lm.perplexity(
            lm.load_lm(out / "lm.pt"),
            load_examples(
                os.path.join(tiny_datasets, "mel_2bar"), "test", TRACKS["melody"], 2, 2000
            ).tokens,
        ),
        metrics["test_perplexity"],
        rel_tol=1e-5,
    )
    with pytest.raises(ValueError, match="unknown dataset"):
        lm.run("mel_3bar", LMParams(), out, Path(tiny_datasets))


def test_stage_is_deterministic(tiny_datasets, tmp_path):
    """Two runs on the same data write the same lm.pt bytes and the same test metrics."""
    params = LMParams(train_steps=5, hidden_size=16, embed_size=8, batch_size=8)
    torch.manual_seed(123)  # whatever the global RNG holds before the stage
    first = lm.run("mel_2bar", params, tmp_path / "a", Path(tiny_datasets))
    torch.manual_seed(456)
    second = lm.run("mel_2bar", params, tmp_path / "b", Path(tiny_datasets))
    assert (tmp_path / "a" / "lm.pt").read_bytes() == (tmp_path / "b" / "lm.pt").read_bytes()
    assert first["test_perplexity"] == second["test_perplexity"]
