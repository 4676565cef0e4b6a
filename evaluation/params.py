"""The parameters of the evaluation stages: one typed dataclass per section of params.yaml.

Every evaluation stage reads its own section and nothing else, the same way as the other stages:
``--params params.yaml`` -> `pipelines.params.read_params(path, SECTION, Params)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LMParams:
    """`lm:`, the interpolation language model (evaluation/lm.py)."""

    embed_size: int = 32
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    batch_size: int = 32
    train_steps: int = 600
    learning_rate: float = 0.003
    max_minutes: float = 3.0  # training-time budget; 0 = none
    num_threads: int = 1  # torch CPU threads; 0 = torch's default (every core)
    seed: int = 0
    max_test_examples: int = 2000


@dataclass(frozen=True)
class EvaluateParams:
    """`evaluate:`, one model on the test split of its dataset (evaluation/evaluate.py)."""

    max_examples: int | None = 512  # test examples scored (a seeded subset; None = the whole split)
    batch_size: int = 128
    n_resamples: int = 2000  # bootstrap resamples per interval
    seed: int = 0
    interpolation_pairs: int = 32
    interpolation_steps: int = 11
    lm: str | None = "models/lm-{dataset}/lm.pt"  # {model}, {dataset}; null/absent: no naturalness
    num_samples: int = 8  # prior samples rendered as MIDI and piano roll
    # Of the prior samples and of the sampled interpolants (0: no sampled interpolants).
    sample_temperature: float = 0.5
    num_reconstruction_plots: int = 4
    num_interpolation_plots: int = 2
    qpm: float = 120.0
    num_threads: int = 1  # torch CPU threads; 0 = torch's default (every core)


@dataclass(frozen=True)
class CompareParams:
    """`compare:`, hierarchical vs flat on the same test windows (evaluation/compare.py)."""

    n_resamples: int = 2000  # bootstrap resamples per paired interval
    seed: int = 0


@dataclass(frozen=True)
class RegisterParams:
    """`register:`, the Model Registry (evaluation/registry/register.py)."""

    metric: str = "sampled_accuracy"  # evaluation metric that ranks versions (higher is better)
