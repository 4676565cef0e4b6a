"""The parameters of the evaluation stages: one typed dataclass per section of params.yaml.

Every evaluation stage reads its own section and nothing else, the same way:
``python -m evaluation.<stage> --params params.yaml`` -> `read_params(path, SECTION, Params)`.
The dataclass defaults are the default profile's values (a test holds params.yaml to them), so
that a stage run by hand without params.yaml behaves as the DAG's.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

P = TypeVar("P")


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
    num_threads: int = 1  # torch CPU threads; 0 = torch's default (1 is faster on a busy machine)
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
    lm: str | None = "models/lm-{model}/lm.pt"  # {model}, {dataset}; null/absent: no naturalness
    num_samples: int = 8  # prior samples rendered as MIDI and piano roll
    sample_temperature: float = 0.5
    num_reconstruction_plots: int = 4
    num_interpolation_plots: int = 2
    active_unit_threshold: float = 0.01
    qpm: float = 120.0
    num_threads: int = 1  # torch CPU threads; 0 = torch's default (1 is faster on a busy machine)


@dataclass(frozen=True)
class RegisterParams:
    """`register:`, the Model Registry (evaluation/registry/register.py)."""

    metric: str = "sampled_accuracy"  # evaluation metric that ranks versions (higher is better)


def read_section(path: str | Path, section: str) -> dict[str, Any]:
    """``params[section]``; an absent file or section gives {} so that defaults apply."""
    path = Path(path)
    if not path.exists():
        return {}
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    value = params.get(section) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: section {section!r} must be a mapping")
    return dict(value)


def from_mapping(cls: type[P], section: str, values: Mapping[str, Any]) -> P:
    """`cls` with `values` over its defaults; an unknown key or a value of the wrong type raises."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ValueError(f"unknown {section} parameters {unknown}; valid: {sorted(hints)}")
    for name, value in values.items():
        allowed = typing.get_args(hints[name]) or (hints[name],)  # int | None -> (int, NoneType)
        if float in allowed:
            allowed += (int,)  # YAML writes 3 for 3.0
        if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{section}.{name} = {value!r}: expected {names}")
    return cls(**values)


def read_params(path: str | Path | None, section: str, cls: type[P]) -> P:
    """Section `section` of the params file at `path` as `cls` (its defaults without a file)."""
    return from_mapping(cls, section, read_section(path, section) if path else {})
