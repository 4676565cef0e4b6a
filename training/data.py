"""Token batches from the Parquet datasets (datasets/<name>/{split}-*.parquet).

`load_split` reads a whole split into one array (evaluation). `BatchStream` is the training
stream: it reads the train shards with pyarrow one record batch at a time, shuffles through a
bounded buffer (never the whole dataset in memory), batches, and augments, and it is a pure
function of (seed, epoch, batch index):

- epoch e visits the shards in an order drawn from a generator seeded with (seed, e), and the
  shuffle buffer draws from the same generator;
- each epoch yields floor(rows / global batch) batches (the remainder is dropped);
- the transposition of batch i of epoch e uses a generator seeded with (seed, e, i).

So the stream's position is just `{"epoch": e, "batch": i}`; `BatchStream(..., position=p)`
regenerates the same epoch and skips i batches, which is how a resumed run continues the same
stream. Under DistributedDataParallel every rank reads the same stream and keeps its slice of
each global batch of world_size * batch_size rows.

Shuffle buffer: rows of each record batch are appended to the buffer; whenever it holds more
than `buffer_size` rows, a random subset of the excess size leaves it (in random order) for the
batcher; at the end of the epoch the rest leaves in random order. Like tf.data's shuffle buffer
(magenta uses 10 x batch size), a row leaves within about buffer_size rows of its reading position.

Transposition augmentation (melody tracks only, as magenta's NoteSequenceAugmenter, which
transposes whole sequences): each training window is shifted by a whole number of semitones
drawn uniformly from the shifts in [-N, N] that keep all its notes in 21..108; a window that no
shift other than 0 fits stays as it is. Resampling among the valid shifts (instead of dropping
windows, which magenta's converter does) keeps every window and never produces an invalid pitch.
The tracks of a trio move together; drums never move.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.representation import (
    MELODY_CLASSES,
    MELODY_FIRST_PITCH_TOKEN,
    STEPS_PER_BAR,
    TrackSpec,
)

RECORD_BATCH_ROWS = 1024


def split_files(dataset_dir: str, split: str) -> list[str]:
    """The shards of one split, sorted; FileNotFoundError when there are none."""
    files = sorted(glob.glob(os.path.join(dataset_dir, f"{split}-*.parquet")))
    if not files:
        raise FileNotFoundError(
            f"no {split}-*.parquet in {dataset_dir!r}: build the dataset first "
            "(python -m pipelines.examples)"
        )
    return files


def _column_tokens(column: pa.Array, length: int, spec: TrackSpec, where: str) -> np.ndarray:
    """list<int16> column -> [n, length] int16, checking lengths and token ranges."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise ValueError(f"{where}: column {spec.column!r} has null rows")
    offsets = np.asarray(column.offsets)
    lengths = np.diff(offsets)
    if len(lengths) and (lengths != length).any():
        bad = int(np.flatnonzero(lengths != length)[0])
        raise ValueError(
            f"{where}: row {bad} of column {spec.column!r} has {lengths[bad]} tokens, "
            f"expected {length}"
        )
    values = np.asarray(column.values)[offsets[0] : offsets[-1]]
    if values.size and (values.min() < 0 or values.max() >= spec.num_classes):
        raise ValueError(
            f"{where}: column {spec.column!r} has tokens outside [0, {spec.num_classes})"
        )
    return values.astype(np.int16).reshape(len(lengths), length)


def _record_batch_tokens(
    batch: pa.RecordBatch, tracks: list[TrackSpec], length: int, where: str
) -> np.ndarray:
    return np.stack(
        [_column_tokens(batch.column(t.column), length, t, where) for t in tracks], axis=-1
    )


def _read_chunks(path: str, tracks: list[TrackSpec], length: int) -> Iterator[np.ndarray]:
    """[n, length, K] int16 arrays, one per record batch of one shard."""
    columns = [t.column for t in tracks]
    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"{path}: not a readable Parquet file ({err})") from err
    missing = [c for c in columns if c not in reader.schema_arrow.names]
    if missing:
        raise ValueError(f"{path}: missing token columns {missing}")
    for batch in reader.iter_batches(batch_size=RECORD_BATCH_ROWS, columns=columns):
        yield _record_batch_tokens(batch, tracks, length, path)


def load_split(
    dataset_dir: str,
    split: str,
    tracks: list[TrackSpec],
    num_bars: int,
    limit: int | None = None,
) -> np.ndarray:
    """A whole split (in file order) as an int64 array [N, num_bars * 16, K]."""
    length = num_bars * STEPS_PER_BAR
    chunks, rows = [], 0
    for path in split_files(dataset_dir, split):
        for chunk in _read_chunks(path, tracks, length):
            chunks.append(chunk)
            rows += len(chunk)
            if limit is not None and rows >= limit:
                return np.concatenate(chunks)[:limit].astype(np.int64)
    if not chunks:
        return np.zeros((0, length, len(tracks)), dtype=np.int64)
    return np.concatenate(chunks).astype(np.int64)


def count_rows(dataset_dir: str, split: str) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in split_files(dataset_dir, split))


def transpose(
    batch: np.ndarray, tracks: list[TrackSpec], max_shift: int, rng: np.random.Generator
) -> np.ndarray:
    """Shift the melody tracks of each window by a random valid number of semitones."""
    melodic = [k for k, t in enumerate(tracks) if t.track_type == "melody"]
    if max_shift <= 0 or not melodic:
        return batch
    tokens = batch[..., melodic].reshape(len(batch), -1)
    is_pitch = tokens >= MELODY_FIRST_PITCH_TOKEN
    lowest = np.where(is_pitch, tokens, MELODY_CLASSES).min(axis=1)
    highest = np.where(is_pitch, tokens, -1).max(axis=1)
    has_notes = is_pitch.any(axis=1)
    low = np.where(has_notes, np.maximum(-max_shift, MELODY_FIRST_PITCH_TOKEN - lowest), 0)
    high = np.where(has_notes, np.minimum(max_shift, MELODY_CLASSES - 1 - highest), 0)
    shift = low + np.floor(rng.random(len(batch)) * (high - low + 1)).astype(np.int64)
    shifted = np.where(is_pitch, tokens + shift[:, None], tokens)
    out = batch.copy()
    out[..., melodic] = shifted.reshape(len(batch), batch.shape[1], len(melodic))
    return out


class BatchStream:
    """Endless, seeded, resumable stream of training batches [batch_size, T, K] (int64).

    `position` is where the next batch comes from: {"epoch": e, "batch": i}.
    """

    def __init__(
        self,
        dataset_dir: str,
        tracks: list[TrackSpec],
        num_bars: int,
        batch_size: int,
        *,
        seed: int = 0,
        buffer_size: int = 5120,
        transpose_range: int = 0,
        rank: int = 0,
        world_size: int = 1,
        position: dict | None = None,
        split: str = "train",
    ):
        self.files = split_files(dataset_dir, split)
        self.tracks = tracks
        self.length = num_bars * STEPS_PER_BAR
        self.batch_size = batch_size
        self.global_batch = batch_size * world_size
        self.rank = rank
        self.seed = seed
        self.buffer_size = buffer_size
        self.transpose_range = transpose_range
        rows = sum(pq.ParquetFile(p).metadata.num_rows for p in self.files)
        self.batches_per_epoch = rows // self.global_batch
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{dataset_dir!r} has {rows} {split} examples, fewer than one batch of "
                f"{self.global_batch} (batch_size {batch_size} x {world_size} processes)"
            )
        position = position or {"epoch": 0, "batch": 0}
        self.epoch, self.batch = int(position["epoch"]), int(position["batch"])
        self._iterator = self._epoch_batches(self.epoch, skip=self.batch)

    @property
    def position(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> np.ndarray:
        while True:
            try:
                rows = next(self._iterator)
                break
            except StopIteration:
                self.epoch, self.batch = self.epoch + 1, 0
                self._iterator = self._epoch_batches(self.epoch, skip=0)
        augment = np.random.default_rng([self.seed, self.epoch, self.batch])
        self.batch += 1
        rows = transpose(rows.astype(np.int64), self.tracks, self.transpose_range, augment)
        return rows[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]

    def _epoch_batches(self, epoch: int, skip: int) -> Iterator[np.ndarray]:
        """Global batches of one epoch, the first `skip` of them not yielded."""
        emitted = 0
        pending: list[np.ndarray] = []
        pending_rows = 0
        for rows in self._shuffled_rows(epoch):
            pending.append(rows)
            pending_rows += len(rows)
            if pending_rows < self.global_batch:
                continue
            joined = np.concatenate(pending)
            whole = len(joined) // self.global_batch * self.global_batch
            for start in range(0, whole, self.global_batch):
                if emitted >= skip:
                    yield joined[start : start + self.global_batch]
                emitted += 1
                if emitted == self.batches_per_epoch:
                    return
            pending, pending_rows = [joined[whole:]], len(joined) - whole

    def _shuffled_rows(self, epoch: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        buffer = np.zeros((0, self.length, len(self.tracks)), dtype=np.int16)
        for index in rng.permutation(len(self.files)):
            for chunk in _read_chunks(self.files[index], self.tracks, self.length):
                buffer = np.concatenate([buffer, chunk])
                excess = len(buffer) - self.buffer_size
                if excess > 0:
                    order = rng.permutation(len(buffer))
                    yield buffer[order[:excess]]
                    buffer = buffer[order[excess:]]
        yield buffer[rng.permutation(len(buffer))]
