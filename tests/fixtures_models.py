"""Small trained MusicVAEs for the tests of what people do with one (CLI, attribute vectors).

The models are real (training.train on Parquet shards of the dataset schema) but their data is
synthetic: 2-bar melodies made of graded factors that drive the five attributes of
`evaluation.cli.attributes` (every beat has a note; the first k beats add a note on their last 16th,
the last m beats one on their "and"; the notes alternate between two pitches a chosen interval
apart, from C or from C#). On such data a tiny model learns in a few hundred steps to carry
those factors in z, which the attribute-vector test needs; a tiny model trained on a few dozen
folk tunes would not.

`train_model(tmp_path_factory, name, overrides)` trains once per session and keeps the result in
the session's base temporary folder, so that every test module that asks shares one model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.representation import STEPS_PER_BAR, melody_tokens_from_notes

CONFIG = "cat-mel_2bar_tiny"
NUM_BARS = 2
SPLIT_SIZES = {"train": 2048, "eval": 64, "test": 128}
# A few dozen steps: enough for every command to run on a real model, not to make music.
QUICK = {"max_steps": 30, "checkpoint_every": 30}
# Enough for attribute vectors to work (measured: reconstruction ~0.85, every vector moves its
# attribute): wider LSTMs, a higher learning rate, a constant beta (magenta's warm-up would keep
# it near 0 for all these steps) and no scheduled sampling (its step-by-step path is slower).
TRAINED = {
    "max_steps": 700,
    "checkpoint_every": 700,
    "enc_rnn_size": [64],
    "dec_rnn_size": [64],
    "batch_size": 64,
    "learning_rate": 0.005,
    "beta_rate": 0.0,
    "max_beta": 0.2,
    "sampling_schedule": "constant",
    "sampling_rate": 0.0,
    "seed": 1,
}
INTERVALS = (0, 2, 5, 7)  # from C all land on C major; from C# none does


def synthetic_melody(rng: np.random.Generator, num_steps: int) -> np.ndarray:
    """One melody of `num_steps` tokens made of graded factors (see module doc)."""
    beats = num_steps // 4
    odd_beats = int(rng.integers(0, beats + 1))  # the first ones get a note on their 4th 16th
    offbeat_beats = int(rng.integers(0, beats + 1))  # the last ones get a note on their "and"
    interval = int(rng.choice(INTERVALS))
    low = 60 + int(rng.integers(0, 2))  # C (C-diatonic) or C# (not)
    starts = [4 * beat for beat in range(beats)]
    starts += [4 * beat + 3 for beat in range(odd_beats)]
    starts += [4 * beat + 2 for beat in range(beats - offbeat_beats, beats)]
    starts = np.sort(np.array(starts))
    pitches = np.where(np.arange(len(starts)) % 2 == 0, low, low + interval)
    ends = np.r_[starts[1:], num_steps]
    return melody_tokens_from_notes(starts, ends, pitches, num_steps).astype(np.int16)


def synthetic_melodies(n: int, seed: int, num_bars: int = NUM_BARS) -> np.ndarray:
    """``[n, num_bars * 16]`` int16 melody tokens."""
    rng = np.random.default_rng(seed)
    return np.stack([synthetic_melody(rng, num_bars * STEPS_PER_BAR) for _ in range(n)])


def write_dataset(root: Path, seed: int = 0) -> Path:
    """A mel_2bar-shaped dataset folder (train/eval/test shards, token column only)."""
    root.mkdir(parents=True, exist_ok=True)
    for index, (split, size) in enumerate(SPLIT_SIZES.items()):
        tokens = synthetic_melodies(size, seed=seed + index)
        table = pa.table({"tokens": pa.array(tokens.tolist(), type=pa.list_(pa.int16()))})
        pq.write_table(table, root / f"{split}-00000-of-00001.parquet")
    return root


def train_model(tmp_path_factory, name: str, overrides: dict) -> Path:
    """model.pt of CONFIG with `overrides`, trained on the synthetic data once per session."""
    import torch

    from training.configs import get_config
    from training.train import train

    root = tmp_path_factory.getbasetemp() / "synthetic_models"
    model_path = root / name / "model.pt"
    if model_path.exists():
        return model_path
    dataset = root / "datasets" / "mel_2bar"
    if not dataset.exists():
        write_dataset(dataset)
    cfg = get_config(CONFIG, {"transpose_range": 0, "log_every": 50, **overrides})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend with other work
    try:
        train(cfg, out_dir=root / name, dataset_dir=dataset, track=False, progress=False)
    finally:
        torch.set_num_threads(threads)
    return model_path


def dataset_dir(tmp_path_factory) -> Path:
    """The synthetic dataset folder the models were trained on."""
    return tmp_path_factory.getbasetemp() / "synthetic_models" / "datasets" / "mel_2bar"
