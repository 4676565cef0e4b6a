"""What the held-out splits share with train, measured and (for short windows) removed.

- `DropNearCopies`: in a short dataset, a 2-bar figure recurs across unrelated tunes, so
  families would chain the whole corpus together; instead, an eval or test window within
  `threshold` of some train window (same key or transposed) is dropped, and counted.
- `MeasureLeakage`: for a seeded sample of each dataset's test windows, the smallest distance to
  any train window, in the same key and transposed, compared with every train window (no index,
  so no approximation): the shares within 5 % and 10 % go to stats.json.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindows

from pipelines.representation import TRACKS
from pipelines.splits import nearcopies

LEAKAGE_THRESHOLDS = (0.05, 0.10)
# Held-out x train pairs verified in one block bucket at most (about a second of numpy); a
# held-out window is a tenth of a bucket, so a common figure's bucket still gets checked.
MAX_BUCKET_PAIRS = 10_000_000


def row_window(row: dict, kind: str) -> np.ndarray:
    return nearcopies.comparable([row[track.column] for track in TRACKS[kind]], kind)


def held_out_in_bucket(
    members: Iterable[tuple[bool, str, bytes]], threshold: float
) -> Iterator[str | beam.pvalue.TaggedOutput]:
    """Ids of the held-out windows of this bucket within `threshold` of one of its train windows.
    Members are (is_train, id, packed window)."""
    members = list(members)
    train = [nearcopies.unpack(data) for is_train, _, data in members if is_train]
    held_out = [(window_id, data) for is_train, window_id, data in members if not is_train]
    if not train or not held_out:
        return
    if len(train) * len(held_out) > MAX_BUCKET_PAIRS:
        yield beam.pvalue.TaggedOutput("skipped", len(members))
        return
    train_windows = np.stack(train)
    limit = nearcopies.max_mismatches(train_windows.shape[1], threshold)
    for window_id, data in held_out:
        _, transposed = nearcopies.mismatches(nearcopies.unpack(data), train_windows)
        if transposed.min() <= limit:
            yield window_id


class DropNearCopies(beam.PTransform):
    """(dataset, row) → (dataset, row), without the eval and test rows of `datasets` that are
    within `threshold` of a train row; {"rows", "dropped": (dataset, split) per dropped row,
    "skipped": (dataset, windows) of each block bucket too common to verify}."""

    def __init__(self, kinds: dict[str, str], threshold: float):
        super().__init__()
        self._kinds = kinds
        self._threshold = threshold

    def expand(self, rows):
        kinds, threshold = self._kinds, self._threshold
        parts = rows | "CheckedOrNot" >> beam.Partition(
            lambda e, _: 0 if e[0] not in kinds else 1 if e[1]["split"] == "train" else 2, 3
        )
        unchecked, train, held_out = parts[0], parts[1], parts[2]

        def blocks(element, is_train: bool):
            dataset, row = element
            window = row_window(row, kinds[dataset])
            value = (is_train, row["id"], nearcopies.pack(window))
            for key in nearcopies.block_keys(window, threshold):
                yield (dataset, key), value

        found = (
            (
                train | "TrainBlocks" >> beam.FlatMap(blocks, is_train=True),
                held_out | "HeldOutBlocks" >> beam.FlatMap(blocks, is_train=False),
            )
            | "AllBlocks" >> beam.Flatten()
            | "GroupByBlock" >> beam.GroupByKey()
            | "Verify"
            >> beam.FlatMapTuple(
                lambda key, members: (
                    (key[0], x)
                    if isinstance(x, str)
                    else beam.pvalue.TaggedOutput("skipped", (key[0], x.value))
                    for x in held_out_in_bucket(members, threshold)
                )
            ).with_outputs("skipped", main="near")
        )
        near = (
            found.near
            | "DistinctNear" >> beam.Distinct()
            | "KeyNear" >> beam.Map(lambda dataset_id: (dataset_id, None))
        )
        keyed = held_out | "KeyHeldOut" >> beam.Map(lambda e: ((e[0], e[1]["id"]), e))
        joined = {"row": keyed, "near": near} | "Join" >> beam.CoGroupByKey()

        def keep_or_drop(element):
            _, grouped = element
            for dataset, row in grouped["row"]:
                if grouped["near"]:
                    yield beam.pvalue.TaggedOutput("dropped", (dataset, row["split"]))
                else:
                    yield dataset, row

        kept = joined | "KeepFar" >> beam.FlatMap(keep_or_drop).with_outputs("dropped", main="rows")
        out = (unchecked, train, kept.rows) | "AllRows" >> beam.Flatten()
        return {"rows": out, "dropped": kept.dropped, "skipped": found.skipped}


def sample_rank(seed: int, window_id: str) -> bytes:
    return hashlib.sha256(f"leakage:{seed}:{window_id}".encode()).digest()


class _MinDistances(beam.DoFn):
    """Train rows → (dataset, [sample, 2] smallest distances so far), in batches of windows."""

    BATCH = 1024

    def __init__(self, kinds: dict[str, str]):
        self._kinds = kinds

    def start_bundle(self):
        self._buffers: dict[str, list[np.ndarray]] = {}
        self._samples: dict[str, np.ndarray] = {}  # unpacked once per bundle, not per batch

    def process(self, element, samples):
        dataset, row = element
        if dataset not in samples:
            return
        if dataset not in self._samples:
            self._samples[dataset] = np.stack([nearcopies.unpack(w) for _, w in samples[dataset]])
        buffer = self._buffers.setdefault(dataset, [])
        buffer.append(row_window(row, self._kinds[dataset]))
        if len(buffer) >= self.BATCH:
            yield dataset, self._flush(dataset)

    def _flush(self, dataset: str) -> np.ndarray:
        batch = np.stack(self._buffers.pop(dataset))
        return nearcopies.min_distances(self._samples[dataset], batch)

    def finish_bundle(self):
        for dataset in list(self._buffers):
            yield GlobalWindows.windowed_value((dataset, self._flush(dataset)))


def _elementwise_min(arrays: Iterable[np.ndarray]) -> np.ndarray | None:
    result = None
    for array in arrays:
        if array is not None:
            result = array if result is None else np.minimum(result, array)
    return result


def leakage_entry(distances: np.ndarray | None, sample_size: int, seed: int) -> dict:
    """The `leakage` entry of stats.json from [sample, 2] smallest distances."""
    entry: dict = {"test_windows_sampled": sample_size, "seed": seed}
    for threshold in LEAKAGE_THRESHOLDS:
        key = f"within_{round(threshold * 100)}pct"
        if distances is None or not len(distances):
            entry[key] = {"same_key": 0.0, "transposed": 0.0}
        else:
            entry[key] = {
                "same_key": round(float((distances[:, 0] <= threshold + 1e-9).mean()), 4),
                "transposed": round(float((distances[:, 1] <= threshold + 1e-9).mean()), 4),
            }
    return entry


class MeasureLeakage(beam.PTransform):
    """(dataset, row) → (dataset, `leakage` entry of stats.json) for the datasets with test
    rows: `sample_size` test windows, chosen by a seeded hash of their id."""

    def __init__(self, kinds: dict[str, str], sample_size: int, seed: int = 0):
        super().__init__()
        self._kinds = kinds
        self._sample_size = sample_size
        self._seed = seed

    def expand(self, rows):
        kinds, seed = self._kinds, self._seed
        samples = (
            rows
            | "TestRows" >> beam.Filter(lambda e: e[1]["split"] == "test")
            | "RankTest"
            >> beam.Map(
                lambda e: (
                    e[0],
                    (sample_rank(seed, e[1]["id"]), nearcopies.pack(row_window(e[1], kinds[e[0]]))),
                )
            )
            | "Sample" >> beam.combiners.Top.PerKey(self._sample_size, reverse=True)
        )
        distances = (
            rows
            | "TrainRows" >> beam.Filter(lambda e: e[1]["split"] == "train")
            | "MinDistances"
            >> beam.ParDo(_MinDistances(kinds), samples=beam.pvalue.AsDict(samples))
            | "MinOverTrain" >> beam.CombinePerKey(_elementwise_min)
        )
        return (
            {"sample": samples, "distances": distances}
            | "JoinLeakage" >> beam.CoGroupByKey()
            | "Entry"
            >> beam.MapTuple(
                lambda dataset, g: (
                    dataset,
                    leakage_entry(
                        g["distances"][0] if g["distances"] else None,
                        len(g["sample"][0]) if g["sample"] else 0,
                        seed,
                    ),
                )
            )
        )
