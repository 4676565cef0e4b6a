"""A shuffle through files on disk, for Beam's DirectRunner, which holds a shuffle in memory.

The DirectRunner keeps every element of a GroupByKey in its own memory until the consuming stage
has run, so a shuffle that carries every row of the corpus grows with the corpus. Here the
elements themselves do not go through the shuffle:

1. `SpillRecords`: each bundle appends its elements (length-prefixed pickles) to one spill file,
   and at its end emits one summary: the file, each element's key digest and offset (16 bytes
   an element, packed);
2. `by_partition`: a summary → (partition, (file, packed offsets)), partition = digest mod N;
   the shuffle then holds a few such elements per bundle, whatever the number of records;
3. the consumer of a partition reads its records back from every file (`read_spilled_at`),
   and may then read them again one by one in its own order (`SpillReader`).

`beamio.parquet.WriteSortedParquet` shuffles its rows this way on the DirectRunner, a shard per
partition. Other runners (Dask, Dataflow) have shuffles of their own that spill, and workers
that may not share a disk.
"""

from __future__ import annotations

import hashlib
import pickle
import struct
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

# Names a spill file among the other files of its folder.
SPILL_MARK = "spill"
_LENGTH = struct.Struct("<Q")
_PACKED = np.dtype(np.uint64)  # digests and offsets travel as packed uint64
Summary = tuple[str, bytes, bytes]  # (spill file, packed uint64 key digests, packed offsets)


def runs_locally_in_memory(pipeline: beam.Pipeline) -> bool:
    """True on Beam's DirectRunner (any mode): its GroupByKeys hold every element in memory, and
    its workers share this machine's disk."""
    return type(pipeline.runner).__module__.startswith("apache_beam.runners.direct")


def key_digest(key: Any) -> int:
    """64 bits of a key's hash; the same in every process and run (unlike the salted `hash()`).
    Keys are tuples of str, bytes and numbers, whose repr is stable."""
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")


class SpillRecords(beam.DoFn):
    """Records → one spill file per bundle, named `<name_prefix><unique hex>`, and at the
    bundle's end one `Summary` of it; `key` gives the key whose digest picks a partition."""

    def __init__(self, name_prefix: str, key: Callable[[Any], Any]):
        self._name_prefix = name_prefix
        self._key = key

    def start_bundle(self) -> None:
        self._file = None

    def process(self, record: Any) -> None:
        if self._file is None:
            self._path = f"{self._name_prefix}{uuid.uuid4().hex}"
            self._file = FileSystems.create(
                self._path, compression_type=CompressionTypes.UNCOMPRESSED
            )
            self._position = 0
            self._digests: list[int] = []
            self._offsets: list[int] = []
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        self._digests.append(key_digest(self._key(record)))
        self._offsets.append(self._position)
        self._file.write(_LENGTH.pack(len(data)))
        self._file.write(data)
        self._position += _LENGTH.size + len(data)

    def finish_bundle(self) -> Iterator:
        if self._file is None:
            return
        self._file.close()
        self._file = None
        yield GlobalWindows.windowed_value(
            (
                self._path,
                np.array(self._digests, dtype=_PACKED).tobytes(),
                np.array(self._offsets, dtype=_PACKED).tobytes(),
            )
        )


def record_count(summary: Summary) -> int:
    return len(summary[1]) // _PACKED.itemsize


def by_partition(summary: Summary, partitions: int) -> Iterator[tuple[int, tuple[str, bytes]]]:
    """One spill file's summary → (partition, (file, packed offsets of that partition's records))."""
    path, digests, offsets = summary
    parts = np.frombuffer(digests, dtype=_PACKED) % np.uint64(partitions)
    offsets_array = np.frombuffer(offsets, dtype=_PACKED)
    for part in np.unique(parts):
        yield int(part), (path, offsets_array[parts == part].tobytes())


def read_spilled_at(refs: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, int, Any]]:
    """(file, offset, record) for the records at these references, file by file, in offset
    order (one sequential pass over each file)."""
    for path, packed in refs:
        offsets = sorted(np.frombuffer(packed, dtype=_PACKED).tolist())
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            for offset in offsets:
                f.seek(offset)
                yield path, offset, _read_record(f)


def _read_record(f: BinaryIO) -> Any:
    (length,) = _LENGTH.unpack(f.read(_LENGTH.size))
    return pickle.loads(f.read(length))


class SpillReader:
    """Reads single records of spill files by (file, offset), keeping a few files open."""

    MAX_OPEN = 32

    def __init__(self) -> None:
        self._open: OrderedDict[str, BinaryIO] = OrderedDict()

    def read(self, path: str, offset: int) -> Any:
        f = self._open.pop(path, None)
        if f is None:
            if len(self._open) >= self.MAX_OPEN:
                self._open.popitem(last=False)[1].close()
            f = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        self._open[path] = f  # most recently used last
        f.seek(offset)
        return _read_record(f)

    def close(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def __enter__(self) -> SpillReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def delete_spills(_, spills: list[str]) -> None:
    if spills:
        FileSystems.delete(spills)
