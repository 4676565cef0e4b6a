"""The examples an evaluation scores: token arrays with their dataset ids, a seeded subset.

`training.data.load_split` reads the tokens of a split in file order; the ids come from the same
files in the same order, so that two models evaluated on one dataset can be compared example by
example (a paired comparison). A cap on the number of examples draws a seeded random subset
(not the first rows: consecutive windows of one tune overlap almost entirely), and the subset
depends only on the dataset, the cap and the seed, never on the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipelines.representation import TrackSpec
from training.configs import CONFIGS
from training.data import load_split, split_files


@dataclass
class Examples:
    tokens: np.ndarray  # [N, T, K] int64
    ids: np.ndarray  # [N] dataset row ids (sha256 of the window's tokens)
    split_size: int  # rows in the split before the cap


def dataset_layout(dataset: str) -> tuple[str, int]:
    """(kind, num_bars) of a dataset name, from the configs that train on it."""
    for values in CONFIGS.values():
        if values.get("dataset") == dataset:
            return values["kind"], int(values["num_bars"])
    known = sorted({v["dataset"] for v in CONFIGS.values()})
    raise ValueError(f"unknown dataset {dataset!r}; known datasets: {known}")


def split_ids(dataset_dir: str | Path, split: str) -> np.ndarray:
    """The `id` column of a split, in the order `load_split` reads its rows.

    Shards without an `id` column (hand-made test data) get positional ids "<shard>:<row>",
    which still pair two evaluations of the same files.
    """
    ids = []
    for path in split_files(str(dataset_dir), split):
        shard = pq.ParquetFile(path)
        if "id" in shard.schema_arrow.names:
            column = shard.read(columns=["id"]).column("id")
            ids.append(column.to_numpy(zero_copy_only=False).astype(str))
        else:
            name = Path(path).name
            ids.append(np.array([f"{name}:{row}" for row in range(shard.metadata.num_rows)]))
    return np.concatenate(ids) if ids else np.zeros(0, dtype=str)


def load_examples(
    dataset_dir: str | Path,
    split: str,
    tracks: list[TrackSpec],
    num_bars: int,
    limit: int | None = None,
    seed: int = 0,
) -> Examples:
    """The examples of one split, at most `limit` of them (a seeded random subset, in file order)."""
    tokens = load_split(str(dataset_dir), split, tracks, num_bars)
    ids = split_ids(dataset_dir, split)
    if len(ids) != len(tokens):
        raise ValueError(f"{dataset_dir}: {len(ids)} ids for {len(tokens)} rows of {split}")
    if len(tokens) == 0:
        raise ValueError(f"{dataset_dir}: the {split} split is empty")
    split_size = len(tokens)
    if limit is not None and limit < split_size:
        keep = np.sort(np.random.default_rng(seed).choice(split_size, limit, replace=False))
        tokens, ids = tokens[keep], ids[keep]
    return Examples(tokens=tokens, ids=ids, split_size=split_size)
