"""Deterministic Parquet output for Beam: the same rows give the same files, byte for byte.

`beam.io.WriteToParquet` puts each row in a random shard and writes rows in the order bundles
happen to be processed, so two runs over the same input write different bytes (and DVC records a
new hash for an output that did not change). `WriteSortedParquet` takes the randomness out:

1. every row has a sort key: columns that are unique and derived from its content (a hash);
2. it goes to shard `stable_hash(key) % num_shards`; num_shards is given, or computed from the row
   count so that a shard holds about `max_rows_per_shard` rows (one shard is what a worker holds
   in memory, whatever the size of the corpus);
3. each shard's rows are grouped, sorted by key and written with pyarrow to one
   `<prefix>-SSSSS-of-NNNNN<suffix>` file, first under a temporary name (`temp_pattern`), renamed
   once complete, so that a killed run never leaves a half-written file under a final name;
4. shards that no row hashed to are then written empty (the schema, no row group), so an empty
   PCollection still writes `<prefix>-00000-of-00001<suffix>` as WriteToParquet does, and the
   readers that want at least one file per split find it.

On the DirectRunner, which keeps every element of a GroupByKey in memory, the rows themselves do
not go through the shuffle (`beamio.spill`): each bundle appends its rows to a spill file beside
the output, the shuffle carries where they are, and each shard's writer reads its rows' keys
back, sorts them, then reads and writes the rows in that order: it holds the shard's keys and
one row group, not the shard's rows. The files are the same bytes either way.

Files go through Beam's `FileSystems`, so `gs://` prefixes work on Dataflow.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby, islice, pairwise
from operator import itemgetter
from typing import Any, BinaryIO

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.beamio import spill

Row = dict[str, Any]

# A writer works on `<final name>.tmp-<random hex>`; the rename publishes it.
TEMP_MARK = ".tmp-"
DEFAULT_MAX_ROWS_PER_SHARD = 100_000
DEFAULT_ROW_GROUP_BYTES = 64 * 2**20  # WriteToParquet's default row_group_buffer_size
DEFAULT_RECORD_BATCH_ROWS = 1000  # WriteToParquet's default record_batch_size


def shard_path(prefix: str, shard: int, num_shards: int, suffix: str) -> str:
    """Beam's default shard name template: `<prefix>-SSSSS-of-NNNNN<suffix>`."""
    return f"{prefix}-{shard:05d}-of-{num_shards:05d}{suffix}"


def output_patterns(shard_patterns: list[str]) -> list[str]:
    """Globs of everything the writers of `shard_patterns` leave: the shards and the temporary
    files of a killed run (for `beam_files.clear_outputs`)."""
    return [*shard_patterns, *(temp_pattern(p) for p in shard_patterns)]


def temp_pattern(pattern: str) -> str:
    """Glob of the temporary files a killed run may have left for outputs matching `pattern`
    (for `beam_files.clear_outputs`)."""
    return f"{pattern}{TEMP_MARK}*"


def shard_count(row_count: int, max_rows_per_shard: int) -> int:
    return max(1, math.ceil(row_count / max_rows_per_shard))


def missing_shards(num_shards: int, written: set[str], prefix: str, suffix: str) -> list[int]:
    return [
        shard
        for shard in range(num_shards)
        if shard_path(prefix, shard, num_shards, suffix) not in written
    ]


def stable_shard(key: tuple, num_shards: int) -> int:
    """Shard of a sort key: its digest modulo the shard count."""
    return spill.key_digest(key) % num_shards


def spill_name_prefix(prefix: str, suffix: str) -> str:
    """Spill files' names start with this; it matches `temp_pattern` of the shards, so that the
    next run's `clear_outputs` removes what a killed run left."""
    return f"{prefix}-{spill.SPILL_MARK}{suffix}{TEMP_MARK}"


def record_batch(rows: Sequence[Row], schema: pa.Schema) -> pa.RecordBatch:
    """Rows (dicts) → one RecordBatch; a missing nullable column is null (as WriteToParquet)."""
    columns = [
        pa.array(
            [row.get(field.name) if field.nullable else row[field.name] for row in rows],
            type=field.type,
        )
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def sorted_rows(rows: Iterable[Row], key_columns: Sequence[str], schema: pa.Schema) -> list[Row]:
    """Rows in the order of their key columns; rows with equal keys (the key should be unique,
    but a wrong choice must not make the output depend on the runner) by their serialized bytes."""
    keyed = sorted(((tuple(row[c] for c in key_columns), row) for row in rows), key=itemgetter(0))
    if any(a[0] == b[0] for a, b in pairwise(keyed)):
        keyed.sort(key=lambda kr: (kr[0], record_batch([kr[1]], schema).serialize().to_pybytes()))
    return [row for _, row in keyed]


def sorted_spilled_rows(
    refs: Iterable[tuple[str, bytes]], key_columns: Sequence[str], schema: pa.Schema
) -> Iterator[Row]:
    """The spilled rows at `refs` in `sorted_rows` order, holding only their keys and places:
    one pass reads the keys, then the rows are read one by one in key order."""
    index = sorted(
        (tuple(row[c] for c in key_columns), path, offset)
        for path, offset, row in spill.read_spilled_at(refs)
    )
    with spill.SpillReader() as reader:
        for _, places in groupby(index, key=itemgetter(0)):
            rows = [reader.read(path, offset) for _, path, offset in places]
            # Equal keys (one row almost always): by serialized bytes, as sorted_rows orders them.
            yield from rows if len(rows) == 1 else sorted_rows(rows, key_columns, schema)


def write_parquet(
    sink: BinaryIO,
    rows: Iterable[Row],
    schema: pa.Schema,
    *,
    codec: str = "snappy",
    row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
    record_batch_rows: int = DEFAULT_RECORD_BATCH_ROWS,
) -> None:
    """Writes `rows` in this order, holding one row group at a time. Row groups are cut as
    WriteToParquet cuts them: batches of `record_batch_rows` rows, a row group as soon as its
    batches hold `row_group_bytes` of Arrow data. No rows: a valid file with the schema and no
    row group."""
    # Beam's parquet sink writes non-compliant nested lists (list<item>) by default: keep it,
    # so that readers see the same physical schema as before.
    with pq.ParquetWriter(
        sink, schema, compression=codec, use_compliant_nested_type=False
    ) as writer:
        group: list[pa.RecordBatch] = []
        group_bytes = 0
        rows = iter(rows)
        while chunk := list(islice(rows, record_batch_rows)):
            batch = record_batch(chunk, schema)
            group.append(batch)
            group_bytes += batch.nbytes
            if group_bytes >= row_group_bytes:
                table = pa.Table.from_batches(group, schema=schema)
                writer.write_table(table, row_group_size=table.num_rows)
                group, group_bytes = [], 0
        if group:
            table = pa.Table.from_batches(group, schema=schema)
            writer.write_table(table, row_group_size=table.num_rows)


class _WriteShard(beam.DoFn):
    """(shard, its rows, or where they were spilled) → the path of the shard's file, written and
    then renamed."""

    def __init__(
        self,
        prefix: str,
        suffix: str,
        schema: pa.Schema,
        key_columns,
        write_options,
        spilled: bool = False,
    ):
        self._prefix = prefix
        self._suffix = suffix
        self._schema = schema
        self._key_columns = tuple(key_columns)
        self._write_options = write_options
        self._spilled = spilled

    def process(self, element: tuple[int, Iterable], num_shards: int) -> Iterator[str]:
        shard, rows = element
        path = shard_path(self._prefix, shard, num_shards, self._suffix)
        if self._spilled:  # one row group in memory, not the shard
            rows = sorted_spilled_rows(rows, self._key_columns, self._schema)
        else:
            rows = sorted_rows(rows, self._key_columns, self._schema)
        # A unique temporary name: a retried bundle on Dataflow may run beside the first attempt.
        temp = f"{path}{TEMP_MARK}{uuid.uuid4().hex}"
        try:
            with FileSystems.create(
                temp,
                mime_type="application/x-parquet",
                compression_type=CompressionTypes.UNCOMPRESSED,
            ) as sink:
                write_parquet(sink, rows, self._schema, **self._write_options)
            FileSystems.rename([temp], [path])
        except BaseException:
            if FileSystems.exists(temp):
                FileSystems.delete([temp])
            raise
        yield path


class WriteSortedParquet(beam.PTransform):
    """PCollection of row dicts → `<file_path_prefix>-SSSSS-of-NNNNN<file_name_suffix>` Parquet
    files whose bytes depend only on the rows (not on the runner, its workers or bundles).

    Returns the PCollection of the paths written.

    Args:
      file_path_prefix: local or gs:// path prefix of the files.
      schema: the pyarrow schema of the rows.
      key_columns: columns whose values are unique per row and derived from its content; they
        pick the shard and order the rows in it.
      num_shards: number of files; 0 = ceil(rows / max_rows_per_shard), at least 1.
      max_rows_per_shard: when num_shards is 0, about the rows a worker holds, sorts and writes
        at once: size it to the rows (the default suits rows of ~1 KB).
      row_group_bytes, record_batch_rows: row-group cut, as WriteToParquet's
        row_group_buffer_size and record_batch_size.
      spill: shuffle the rows through spill files beside the output (bounded memory on a
        runner that holds shuffles in memory; every worker must reach the output folder);
        None = only on the DirectRunner.
    """

    def __init__(
        self,
        file_path_prefix: str,
        schema: pa.Schema,
        key_columns: Sequence[str],
        *,
        file_name_suffix: str = ".parquet",
        num_shards: int = 0,
        max_rows_per_shard: int = DEFAULT_MAX_ROWS_PER_SHARD,
        codec: str = "snappy",
        row_group_bytes: int = DEFAULT_ROW_GROUP_BYTES,
        record_batch_rows: int = DEFAULT_RECORD_BATCH_ROWS,
        spill: bool | None = None,
    ):
        super().__init__()
        missing = set(key_columns) - set(schema.names)
        if not key_columns or missing:
            raise ValueError(f"key_columns must name columns of the schema; unknown: {missing}")
        if num_shards < 0 or max_rows_per_shard < 1:
            raise ValueError("num_shards must be >= 0 and max_rows_per_shard >= 1")
        self._prefix = file_path_prefix
        self._suffix = file_name_suffix
        self._schema = schema
        self._key_columns = tuple(key_columns)
        self._num_shards = num_shards
        self._max_rows_per_shard = max_rows_per_shard
        self._write_options = {
            "codec": codec,
            "row_group_bytes": row_group_bytes,
            "record_batch_rows": record_batch_rows,
        }
        self._spill = spill

    def expand(self, rows):
        spilling = self._spill
        if spilling is None:
            spilling = spill.runs_locally_in_memory(rows.pipeline)
        key_columns = self._key_columns
        if spilling:
            spilled = rows | "Spill" >> beam.ParDo(
                spill.SpillRecords(
                    spill_name_prefix(self._prefix, self._suffix),
                    key=lambda row: tuple(row[c] for c in key_columns),
                )
            )
        if self._num_shards:
            # Known up front: no side input, so the shard assignment fuses with the producer.
            num_shards_pcoll = rows.pipeline | "NumShards" >> beam.Create([self._num_shards])
            num_shards = self._num_shards
        else:
            if spilling:
                row_count = (
                    spilled
                    | "RowsPerSpill" >> beam.Map(spill.record_count)
                    | "CountRows" >> beam.CombineGlobally(sum)
                )
            else:
                row_count = rows | "CountRows" >> beam.combiners.Count.Globally()
            num_shards_pcoll = row_count | "NumShards" >> beam.Map(
                shard_count, self._max_rows_per_shard
            )
            num_shards = beam.pvalue.AsSingleton(num_shards_pcoll)
        if spilling:
            by_shard = spilled | "SpilledByShard" >> beam.FlatMap(
                spill.by_partition, partitions=num_shards
            )
        else:
            by_shard = rows | "AssignShard" >> beam.Map(
                lambda row, n: (stable_shard(tuple(row[c] for c in key_columns), n), row),
                n=num_shards,
            )
        write_shard = _WriteShard(
            self._prefix,
            self._suffix,
            self._schema,
            self._key_columns,
            self._write_options,
            spilled=spilling,
        )
        written = (
            by_shard
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(write_shard, num_shards=num_shards)
        )
        # Shards that no row hashed to (the only shard of an empty PCollection) are written
        # empty afterwards, as WriteToParquet does: every file of N exists. (Joining markers to
        # the rows before the GroupByKey would cost the rows one more trip through the runner.)
        prefix, suffix = self._prefix, self._suffix
        empty = (
            num_shards_pcoll
            | "MissingShards"
            >> beam.FlatMap(
                lambda n, paths: [
                    (shard, []) for shard in missing_shards(n, set(paths), prefix, suffix)
                ],
                paths=beam.pvalue.AsList(written),
            )
            | "WriteEmptyShards" >> beam.ParDo(write_shard, num_shards=num_shards)
        )
        files = (written, empty) | "AllFiles" >> beam.Flatten()
        if spilling:
            # Once every shard is written (the count waits for all of them), the spills go.
            _ = (
                files
                | "CountFiles" >> beam.combiners.Count.Globally()
                | "DeleteSpills"
                >> beam.Map(
                    spill.delete_spills,
                    spills=beam.pvalue.AsList(spilled | "SpillFile" >> beam.Map(lambda s: s[0])),
                )
            )
        return files
