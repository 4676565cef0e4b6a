"""Stage 2 of the data pipeline: NoteSequences → training examples, one Parquet dataset each.

    python -m pipelines.examples --input datasets/notesequences --output datasets \\
        --datasets mel_2bar,mel_16bar,drums_2bar,trio_16bar
    python -m pipelines.examples --params params.yaml   # the DAG's datasets and split fractions

For every NoteSequence of stage 1 and every dataset, `pipelines.extract.windows` slices windows. Windows
are then de-duplicated by content across the whole corpus (the copy with the smallest
(source_id, piece, start_bar, program) is kept, so the result does not depend on the runner) and
split into train/eval/test by a stable hash of the source file's tune family (`pipelines.splits`:
sources whose 16-bar windows are near-copies, in any key), so a tune and its variants never land
in two splits and a file lands in the same split in every dataset. In the 2-bar datasets, eval
and test windows within 5 % of a train window are dropped. Output, per dataset:

    <output>/<dataset>/{train,eval,test}-SSSSS-of-NNNNN.parquet   (at least one file per split)
    <output>/<dataset>/stats.json   counts per filter reason, per stage and per split; the
        families, the near-copies dropped, and a leakage check of a sample of test windows

Nothing is collected in memory but one output file's rows: windows stream from the extraction
through a combine-per-key (the de-duplication) to `beam_parquet.WriteSortedParquet`, which puts
each window in a file by a hash of its id and sorts every file by id, so that the bytes written do
not depend on the runner or its number of workers (files hold about SHARD_MEMORY_BYTES of rows in
memory unless --num_shards fixes their count).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import logging
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pipelines.beamio import files as beam_files
from pipelines.beamio import parquet as beam_parquet
from pipelines.beamio.options import pipeline_options
from pipelines.extract.pieces import meter_count_name
from pipelines.extract.windows import (
    DATASET_SPECS,
    EXAMPLES_BY_METER,
    DatasetSpec,
    examples_from_pieces,
)
from pipelines.params import read_params
from pipelines.representation import TRACKS
from pipelines.splits.families import FindFamilies
from pipelines.splits.leakage import DropNearCopies, MeasureLeakage

SPLITS = ("train", "eval", "test")
DEFAULT_EVAL_FRACTION = 0.05
DEFAULT_TEST_FRACTION = 0.05
DEFAULT_FAMILY_THRESHOLD = 0.10
DEFAULT_NEAR_COPY_THRESHOLD = 0.05
DEFAULT_FAMILY_MIN_BARS = 16
DEFAULT_LEAKAGE_SAMPLE = 300
# What the writer of one output file holds in memory (its rows, sorted) when --num_shards is 0.
SHARD_MEMORY_BYTES = 128 * 2**20
_LOG = logging.getLogger(__name__)


def split_of(
    source_id: str,
    eval_fraction: float = DEFAULT_EVAL_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> str:
    """train / eval / test for a source file, from a hash of its id (stable across runs)."""
    digest = hashlib.sha256(f"musicvae-split:{source_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + eval_fraction:
        return "eval"
    return "train"


def dataset_schema(spec: DatasetSpec) -> pa.Schema:
    """Columns of docs/architecture.md, plus `piece` and `meter` (where the window comes from)."""
    return pa.schema(
        [
            ("id", pa.string()),
            ("source_id", pa.string()),
            ("source_path", pa.string()),
            ("split", pa.string()),
            ("start_bar", pa.int32()),
            ("program", pa.int32()),
            ("piece", pa.int32()),
            ("meter", pa.string()),
        ]
        + [(track.column, pa.list_(pa.int16())) for track in TRACKS[spec.kind]]
    )


def max_rows_per_shard(spec: DatasetSpec) -> int:
    """Rows per file such that a writer holds about SHARD_MEMORY_BYTES: a row is ~1 KB of strings
    and ints plus 8 bytes per token (a list of small ints): ~100k 2-bar melodies, ~19k trios."""
    row_bytes = 1024 + 8 * spec.num_steps * len(TRACKS[spec.kind])
    return max(1, SHARD_MEMORY_BYTES // row_bytes)


class Candidate(NamedTuple):
    """A window on its way to the de-duplication; the fields that order copies come first."""

    source_id: str
    piece: int
    start_bar: int
    program: int
    meter: str
    source_path: str
    tokens: tuple[bytes, ...]  # per track, little-endian int16


class CandidateCoder(beam.coders.Coder):
    """A Candidate as its plain tuple, which Beam encodes natively (a NamedTuple it pickles)."""

    _plain = beam.coders.FastPrimitivesCoder()

    def encode(self, value: Candidate) -> bytes:
        return self._plain.encode(tuple(value))

    def decode(self, encoded: bytes) -> Candidate:
        return Candidate(*self._plain.decode(encoded))

    def is_deterministic(self) -> bool:
        return True

    def to_type_hint(self):
        return Candidate


beam.coders.registry.register_coder(Candidate, CandidateCoder)

# Keys of the per-dataset counts that become stats.json: (group, name), e.g. ("filter",
# "melody:too_short") or ("split", "train"); STAGE counts go to stats.json's "stages".
STAGE, FILTER, SPLIT, METER, SOURCES = "stage", "filter", "split", "meter", "sources"
DROPPED, SKIPPED = "near_copies_dropped", "near_copy_buckets_skipped"
METER_BEFORE_DEDUP = "meter_before_dedup"


def _dataset_key(key: str | tuple[str, str]) -> tuple[str, str]:
    """The dataset-count key of an extraction count: a filter (a reason or a piece's meter), or
    the meter of kept windows."""
    if isinstance(key, str):
        return FILTER, key
    if key[0] == EXAMPLES_BY_METER:
        return METER_BEFORE_DEDUP, key[1]
    return FILTER, meter_count_name(key)


class ExtractExamples(beam.DoFn):
    """pyarrow Table of stage-1 rows → ((dataset, content key), Candidate), and per sequence and
    dataset a Counter of what the extraction kept and dropped (output "counts")."""

    def __init__(self, specs: list[DatasetSpec]):
        self._specs = specs

    def setup(self):
        from note_seq.protobuf import music_pb2

        from pipelines.extract.pieces import split_into_pieces

        self._parse = music_pb2.NoteSequence.FromString
        self._split = split_into_pieces

    @staticmethod
    def _count(dataset: str, counts: collections.Counter) -> beam.pvalue.TaggedOutput:
        return beam.pvalue.TaggedOutput("counts", (dataset, counts))

    def _examples(
        self, sequence, spec: DatasetSpec, pieces_cache: dict
    ) -> tuple[list, collections.Counter]:
        # Splitting and quantizing is shared by the datasets (all but the length cap are equal).
        if spec.max_piece_steps not in pieces_cache:
            piece_counts: collections.Counter = collections.Counter()
            pieces_cache[spec.max_piece_steps] = (
                self._split(sequence, spec.max_piece_steps, piece_counts),
                piece_counts,
            )
        pieces, piece_counts = pieces_cache[spec.max_piece_steps]
        return examples_from_pieces(pieces, spec, collections.Counter(piece_counts))

    def process(self, table) -> Iterator:
        columns = table.select(["id", "path", "note_sequence"]).to_pydict()
        for source_id, path, blob in zip(
            columns["id"], columns["path"], columns["note_sequence"], strict=True
        ):
            try:
                sequence = self._parse(blob)
            except Exception as e:  # stage 1 wrote it; a failure here means a damaged file
                _LOG.warning("cannot parse the NoteSequence of %s: %s", path, e)
                for spec in self._specs:
                    yield self._count(
                        spec.name,
                        collections.Counter(
                            {(STAGE, "sequences_in"): 1, (STAGE, "extract_errors"): 1}
                        ),
                    )
                continue
            pieces_cache: dict = {}
            for spec in self._specs:
                counts = collections.Counter({(STAGE, "sequences_in"): 1})
                try:
                    examples, extracted = self._examples(sequence, spec, pieces_cache)
                except Exception as e:  # one odd file must not stop a corpus-wide run
                    _LOG.warning("%s: extraction failed on %s: %r", spec.name, path, e)
                    counts[STAGE, "extract_errors"] += 1
                    yield self._count(spec.name, counts)
                    continue
                for key, value in extracted.items():
                    counts[_dataset_key(key)] += value
                counts[STAGE, "examples_extracted"] += len(examples)
                counts[STAGE, "sequences_with_examples"] += bool(examples)
                yield self._count(spec.name, counts)
                for example in examples:
                    tokens = tuple(
                        np.ascontiguousarray(example.tracks[track.column], dtype="<i2").tobytes()
                        for track in TRACKS[spec.kind]
                    )
                    candidate = Candidate(
                        source_id,
                        example.piece,
                        example.start_bar,
                        example.program,
                        example.meter,
                        path,
                        tokens,
                    )
                    yield (spec.name, example.content_key()), candidate


class KeepFirstCopy(beam.CombineFn):
    """Of all copies of a window, keep the smallest Candidate and count the copies."""

    def create_accumulator(self):
        return None, 0

    def add_input(self, accumulator, candidate):
        best, copies = accumulator
        return (candidate if best is None or candidate < best else best), copies + 1

    def merge_accumulators(self, accumulators):
        best, copies = None, 0
        for candidate, n in accumulators:
            if candidate is not None and (best is None or candidate < best):
                best = candidate
            copies += n
        return best, copies

    def extract_output(self, accumulator):
        return accumulator

    def get_accumulator_coder(self) -> beam.coders.Coder:
        return beam.coders.TupleCoder(
            [beam.coders.NullableCoder(CandidateCoder()), beam.coders.VarIntCoder()]
        )


def to_row(
    dataset_key: tuple[str, str],
    kept: tuple[Candidate, int],
    specs: dict[str, DatasetSpec],
    eval_fraction: float,
    test_fraction: float,
    families: dict[str, str],
) -> tuple[str, dict]:
    """(dataset, row of the dataset's schema); the split is that of the source's family."""
    (dataset, key), (candidate, _) = dataset_key, kept
    family = families.get(candidate.source_id, candidate.source_id)
    row = {
        "id": key,
        "source_id": candidate.source_id,
        "source_path": candidate.source_path,
        "split": split_of(family, eval_fraction, test_fraction),
        "start_bar": candidate.start_bar,
        "program": candidate.program,
        "piece": candidate.piece,
        "meter": candidate.meter,
    }
    for track, data in zip(TRACKS[specs[dataset].kind], candidate.tokens, strict=True):
        # A list, not a numpy array: rows are shuffled on their way to the Parquet files, and
        # Beam encodes lists of ints natively but pickles arrays (~5x slower for 2-bar rows).
        row[track.column] = np.frombuffer(data, dtype="<i2").tolist()
    return dataset, row


class MergeCounts(beam.CombineFn):
    """Sums Counters (the stats of a dataset: a few dozen keys, whatever the corpus size)."""

    def create_accumulator(self):
        return collections.Counter()

    def add_input(self, accumulator, counts):
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators):
        total = collections.Counter()
        for counts in accumulators:
            total.update(counts)
        return total

    def extract_output(self, accumulator):
        return dict(accumulator)


def make_stats(
    dataset: str,
    counts: dict,
    spec: DatasetSpec,
    leakage: dict | None = None,
    families: dict | None = None,
) -> dict:
    """stats.json of one dataset, from its merged counts, its leakage check and the run's
    families."""

    def group(name: str) -> dict[str, int]:
        return {k: v for (g, k), v in sorted(counts.items()) if g == name}

    filters, stage = group(FILTER), group(STAGE)
    splits = {split: counts.get((SPLIT, split), 0) for split in SPLITS}
    stages = {
        "sequences_in": stage.get("sequences_in", 0),
        "sequences_with_examples": stage.get("sequences_with_examples", 0),
        "examples_extracted": stage.get("examples_extracted", 0),
        "examples_after_dedup": stage.get("examples_after_dedup", 0),
        "near_copies_dropped": sum(group(DROPPED).values()),
        "examples_written": sum(splits.values()),
    }
    spec_fields = asdict(spec)
    programs = spec_fields["valid_programs"]
    if isinstance(programs, range) and programs.step == 1:
        spec_fields["valid_programs"] = f"{programs.start}-{programs.stop - 1}"
    elif programs is not None:
        spec_fields["valid_programs"] = sorted(programs)
    return {
        "dataset": dataset,
        "spec": spec_fields,
        "stages": stages,
        "extract_errors": stage.get("extract_errors", 0),
        "duplicates_across_corpus": stage.get("duplicates_across_corpus", 0),
        "filters": filters,
        "examples_by_meter_before_dedup": group(METER_BEFORE_DEDUP),
        "examples_by_meter": group(METER),
        "splits": splits,
        "source_files_by_split": {split: counts.get((SOURCES, split), 0) for split in SPLITS},
        "near_copies": {
            "dropped_by_split": group(DROPPED),
            "buckets_skipped": counts.get((SKIPPED, "buckets"), 0),
            "windows_in_skipped_buckets": counts.get((SKIPPED, "windows"), 0),
        },
        "families": families or {},
        "leakage": leakage or {},
    }


def _dedup_counts(element) -> tuple[str, collections.Counter]:
    (dataset, _), (_, copies) = element
    return dataset, collections.Counter(
        {(STAGE, "examples_after_dedup"): 1, (STAGE, "duplicates_across_corpus"): copies - 1}
    )


def _row_counts(element) -> tuple[str, collections.Counter]:
    dataset, row = element
    return dataset, collections.Counter({(SPLIT, row["split"]): 1, (METER, row["meter"]): 1})


@dataclass(frozen=True)
class SplitParams:
    """How windows are split: fractions of families, and the near-copy checks (see
    pipelines.splits)."""

    eval_fraction: float = DEFAULT_EVAL_FRACTION
    test_fraction: float = DEFAULT_TEST_FRACTION
    family_threshold: float = DEFAULT_FAMILY_THRESHOLD
    near_copy_threshold: float = DEFAULT_NEAR_COPY_THRESHOLD
    family_min_bars: int = DEFAULT_FAMILY_MIN_BARS
    leakage_sample: int = DEFAULT_LEAKAGE_SAMPLE

    def links_families(self, spec: DatasetSpec) -> bool:
        """Long windows link their sources into families; in short ones a shared window is as
        likely a stock figure, so held-out near-copies of train windows are dropped instead."""
        return spec.num_bars >= self.family_min_bars


class ToExamples(beam.PTransform):
    """pyarrow Tables of stage-1 rows → {"rows": (dataset, row) after de-duplication, split by
    family and without held-out near-copies, "counts": (dataset, Counter) to merge into stats,
    "leakage": (dataset, stats entry), "families": the families' stats entry}."""

    def __init__(self, specs: list[DatasetSpec], splits: SplitParams | None = None):
        super().__init__()
        self._specs = specs
        self._splits = splits or SplitParams()

    def expand(self, tables):
        specs = {spec.name: spec for spec in self._specs}
        kinds = {spec.name: spec.kind for spec in self._specs}
        splits = self._splits
        linking = {name: kinds[name] for name, s in specs.items() if splits.links_families(s)}
        dropping = {name: kinds[name] for name in specs if name not in linking}
        extracted = tables | "Extract" >> beam.ParDo(ExtractExamples(self._specs)).with_outputs(
            "counts", main="windows"
        )
        # Families see every copy of a window, before de-duplication keeps one source of it.
        families = (
            extracted.windows
            | "FamilyWindows" >> beam.Filter(lambda e: e[0][0] in linking)
            | "ToFamilyWindow" >> beam.Map(lambda e: (e[0][0], e[1].source_id, e[1].tokens))
            | "FindFamilies" >> FindFamilies(linking, splits.family_threshold)
        )
        kept = extracted.windows | "DedupAcrossCorpus" >> beam.CombinePerKey(KeepFirstCopy())
        split_rows = kept | "ToRow" >> beam.Map(
            lambda element, **kw: to_row(*element, **kw),
            specs=specs,
            eval_fraction=splits.eval_fraction,
            test_fraction=splits.test_fraction,
            families=beam.pvalue.AsDict(families["families"]),
        )
        checked = split_rows | "DropNearCopies" >> DropNearCopies(
            dropping, splits.near_copy_threshold
        )
        rows = checked["rows"]
        leakage = rows | "MeasureLeakage" >> MeasureLeakage(kinds, splits.leakage_sample)
        sources = (
            rows
            | "SourceOfRow" >> beam.Map(lambda e: (e[0], e[1]["split"], e[1]["source_id"]))
            | "DistinctSources" >> beam.Distinct()
            | "CountSource"
            >> beam.MapTuple(
                lambda dataset, split, _: (dataset, collections.Counter({(SOURCES, split): 1}))
            )
        )
        counts = (
            extracted.counts,
            kept | "DedupCounts" >> beam.Map(_dedup_counts),
            rows | "RowCounts" >> beam.Map(_row_counts),
            sources,
            checked["skipped"]
            | "SkippedCounts"
            >> beam.MapTuple(
                lambda dataset, n: (
                    dataset,
                    collections.Counter({(SKIPPED, "buckets"): 1, (SKIPPED, "windows"): n}),
                )
            ),
            checked["dropped"]
            | "DroppedCounts"
            >> beam.MapTuple(
                lambda dataset, split: (dataset, collections.Counter({(DROPPED, split): 1}))
            ),
            # Every dataset gets stats, even when no sequence reached it.
            tables.pipeline
            | "EveryDataset" >> beam.Create([(name, collections.Counter()) for name in specs]),
        ) | "AllCounts" >> beam.Flatten()
        return {
            "rows": rows,
            "counts": counts,
            "leakage": leakage,
            "families": families["summary"]
            | "Policy"
            >> beam.Map(
                lambda summary: {
                    **summary,
                    "linked_by": sorted(linking),
                    "near_copies_dropped_in": sorted(dropping),
                }
            ),
        }


class WriteDatasets(beam.PTransform):
    """Writes (dataset, row) to <output>/<dataset>/<split>-SSSSS-of-NNNNN.parquet and the counts
    to <output>/<dataset>/stats.json."""

    def __init__(self, output: str, specs: list[DatasetSpec], num_shards: int = 0):
        super().__init__()
        self._output = output.rstrip("/")
        self._specs = specs
        self._num_shards = num_shards

    def expand(self, outputs):
        names = [spec.name for spec in self._specs]
        parts = outputs["rows"] | "BySplit" >> beam.Partition(
            lambda element, _: (
                names.index(element[0]) * len(SPLITS) + SPLITS.index(element[1]["split"])
            ),
            len(names) * len(SPLITS),
        )
        for i, spec in enumerate(self._specs):
            for j, split in enumerate(SPLITS):
                _ = (
                    parts[i * len(SPLITS) + j]
                    | f"Rows_{spec.name}_{split}" >> beam.Values()
                    | f"Write_{spec.name}_{split}"
                    >> beam_parquet.WriteSortedParquet(
                        f"{self._output}/{spec.name}/{split}",
                        dataset_schema(spec),
                        # The window's content hash: unique in a dataset (the de-duplication
                        # key), and it scatters the windows of a tune over the file, which the
                        # training's bounded shuffle buffer wants.
                        ("id",),
                        file_name_suffix=".parquet",
                        num_shards=self._num_shards,
                        max_rows_per_shard=max_rows_per_shard(spec),
                        row_group_bytes=8 * 2**20,
                    )
                )
        specs = {spec.name: spec for spec in self._specs}
        output = self._output
        return (
            outputs["counts"]
            | "MergeCounts" >> beam.CombinePerKey(MergeCounts())
            | "Stats"
            >> beam.Map(
                lambda item, leakage, families: (
                    item[0],
                    make_stats(item[0], item[1], specs[item[0]], leakage.get(item[0]), families),
                ),
                leakage=beam.pvalue.AsDict(outputs["leakage"]),
                families=beam.pvalue.AsSingleton(outputs["families"]),
            )
            | "WriteStats"
            >> beam.MapTuple(
                lambda name, stats: beam_files.write_json(f"{output}/{name}/stats.json", stats)
            )
        )


class ReadNoteSequences(beam.PTransform):
    """PBegin → pyarrow Tables (one per row group) of stage 1's `notesequences-*.parquet`.

    The files are split into byte ranges that are reshuffled before reading, so the extraction
    that follows spreads over all workers even when stage 1 wrote a single file.
    """

    def __init__(self, folder: str, desired_bundle_size: int = 2**19):
        super().__init__()
        self._pattern = f"{folder.rstrip('/')}/notesequences-*.parquet"
        self._desired_bundle_size = desired_bundle_size

    def expand(self, pbegin):
        return (
            pbegin
            | "Pattern" >> beam.Create([self._pattern])
            | "ReadParquet"
            >> beam.io.ReadAllFromParquetBatched(
                desired_bundle_size=self._desired_bundle_size,
                columns=["id", "path", "note_sequence"],
            )
        )


def resolve_specs(names: str) -> list[DatasetSpec]:
    specs = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in DATASET_SPECS:
            raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(DATASET_SPECS)}")
        specs.append(DATASET_SPECS[name])
    if not specs:
        raise SystemExit("--datasets names no dataset")
    return specs


def build_pipeline(
    pipeline: beam.Pipeline,
    input_folder: str,
    output: str,
    specs: list[DatasetSpec],
    splits: SplitParams | None = None,
    num_shards: int = 0,
) -> None:
    """Adds stage 2 to `pipeline`."""
    _ = (
        pipeline
        | "ReadNoteSequences" >> ReadNoteSequences(input_folder)
        | "ToExamples" >> ToExamples(specs, splits)
        | "WriteDatasets" >> WriteDatasets(output, specs, num_shards)
    )


def format_summary(stats: dict) -> str:
    stages, splits = stats["stages"], stats["splits"]
    lines = [
        f"{stats['dataset']}: {stages['sequences_in']:,} sequences, {stages['sequences_with_examples']:,} with examples; "
        f"{stages['examples_extracted']:,} windows, {stats['duplicates_across_corpus']:,} duplicates across the corpus, "
        f"{stages['examples_after_dedup']:,} kept: "
        + ", ".join(f"{split} {n:,}" for split, n in splits.items()),
    ]
    top = sorted(stats["filters"].items(), key=lambda kv: -kv[1])[:8]
    lines += [f"    {reason:<40}{n:>9,}" for reason, n in top]
    if stats["extract_errors"]:
        lines.append(f"    extraction errors (see the log)       {stats['extract_errors']:>9,}")
    return "\n".join(lines)


@dataclass(frozen=True)
class ExamplesParams(SplitParams):
    """params.yaml's `examples` section, or the command-line flags of the same names. Which
    datasets a run writes is its `--datasets` flag: dvc.yaml names them as the stage's outputs."""


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Flags over params.yaml's `examples` section (with --params) over ExamplesParams."""
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--params", help="params.yaml: its examples section sets the defaults")
    defaults = read_params(params.parse_known_args(argv)[0].params, "examples", ExamplesParams)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[params])
    parser.add_argument("--input", default="datasets/notesequences", help="stage 1's output folder")
    parser.add_argument(
        "--output", default="datasets", help="one sub-folder per dataset is written here"
    )
    parser.add_argument(
        "--datasets", default=",".join(DATASET_SPECS), help="comma-separated names (default: all)"
    )
    for name, kind in typing.get_type_hints(SplitParams).items():
        parser.add_argument(f"--{name}", type=kind, default=getattr(defaults, name))
    parser.add_argument(
        "--num_shards", type=int, default=0, help="files per split; 0 = from the row count"
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Runs stage 2; returns the stats of every dataset. Unknown flags are Beam options."""
    args, beam_args = parse_args(argv)
    specs = resolve_specs(args.datasets)
    if (
        not 0 <= args.eval_fraction + args.test_fraction < 1
        or min(args.eval_fraction, args.test_fraction) < 0
    ):
        raise SystemExit("--eval_fraction and --test_fraction must be >= 0 and sum to less than 1")
    if (
        not 0
        <= min(args.family_threshold, args.near_copy_threshold)
        <= max(args.family_threshold, args.near_copy_threshold)
        < 1
    ):
        raise SystemExit("--family_threshold and --near_copy_threshold must be in [0, 1)")
    if args.family_min_bars < 1 or args.leakage_sample < 0:
        raise SystemExit("--family_min_bars must be >= 1 and --leakage_sample >= 0")
    if not beam_files.exists(f"{args.input.rstrip('/')}/notesequences-*.parquet"):
        raise SystemExit(
            f"no notesequences-*.parquet in {args.input!r}: run pipelines.notesequences first"
        )
    for spec in specs:
        folder = f"{args.output.rstrip('/')}/{spec.name}"
        beam_files.make_dirs(folder)
        shards = beam_parquet.output_patterns([f"{split}-*.parquet" for split in SPLITS])
        beam_files.clear_outputs(folder, [*shards, "stats.json"])
    splits = SplitParams(
        **{name: getattr(args, name) for name in typing.get_type_hints(SplitParams)}
    )
    pipeline = beam.Pipeline(options=pipeline_options(beam_args))
    build_pipeline(pipeline, args.input, args.output, specs, splits, args.num_shards)
    result = pipeline.run()
    result.wait_until_finish()
    all_stats = {}
    for spec in specs:
        all_stats[spec.name] = beam_files.read_json(
            f"{args.output.rstrip('/')}/{spec.name}/stats.json"
        )
        print(format_summary(all_stats[spec.name]))
    return all_stats


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    # Run the importable copy of this module, so that the DoFns pickled for the workers are
    # referenced by module name rather than as members of "__main__".
    from pipelines import examples

    examples.main()
