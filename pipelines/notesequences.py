"""Stage 1 of the data pipeline: music files → one Parquet table of NoteSequences.

    python -m pipelines.notesequences --input 'data/**/*.mid' --output datasets/notesequences
    python -m pipelines.notesequences --input data --params params.yaml   # the DAG's limits

`--input` is a recursive glob (local or gs://) or a directory (every MIDI/MusicXML file below
it). The id of a file is the sha256 of its bytes; identical files collapse to one row under their
lexicographically smallest path. Every input file ends in exactly one place:

- `notesequences-*.parquet`: one row per distinct converted file (`SEQUENCE_SCHEMA`);
- `duplicates-*.parquet`: one row per other copy of a converted file (`DUPLICATE_SCHEMA`);
- `errors-*.parquet`: one row per file that could not be used, with its reason (`ERROR_SCHEMA`).

Each table is sharded by a hash of a unique column (id, or path) and sorted by it
(`beam_parquet.WriteSortedParquet`): the same input gives the same bytes on every run.

`stats.json` holds files_in = converted + duplicates + failed and the count of every reason,
counted once, from the rows themselves; the stage prints it at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.fileio import ReadableFile
from apache_beam.io.filesystems import FileSystems

from pipelines.beamio import files as beam_files
from pipelines.beamio import parquet as beam_parquet
from pipelines.beamio.options import pipeline_options
from pipelines.params import read_params

MIDI_EXTENSIONS = (".mid", ".midi", ".kar")
MUSICXML_EXTENSIONS = (".xml", ".musicxml", ".mxl")
SUPPORTED_EXTENSIONS = MIDI_EXTENSIONS + MUSICXML_EXTENSIONS

# Why a file can end in the errors table, in the order the checks run.
ERROR_REASONS = (
    "unsupported_format",  # extension is neither MIDI nor MusicXML
    "too_large",  # over --max_file_bytes: not even read
    "unreadable",  # the file system failed to read it
    "empty",  # zero bytes
    "not_midi",  # a .mid whose bytes do not start with the MIDI header
    "corrupt",  # the parser failed (truncated, malformed events, bad meta data)
    "no_notes",
    "too_many_notes",  # over --max_notes
    "absurd_tempo",  # a tempo outside [--min_qpm, --max_qpm]
    "negative_time",  # a note that starts before 0 or ends before it starts
)

SEQUENCE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("path", pa.string()),
        ("note_sequence", pa.binary()),
        ("num_notes", pa.int32()),
        ("duration_s", pa.float64()),
        ("tempos", pa.list_(pa.float64())),
        ("time_signatures", pa.list_(pa.string())),
        ("programs", pa.list_(pa.int32())),
        ("has_drums", pa.bool_()),
        ("num_duplicates", pa.int32()),
        ("duplicate_paths", pa.list_(pa.string())),
    ]
)
DUPLICATE_SCHEMA = pa.schema(
    [("path", pa.string()), ("id", pa.string()), ("kept_path", pa.string())]
)
ERROR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),  # null when the file was not read
        ("path", pa.string()),
        ("reason", pa.string()),
        ("message", pa.string()),
    ]
)
# name → (file prefix, schema, sort key: unique per row, max rows per file when --num_shards is 0)
TABLES = {
    # A row holds a whole serialized NoteSequence: ~1 KB for a folk tune, up to ~200 KB for a
    # Lakh MIDI song, so that a writer holds at most ~200 MB.
    "sequences": ("notesequences", SEQUENCE_SCHEMA, ("id",), 1_000),
    "duplicates": ("duplicates", DUPLICATE_SCHEMA, ("path",), 100_000),
    "errors": ("errors", ERROR_SCHEMA, ("path",), 100_000),
}
OUTPUT_PATTERNS = [
    *beam_parquet.output_patterns([f"{prefix}-*.parquet" for prefix, *_ in TABLES.values()]),
    "stats.json",
]


@dataclass(frozen=True)
class Limits:
    """What a usable file may not exceed: params.yaml's `notesequences` section, or the
    command-line flags of the same names."""

    max_file_bytes: int = 10 * 2**20
    max_notes: int = 200_000
    min_qpm: float = 10.0
    max_qpm: float = 1000.0


class ConversionError(Exception):
    """A file that cannot become a NoteSequence; `reason` is one of ERROR_REASONS."""

    def __init__(self, reason: str, message: str):
        assert reason in ERROR_REASONS, reason
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _parse(data: bytes, path: str):
    # Imported here: note_seq takes ~2 s to import, and only workers that convert need it.
    with warnings.catch_warnings():  # pydub, imported by note_seq, warns that ffmpeg is missing
        warnings.simplefilter("ignore")
        from note_seq import midi_io, musicxml_reader

    extension = os.path.splitext(path)[1].lower()
    if extension in MIDI_EXTENSIONS:
        if not data.startswith(b"MThd"):
            raise ConversionError("not_midi", f"starts with {data[:8]!r}, not the MIDI header MThd")
        try:
            with warnings.catch_warnings():  # pretty_midi warns about meta events on odd tracks
                warnings.simplefilter("ignore")
                return midi_io.midi_to_note_sequence(data)
        except Exception as e:  # the MIDI parsers raise a zoo of exception types
            raise ConversionError("corrupt", f"{type(e).__name__}: {e}") from e
    # MusicXML: note_seq's reader wants a file name (it unzips .mxl itself).
    with tempfile.NamedTemporaryFile(suffix=extension) as f:
        f.write(data)
        f.flush()
        try:
            return musicxml_reader.musicxml_file_to_sequence_proto(f.name)
        except Exception as e:
            raise ConversionError("corrupt", f"{type(e).__name__}: {e}") from e


def to_note_sequence(data: bytes, path: str, limits: Limits = Limits()):
    """Parse and validate one file's bytes; raises ConversionError with the first failed check."""
    if len(data) > limits.max_file_bytes:
        raise ConversionError("too_large", f"{len(data)} bytes > {limits.max_file_bytes}")
    if not data:
        raise ConversionError("empty", "the file has zero bytes")
    sequence = _parse(data, path)
    validate_sequence(sequence, limits)
    return sequence


def validate_sequence(sequence, limits: Limits = Limits()) -> None:
    """Raises ConversionError when a parsed sequence is unusable (see ERROR_REASONS)."""
    if not sequence.notes:
        raise ConversionError("no_notes", "the file has no notes")
    if len(sequence.notes) > limits.max_notes:
        raise ConversionError("too_many_notes", f"{len(sequence.notes)} notes > {limits.max_notes}")
    for tempo in sequence.tempos:
        if not limits.min_qpm <= tempo.qpm <= limits.max_qpm:
            raise ConversionError(
                "absurd_tempo",
                f"{tempo.qpm:.6g} qpm at {tempo.time:.3f} s, outside [{limits.min_qpm}, {limits.max_qpm}]",
            )
    for note in sequence.notes:
        if note.start_time < 0 or note.end_time < note.start_time:
            raise ConversionError(
                "negative_time", f"note {note.pitch} from {note.start_time} s to {note.end_time} s"
            )


def sequence_row(source_id: str, paths: list[str], sequence) -> dict:
    """The Parquet row of a converted file; `paths` are all its copies, the kept one first."""
    return {
        "id": source_id,
        "path": paths[0],
        "note_sequence": sequence.SerializeToString(),
        "num_notes": len(sequence.notes),
        "duration_s": float(sequence.total_time),
        "tempos": [float(t.qpm) for t in sequence.tempos],
        "time_signatures": [f"{t.numerator}/{t.denominator}" for t in sequence.time_signatures],
        "programs": sorted({n.program for n in sequence.notes if not n.is_drum}),
        "has_drums": any(n.is_drum for n in sequence.notes),
        "num_duplicates": len(paths) - 1,
        "duplicate_paths": paths[1:],
    }


def error_row(source_id: str | None, path: str, error: ConversionError) -> dict:
    return {"id": source_id, "path": path, "reason": error.reason, "message": error.message[:1000]}


class HashFile(beam.DoFn):
    """ReadableFile → (sha256, (relative path, full path)); files rejected unread → "errors"."""

    def __init__(self, corpus: beam_files.CorpusPattern, limits: Limits):
        self._corpus = corpus
        self._limits = limits

    def _error(self, source_id, path, reason, message):
        return beam.pvalue.TaggedOutput(
            "errors", error_row(source_id, path, ConversionError(reason, message))
        )

    def process(self, file: ReadableFile) -> Iterator:
        full_path = file.metadata.path
        path = self._corpus.relative_path(full_path)
        if not full_path.lower().endswith(SUPPORTED_EXTENSIONS):
            yield self._error(
                None, path, "unsupported_format", f"supported: {' '.join(SUPPORTED_EXTENSIONS)}"
            )
            return
        size = file.metadata.size_in_bytes
        if size > self._limits.max_file_bytes:
            yield self._error(
                None, path, "too_large", f"{size} bytes > {self._limits.max_file_bytes}"
            )
            return
        try:
            data = file.read()
        except Exception as e:
            yield self._error(None, path, "unreadable", f"{type(e).__name__}: {e}")
            return
        yield hashlib.sha256(data).hexdigest(), (path, full_path)


class ConvertFile(beam.DoFn):
    """(sha256, copies) → a sequence row for the smallest path, a duplicate row for each other
    copy; or, when the bytes cannot be converted, an error row for every copy."""

    def __init__(self, limits: Limits):
        self._limits = limits

    def process(self, element: tuple[str, Iterable[tuple[str, str]]]) -> Iterator:
        source_id, copies = element
        copies = sorted(copies)
        paths = [path for path, _ in copies]
        try:
            # Only the kept copy is read again: shuffling paths instead of bytes keeps the
            # grouping small, and duplicates are never parsed.
            try:
                with FileSystems.open(copies[0][1]) as f:
                    data = f.read()
            except Exception as e:
                raise ConversionError("unreadable", f"{type(e).__name__}: {e}") from e
            sequence = to_note_sequence(data, paths[0], self._limits)
        except ConversionError as error:
            for path in paths:
                yield beam.pvalue.TaggedOutput("errors", error_row(source_id, path, error))
            return
        sequence.id = source_id
        sequence.filename = paths[0]
        sequence.collection_name = paths[0].split("/")[0] if "/" in paths[0] else ""
        yield sequence_row(source_id, paths, sequence)
        for path in paths[1:]:
            yield beam.pvalue.TaggedOutput(
                "duplicates", {"path": path, "id": source_id, "kept_path": paths[0]}
            )


class ToNoteSequences(beam.PTransform):
    """PCollection[ReadableFile] → {"sequences", "duplicates", "errors"} PCollections of rows."""

    def __init__(self, corpus: beam_files.CorpusPattern, limits: Limits = Limits()):
        super().__init__()
        self._corpus = corpus
        self._limits = limits

    def expand(self, files):
        hashed = files | "Hash" >> beam.ParDo(HashFile(self._corpus, self._limits)).with_outputs(
            "errors", main="hashed"
        )
        converted = (
            hashed.hashed
            | "GroupCopies" >> beam.GroupByKey()
            | "Convert"
            >> beam.ParDo(ConvertFile(self._limits)).with_outputs(
                "duplicates", "errors", main="sequences"
            )
        )
        errors = (hashed.errors, converted.errors) | "AllErrors" >> beam.Flatten()
        return {
            "sequences": converted.sequences,
            "duplicates": converted.duplicates,
            "errors": errors,
        }


def make_stats(
    _, files_in: int, ignored: int, outcomes: dict, notes: int, input_spec: str, limits: Limits
) -> dict:
    errors_by_reason = {r: outcomes.get(f"error:{r}", 0) for r in ERROR_REASONS}
    return {
        "input": input_spec,
        "files_in": files_in,
        "converted": outcomes.get("converted", 0),
        "duplicates": outcomes.get("duplicate", 0),
        "failed": sum(errors_by_reason.values()),
        "errors_by_reason": errors_by_reason,
        "files_ignored": ignored,  # directory input: files with other extensions
        "notes": notes,
        "limits": asdict(limits),
    }


class ComputeStats(beam.PTransform):
    """Counts every file's outcome from the rows themselves."""

    def __init__(self, input_spec: str, limits: Limits):
        super().__init__()
        self._input_spec = input_spec
        self._limits = limits

    def expand(self, inputs):
        files, ignored, outputs = inputs
        outcomes = (
            (
                outputs["sequences"] | "LabelConverted" >> beam.Map(lambda _: "converted"),
                outputs["duplicates"] | "LabelDuplicate" >> beam.Map(lambda _: "duplicate"),
                outputs["errors"] | "LabelError" >> beam.Map(lambda row: f"error:{row['reason']}"),
            )
            | "Outcomes" >> beam.Flatten()
            | "CountOutcomes" >> beam.combiners.Count.PerElement()
        )
        return (
            files.pipeline
            | "One" >> beam.Create([None])
            | "Stats"
            >> beam.Map(
                make_stats,
                files_in=beam.pvalue.AsSingleton(
                    files | "CountFiles" >> beam.combiners.Count.Globally()
                ),
                ignored=beam.pvalue.AsSingleton(
                    ignored | "CountIgnored" >> beam.combiners.Count.Globally()
                ),
                outcomes=beam.pvalue.AsDict(outcomes),
                notes=beam.pvalue.AsSingleton(
                    outputs["sequences"]
                    | "Notes" >> beam.Map(lambda row: row["num_notes"])
                    | "SumNotes" >> beam.CombineGlobally(sum)
                ),
                input_spec=self._input_spec,
                limits=self._limits,
            )
        )


def build_pipeline(
    pipeline: beam.Pipeline,
    input_spec: str,
    output: str,
    limits: Limits = Limits(),
    num_shards: int = 0,
) -> None:
    """Adds stage 1 to `pipeline`: read `input_spec`, write tables and stats.json under `output`."""
    corpus = beam_files.CorpusPattern.parse(input_spec, SUPPORTED_EXTENSIONS)
    files, ignored = pipeline | "MatchCorpus" >> beam_files.MatchCorpus(corpus)
    outputs = files | "ToNoteSequences" >> ToNoteSequences(corpus, limits)
    for name, (prefix, schema, key_columns, max_rows_per_shard) in TABLES.items():
        # Sorted into shards by a hash of the key: the same bytes on every run and runner.
        _ = outputs[name] | f"Write_{name}" >> beam_parquet.WriteSortedParquet(
            f"{output.rstrip('/')}/{prefix}",
            schema,
            key_columns,
            file_name_suffix=".parquet",
            num_shards=num_shards,
            max_rows_per_shard=max_rows_per_shard,
            # Small row groups: stage 2 reads row groups in parallel, one per work item.
            row_group_bytes=2**19,
            record_batch_rows=100,
        )
    _ = (
        (files, ignored, outputs)
        | "ComputeStats" >> ComputeStats(input_spec, limits)
        | "WriteStats" >> beam_files.WriteJson(f"{output.rstrip('/')}/stats.json")
    )


def format_summary(stats: dict) -> str:
    lines = [
        f"files in   {stats['files_in']:>9,}  ({stats['input']})",
        f"converted  {stats['converted']:>9,}  ({stats['notes']:,} notes)",
        f"duplicates {stats['duplicates']:>9,}",
        f"failed     {stats['failed']:>9,}",
    ]
    lines += [f"  {reason:<20}{n:>7,}" for reason, n in stats["errors_by_reason"].items() if n]
    if stats["files_ignored"]:
        lines.append(
            f"ignored    {stats['files_ignored']:>9,}  (not MIDI/MusicXML, directory input)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Flags over params.yaml's `notesequences` section (with --params) over Limits' defaults."""
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--params", help="params.yaml: its notesequences section sets the limits")
    defaults = read_params(params.parse_known_args(argv)[0].params, "notesequences", Limits)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[params])
    parser.add_argument(
        "--input", default="data/", help="recursive glob or directory (local or gs://)"
    )
    parser.add_argument("--output", default="datasets/notesequences", help="output folder")
    parser.add_argument("--max_file_bytes", type=int, default=defaults.max_file_bytes)
    parser.add_argument("--max_notes", type=int, default=defaults.max_notes)
    parser.add_argument("--min_qpm", type=float, default=defaults.min_qpm)
    parser.add_argument("--max_qpm", type=float, default=defaults.max_qpm)
    parser.add_argument(
        "--num_shards", type=int, default=0, help="files per table; 0 = from the row count"
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Runs stage 1; returns the stats it wrote. Unknown flags are Beam pipeline options."""
    args, beam_args = parse_args(argv)
    limits = Limits(args.max_file_bytes, args.max_notes, args.min_qpm, args.max_qpm)
    beam_files.make_dirs(args.output)
    beam_files.clear_outputs(args.output, OUTPUT_PATTERNS)
    pipeline = beam.Pipeline(options=pipeline_options(beam_args))
    build_pipeline(pipeline, args.input, args.output, limits, args.num_shards)
    result = pipeline.run()
    result.wait_until_finish()
    stats = beam_files.read_json(f"{args.output.rstrip('/')}/stats.json")
    print(format_summary(stats))
    if stats["files_in"] == 0:
        sys.exit(f"no input files matched {args.input!r}")
    return stats


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    # Run the importable copy of this module, so that the DoFns pickled for the workers are
    # referenced by module name rather than as members of "__main__".
    from pipelines import notesequences

    notesequences.main()
