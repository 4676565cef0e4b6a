"""WriteSortedParquet: the bytes it writes depend on the rows only, not on their order, bundles
or the runner's workers (the stages' own runs are compared in test_examples.py)."""

from __future__ import annotations

import fnmatch
import glob
import os
import pathlib
import random

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing import test_pipeline

from pipelines.beamio import parquet as beam_parquet
from pipelines.beamio import spill

IN_MEMORY = ["--direct_running_mode=in_memory"]
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("n", pa.int32()),
        ("tokens", pa.list_(pa.int16())),
        ("note", pa.string()),
    ]
)


def make_rows(count: int) -> list[dict]:
    rng = random.Random(0)
    return [
        {
            "id": f"{rng.getrandbits(256):064x}",
            "n": i,
            "tokens": [rng.randrange(90) for _ in range(32)],
            "note": None if i % 7 == 0 else f"row {i}",
        }
        for i in range(count)
    ]


def write(rows: list[dict], prefix: str, **kw) -> dict[str, bytes]:
    """Runs the transform in a TestPipeline; returns {file name: bytes} of what it wrote."""
    with test_pipeline.TestPipeline(argv=IN_MEMORY) as p:
        _ = (
            p
            | beam.Create(rows, reshuffle=True)
            | beam_parquet.WriteSortedParquet(prefix, SCHEMA, ("id",), **kw)
        )
    files = sorted(glob.glob(f"{prefix}-*"))
    return {os.path.basename(f): pathlib.Path(f).read_bytes() for f in files}


def test_stable_shard_is_the_same_in_every_process():
    # Fixed values: Python's hash() of a str is salted per process and would fail this.
    assert [beam_parquet.stable_shard((s,), 1000) for s in ("a", "b", "abc")] == [303, 28, 66]
    assert beam_parquet.stable_shard(("x", 3), 1000) == 711
    counts = [0] * 4
    for row in make_rows(4000):
        counts[beam_parquet.stable_shard((row["id"],), 4)] += 1
    assert min(counts) > 900  # spread evenly


def test_same_rows_in_any_order_give_the_same_files(tmp_path):
    rows = make_rows(700)
    first = write(rows, f"{tmp_path}/a/part", num_shards=3, record_batch_rows=50)
    shuffled = rows[::-1]
    random.Random(1).shuffle(shuffled)
    second = write(shuffled, f"{tmp_path}/b/part", num_shards=3, record_batch_rows=50)
    assert list(first) == [f"part-{i:05d}-of-00003.parquet" for i in range(3)]
    assert first == second
    # Each file holds the rows of its shard, sorted by the key, with the nulls it was given.
    read = []
    for i, name in enumerate(first):
        table = pq.read_table(f"{tmp_path}/a/{name}")
        assert table.schema == SCHEMA
        ids = table.column("id").to_pylist()
        assert ids == sorted(ids)
        assert {beam_parquet.stable_shard((k,), 3) for k in ids} == {i}
        read += table.to_pylist()
    assert sorted(read, key=lambda r: r["n"]) == rows
    # No timestamps or paths in the metadata: only the writer's version and the schema.
    metadata = pq.ParquetFile(f"{tmp_path}/a/{next(iter(first))}").metadata
    assert set(metadata.metadata) == {b"ARROW:schema"}
    assert metadata.created_by.startswith("parquet-cpp-arrow version")


def test_shard_count_follows_the_row_count(tmp_path):
    files = write(make_rows(250), f"{tmp_path}/part", max_rows_per_shard=100)
    assert list(files) == [f"part-{i:05d}-of-00003.parquet" for i in range(3)]
    assert sum(pq.read_metadata(f"{tmp_path}/{f}").num_rows for f in files) == 250


@pytest.mark.parametrize(("num_shards", "files"), [(0, 1), (2, 2)])
def test_empty_input_writes_readable_empty_files(tmp_path, num_shards, files):
    written = write([], f"{tmp_path}/train", num_shards=num_shards)
    assert list(written) == [f"train-{i:05d}-of-{files:05d}.parquet" for i in range(files)]
    for name in written:
        table = pq.read_table(f"{tmp_path}/{name}")
        assert table.num_rows == 0 and table.schema == SCHEMA


def test_shards_that_no_row_hashed_to_are_written_empty(tmp_path):
    files = write(make_rows(2), f"{tmp_path}/part", num_shards=5)
    assert len(files) == 5
    assert sum(pq.read_metadata(f"{tmp_path}/{f}").num_rows for f in files) == 2


def test_row_groups_are_cut_by_size_and_the_same_every_time(tmp_path):
    rows = make_rows(1000)

    def row_groups(path: str) -> list[int]:
        with open(path, "wb") as f:
            beam_parquet.write_parquet(
                f, rows, SCHEMA, row_group_bytes=2**14, record_batch_rows=100
            )
        metadata = pq.read_metadata(path)
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]

    groups = row_groups(f"{tmp_path}/a.parquet")
    assert len(groups) > 3 and sum(groups) == 1000 and all(g % 100 == 0 for g in groups[:-1])
    assert row_groups(f"{tmp_path}/b.parquet") == groups
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_rows_with_equal_keys_are_ordered_by_content():
    rows = [{"id": "same", "n": n, "tokens": [n], "note": None} for n in (3, 1, 2)]
    orders = {
        tuple(r["n"] for r in beam_parquet.sorted_rows(perm, ("id",), SCHEMA))
        for perm in (rows, rows[::-1], rows[1:] + rows[:1])
    }
    assert len(orders) == 1


def test_a_failed_write_leaves_no_file(tmp_path):
    writer = beam_parquet._WriteShard(f"{tmp_path}/part", ".parquet", SCHEMA, ("id",), {})
    bad = [{"id": "x", "n": "not a number", "tokens": [], "note": None}]
    with pytest.raises(pa.ArrowInvalid):
        list(writer.process((0, bad), num_shards=1))
    assert os.listdir(tmp_path) == []
    assert list(writer.process((0, make_rows(3)), num_shards=1)) == [
        f"{tmp_path}/part-00000-of-00001.parquet"
    ]
    assert os.listdir(tmp_path) == ["part-00000-of-00001.parquet"]


def test_temporary_files_are_not_read_as_outputs():
    temp = "train-00000-of-00001.parquet" + beam_parquet.TEMP_MARK + "0123abcd"
    assert not fnmatch.fnmatch(temp, "train-*.parquet")
    assert fnmatch.fnmatch(temp, beam_parquet.temp_pattern("train-*.parquet"))


def test_spilled_and_shuffled_rows_give_the_same_files(tmp_path):
    rows = make_rows(700)
    spilled = write(rows, f"{tmp_path}/a/part", max_rows_per_shard=200, spill=True)
    shuffled = write(rows, f"{tmp_path}/b/part", max_rows_per_shard=200, spill=False)
    assert list(spilled) == [f"part-{i:05d}-of-00004.parquet" for i in range(4)]
    assert spilled == shuffled
    assert sorted(os.listdir(tmp_path / "a")) == list(spilled)  # the spill files are gone


def test_a_spill_holds_the_rows_and_the_shuffle_only_digests_and_offsets(tmp_path):
    rows = make_rows(300)
    name_prefix = beam_parquet.spill_name_prefix(f"{tmp_path}/part", ".parquet")
    spiller = spill.SpillRecords(name_prefix, key=lambda row: (row["id"],))
    spiller.start_bundle()
    for row in rows:
        spiller.process(row)
    (summary,) = [w.value for w in spiller.finish_bundle()]
    path, digests, offsets = summary
    # A killed run's spill is one of the temporary files that the next run clears.
    assert fnmatch.fnmatch(os.path.basename(path), beam_parquet.temp_pattern("part-*.parquet"))
    assert len(digests) == len(offsets) == 8 * len(rows)  # 16 bytes per row go through the shuffle
    by_shard = dict(spill.by_partition(summary, 3))
    assert sorted(by_shard) == [0, 1, 2]
    for shard, ref in by_shard.items():
        back = [record for _, _, record in spill.read_spilled_at([ref])]
        assert back and all(beam_parquet.stable_shard((r["id"],), 3) == shard for r in back)
        assert all(r in rows for r in back)
    assert sum(len(packed) for _, packed in by_shard.values()) == 8 * len(rows)
    spiller.start_bundle()
    assert list(spiller.finish_bundle()) == []  # a bundle without rows writes no file


def spill_in_bundles(rows: list[dict], name_prefix: str, bundles: int) -> list[tuple[str, bytes]]:
    """Rows spilled by `bundles` bundles of SpillRecords → one shard's (file, offsets) refs."""
    spiller = spill.SpillRecords(name_prefix, key=lambda row: (row["id"],))
    refs = []
    for b in range(bundles):
        spiller.start_bundle()
        for row in rows[b::bundles]:
            spiller.process(row)
        (summary,) = [w.value for w in spiller.finish_bundle()]
        refs += [ref for _, ref in spill.by_partition(summary, 1)]
    return refs


def test_spilled_rows_come_back_in_the_order_of_sorted_rows(tmp_path):
    rows = make_rows(500)
    # Equal keys must be ordered by content as sorted_rows orders them.
    rows += [{"id": rows[7]["id"], "n": n, "tokens": [n], "note": None} for n in (9, 2, 5)]
    refs = spill_in_bundles(rows, f"{tmp_path}/spill-", bundles=3)
    assert len({path for path, _ in refs}) == 3
    back = list(beam_parquet.sorted_spilled_rows(refs, ("id",), SCHEMA))
    assert back == beam_parquet.sorted_rows(rows, ("id",), SCHEMA)


def test_a_spilled_shard_is_written_holding_its_keys_not_its_rows(tmp_path):
    import tracemalloc

    rows = make_rows(6000)
    for row in rows:
        row["tokens"] = row["tokens"] * 8  # 256 steps, a 16-bar melody
    refs = spill_in_bundles(rows, f"{tmp_path}/spill-", bundles=2)
    options = {"row_group_bytes": 2**18, "record_batch_rows": 100}

    def peak_bytes(work) -> int:
        tracemalloc.start()
        work()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    writer = beam_parquet._WriteShard(
        f"{tmp_path}/part", ".parquet", SCHEMA, ("id",), options, spilled=True
    )
    streamed = peak_bytes(lambda: list(writer.process((0, refs), num_shards=1)))
    holding_rows = peak_bytes(lambda: [r for _, _, r in spill.read_spilled_at(refs)])
    assert streamed < 0.25 * holding_rows, (streamed, holding_rows)
    with open(f"{tmp_path}/in_memory.parquet", "wb") as f:
        beam_parquet.write_parquet(
            f, beam_parquet.sorted_rows(rows, ("id",), SCHEMA), SCHEMA, **options
        )
    written = pathlib.Path(f"{tmp_path}/part-00000-of-00001.parquet").read_bytes()
    assert written == pathlib.Path(f"{tmp_path}/in_memory.parquet").read_bytes()
