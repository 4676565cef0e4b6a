"""A small trained MusicVAE for the tests of what people do with one (CLI, attribute vectors).

The model is real (training.train on Parquet shards with the dataset schema) but its data is
synthetic: 2-bar melodies built to vary the five attributes of `evaluation.attributes`
independently (notes every 1, 2, 4 or 8 steps, shifted off the beat or not, alternating between
two pitches a chosen interval apart, on C-major or other pitch classes). On such data a tiny
model learns in a few hundred steps to carry those properties in z, which the attribute-vector
test needs; a model trained on a few dozen folk tunes would not.

`trained_model_path(tmp_path_factory)` trains once per session and caches the result in the
session's base temporary folder, so that every test module that asks shares one model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.representation import STEPS_PER_BAR, melody_tokens_from_notes

CONFIG = "cat-mel_2bar_tiny"
NUM_BARS = 2
TRAIN_STEPS = 400
SPLIT_SIZES = {"train": 2048, "eval": 64, "test": 128}
INTERVALS = (0, 2, 5, 7)  # from C all land on C major; from C# none does


def synthetic_melody(rng: np.random.Generator, num_steps: int) -> np.ndarray:
    """One melody of `num_steps` tokens made of five independent factors (see module doc)."""
    period = int(rng.choice([2, 4, 8]))  # note density
    odd_shift = int(rng.integers(0, 2))  # onsets on odd 16ths: 16th-note syncopation
    offbeat_shift = 2 * int(rng.integers(0, 2))  # onsets on the "and": 8th-note syncopation
    interval = int(rng.choice(INTERVALS))  # average interval
    low = 60 + int(rng.integers(0, 2))  # C (C-diatonic) or C# (not)
    starts = np.arange(odd_shift + offbeat_shift, num_steps, period)
    pitches = np.where(np.arange(len(starts)) % 2 == 0, low, low + interval)
    ends = starts + max(1, period - 1)  # a short rest before the next note
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


def trained_model_path(tmp_path_factory) -> Path:
    """model.pt of a tiny 2-bar melody model trained on the synthetic data (once per session)."""
    import torch

    from training.configs import get_config
    from training.train import train

    root = tmp_path_factory.getbasetemp() / "trained_tiny_model"
    model_path = root / "model" / "model.pt"
    if model_path.exists():
        return model_path
    dataset = write_dataset(root / "datasets" / "mel_2bar")
    cfg = get_config(
        CONFIG,
        {
            "max_steps": TRAIN_STEPS,
            "batch_size": 32,
            "transpose_range": 0,
            "checkpoint_every": TRAIN_STEPS,
            "log_every": 50,
        },
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend with other work
    try:
        train(cfg, out_dir=root / "model", dataset_dir=dataset, track=False, progress=False,
              device="cpu")
    finally:
        torch.set_num_threads(threads)
    return model_path
