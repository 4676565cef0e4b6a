"""training.data: whole splits, the seeded resumable shuffled stream, transposition, bad input."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.representation import TRACKS
from training.data import BatchStream, count_rows, load_split, split_files, transpose

MELODY = TRACKS["melody"]
TRIO = TRACKS["trio"]


def write_shard(path, columns: dict[str, np.ndarray], split="train") -> None:
    """A Parquet shard in the schema of docs/architecture.md (token columns list<int16>)."""
    n = len(next(iter(columns.values())))
    table = {
        "id": pa.array([f"{os.path.basename(path)}-{i}" for i in range(n)]),
        "source_id": pa.array(["s"] * n),
        "source_path": pa.array(["x.mid"] * n),
        "split": pa.array([split] * n),
        "start_bar": pa.array(np.arange(n, dtype=np.int32)),
        "program": pa.array(np.zeros(n, dtype=np.int32)),
    }
    for name, tokens in columns.items():
        table[name] = pa.array([list(map(int, row)) for row in tokens], type=pa.list_(pa.int16()))
    pq.write_table(pa.table(table), path, row_group_size=37)


@pytest.fixture
def melody_dir(tmp_path):
    """Three train shards of 2-bar melodies; row i's first token is a unique id (as pitch)."""
    rng = np.random.default_rng(0)
    rows = 0
    for shard, n in enumerate((50, 70, 30)):
        tokens = rng.integers(0, 2, size=(n, 32))  # no events / note-offs
        tokens[:, 0] = 2 + (rows + np.arange(n)) % 88  # distinct enough to follow rows
        tokens[:, 5] = rows + np.arange(n) > 87  # rows >= 88 get a note-off marker
        write_shard(tmp_path / f"train-{shard:05d}-of-00003.parquet", {"tokens": tokens})
        rows += n
    write_shard(tmp_path / "eval-00000-of-00001.parquet", {"tokens": tokens[:7]}, "eval")
    return str(tmp_path)


def row_keys(batch: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in batch]


def test_load_split_reads_every_row_in_file_order(melody_dir):
    data = load_split(melody_dir, "train", MELODY, num_bars=2)
    assert data.shape == (150, 32, 1) and data.dtype == np.int64
    assert count_rows(melody_dir, "train") == 150
    first = pq.read_table(split_files(melody_dir, "train")[0]).column("tokens").to_pylist()
    assert data[:50, :, 0].tolist() == first
    assert load_split(melody_dir, "eval", MELODY, 2, limit=3).shape == (3, 32, 1)


def test_load_split_of_a_real_dataset(tiny_datasets):
    folder = os.path.join(tiny_datasets, "trio_16bar")
    data = load_split(folder, "train", TRIO, num_bars=16)
    assert data.shape == (count_rows(folder, "train"), 256, 3)
    assert data[..., :2].max() < 90 and data[..., 2].max() < 512
    assert (data[..., 2] > 0).any()  # drums are there


def test_stream_is_seeded_and_one_epoch_is_a_permutation(melody_dir):
    def first_batches(seed, n):
        stream = BatchStream(melody_dir, MELODY, 2, 30, seed=seed, buffer_size=40)
        return [next(stream) for _ in range(n)]

    epoch = first_batches(0, 5)  # 150 rows / 30 = 5 batches
    assert all(b.shape == (30, 32, 1) and b.dtype == np.int64 for b in epoch)
    keys = sum((row_keys(b) for b in epoch), [])
    assert sorted(keys) == sorted(row_keys(load_split(melody_dir, "train", MELODY, 2)))
    assert all(np.array_equal(a, b) for a, b in zip(epoch, first_batches(0, 5), strict=True))
    other = first_batches(1, 5)
    assert not all(np.array_equal(a, b) for a, b in zip(epoch, other, strict=True))
    # The next epoch is another order of the same rows.
    stream = BatchStream(melody_dir, MELODY, 2, 30, seed=0, buffer_size=40)
    both = [next(stream) for _ in range(10)]
    assert stream.position == {"epoch": 1, "batch": 5}  # the next batch starts epoch 2
    assert sorted(sum((row_keys(b) for b in both[5:]), [])) == sorted(keys)
    assert sum((row_keys(b) for b in both[5:]), []) != keys


def test_stream_resumes_from_its_position(melody_dir):
    stream = BatchStream(melody_dir, MELODY, 2, 32, seed=3, buffer_size=25, transpose_range=4)
    batches = [next(stream) for _ in range(9)]  # 4 batches per epoch (150 // 32)
    for k in (0, 3, 4, 6):
        stream = BatchStream(melody_dir, MELODY, 2, 32, seed=3, buffer_size=25, transpose_range=4)
        for _ in range(k):
            next(stream)
        resumed = BatchStream(
            melody_dir,
            MELODY,
            2,
            32,
            seed=3,
            buffer_size=25,
            transpose_range=4,
            position=stream.position,
        )
        rest = [next(resumed) for _ in range(9 - k)]
        assert all(np.array_equal(a, b) for a, b in zip(batches[k:], rest, strict=True)), k


def test_shuffle_buffer_bounds_how_far_rows_travel(melody_dir):
    """Rows mix only through the bounded buffer: with a 1-row buffer the first batch comes from
    one shard (plus at most the buffered row); with a buffer as large as the data it mixes
    shards."""
    data = load_split(melody_dir, "train", MELODY, 2)
    shard_of = {row.tobytes(): (i >= 50) + (i >= 120) for i, row in enumerate(data)}

    def shards_in_first_batch(buffer_size):
        batch = next(BatchStream(melody_dir, MELODY, 2, 30, seed=4, buffer_size=buffer_size))
        return [shard_of[key] for key in row_keys(batch)]

    small = shards_in_first_batch(1)
    assert max(small.count(s) for s in set(small)) >= 29
    assert len(set(shards_in_first_batch(150))) > 1


def test_distributed_ranks_take_disjoint_halves_of_each_global_batch(melody_dir):
    single = BatchStream(melody_dir, MELODY, 2, 40, seed=2, buffer_size=30)
    ranks = [
        BatchStream(melody_dir, MELODY, 2, 20, seed=2, buffer_size=30, rank=r, world_size=2)
        for r in range(2)
    ]
    for _ in range(5):
        whole = next(single)
        assert np.array_equal(np.concatenate([next(ranks[0]), next(ranks[1])]), whole)


def test_transposition_keeps_every_pitch_in_range_and_moves_trio_tracks_together():
    rng = np.random.default_rng(0)
    batch = np.zeros((400, 32, 3), dtype=np.int64)
    batch[:, ::4, 0] = rng.integers(2, 90, size=(400, 8))  # melody notes
    batch[:, 1::4, 0] = 1  # note-offs
    batch[:, ::8, 1] = rng.integers(2, 20, size=(400, 4))  # low bass
    batch[:, :, 2] = rng.integers(0, 512, size=(400, 32))  # drums
    batch[0, 0, 0], batch[0, 4, 0] = 2, 89  # full range: only shift 0 fits
    out = transpose(batch, TRIO, 5, np.random.default_rng(1))
    assert np.array_equal(out[..., 2], batch[..., 2])  # drums never move
    notes = batch[..., :2] >= 2
    assert np.array_equal(out[..., :2][~notes], batch[..., :2][~notes])  # no-events, note-offs
    assert out[..., :2][notes].min() >= 2 and out[..., :2][notes].max() <= 89
    shifts = (out[..., :2] - batch[..., :2])[notes].reshape(-1)
    per_window = [np.unique((out[i, ..., :2] - batch[i, ..., :2])[notes[i]]) for i in range(400)]
    assert all(len(s) == 1 for s in per_window)  # one shift per window, melody and bass alike
    assert per_window[0].tolist() == [0]
    assert set(np.unique(shifts)) <= set(range(-5, 6)) and len(np.unique(shifts)) == 11
    assert np.array_equal(transpose(batch, TRIO, 0, np.random.default_rng(1)), batch)


def test_bad_datasets_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no train"):
        load_split(str(tmp_path), "train", MELODY, 2)
    write_shard(tmp_path / "train-00000-of-00001.parquet", {"tokens": np.zeros((5, 32), int)})
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchStream(str(tmp_path), MELODY, 2, 8)
    with pytest.raises(ValueError, match="has 32 tokens, expected 256"):
        load_split(str(tmp_path), "train", MELODY, 16)
    with pytest.raises(ValueError, match="missing token columns"):
        load_split(str(tmp_path), "train", TRIO, 2)
    bad = np.zeros((5, 32), int)
    bad[3, 7] = 90
    write_shard(tmp_path / "train-00000-of-00001.parquet", {"tokens": bad})
    with pytest.raises(ValueError, match=r"outside \[0, 90\)"):
        load_split(str(tmp_path), "train", MELODY, 2)
    (tmp_path / "train-00000-of-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        load_split(str(tmp_path), "train", MELODY, 2)
