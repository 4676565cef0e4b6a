"""Build the default corpus: the folk-tune collections shipped with music21, one MIDI file per tune.

    python -m pipelines.corpus --output data [--collections essenFolksong,oneills1850] [--limit N]

Each tune is played as a folk musician reads it: repeats and first/second endings expanded, ties
joined, grace notes and chord symbols left out; a tune that opens with a pickup is shifted so its
first full bar starts on a bar line. Each MIDI file records the meter of the first bar (4/4 when
the tune has none) and the tempo of its Q: field (120 quarters per minute without one).

Output, byte for byte the same on every machine and run (data.dvc records its hash):

- <output>/<collection>/<abc file stem>/<index in file>_X<reference number>.mid
- <output>/REPORT.json: tunes found / converted / failed per collection, every failure with its
  reason, first meters, pickup shifts, fallback rescues. Written last.

The build goes into <output>.partial and is renamed to <output> only once complete. A tune the
fast route (music21's ABC tokenizer + our own bar walk) cannot read is retried through music21's
streams; a tune both fail on is listed in the report and never stops the run.

Licences: the Essen folksong collection is for non-commercial use only.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator

import apache_beam as beam
import music21

from pipelines.beamio.options import pipeline_options
from pipelines.corpus.abc_played import TICKS_PER_QUARTER, PlayedTune
from pipelines.corpus.abc_streams import play_with_streams
from pipelines.corpus.abc_tokens import play_with_tokens
from pipelines.corpus.abc_tunes import Tune, count_tunes, decode_abc, split_tunes
from pipelines.corpus.midi import VELOCITY, midi_bytes
from pipelines.corpus.staging import build_then_move, check_output

DEFAULT_COLLECTIONS = ("essenFolksong", "oneills1850", "airdsAirs", "ryansMammoth", "miscFolk")
REPORT_NAME = "REPORT.json"
_MEMORY_ADDRESS = re.compile(r"0x[0-9a-fA-F]+|id\(\)=\d+")


def music21_corpus_dir() -> str:
    return os.path.join(os.path.dirname(music21.__file__), "corpus")


@dataclasses.dataclass(frozen=True)
class FileSlice:
    """The first `tunes` tunes of one ABC file."""

    collection: str
    file: str  # path inside the collection, "/"-separated
    tunes: int


def select_files(
    source: str, collections_: list[str], patterns: list[str], limit: int | None
) -> list[FileSlice]:
    """The ABC files to convert, in a fixed order, with at most `limit` tunes per collection."""
    slices = []
    for collection in collections_:
        folder = os.path.join(source, collection)
        if not os.path.isdir(folder):
            raise SystemExit(f"no collection {collection!r} in {source}")
        files = sorted(
            os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
            for root, _, names in os.walk(folder)
            for name in names
            if name.endswith(".abc")
        )
        left = limit
        for file in files:
            if patterns and not any(fnmatch.fnmatch(f"{collection}/{file}", p) for p in patterns):
                continue
            if left is not None and left <= 0:
                break
            with open(os.path.join(folder, file), "rb") as handle:
                found = count_tunes(decode_abc(handle.read()))
            taken = found if left is None else min(found, left)
            if taken > 0:
                slices.append(FileSlice(collection, file, taken))
            if left is not None:
                left -= taken
    return slices


def read_tunes(file_slice: FileSlice, source: str) -> Iterator[Tune]:
    path = os.path.join(source, file_slice.collection, file_slice.file)
    with open(path, "rb") as handle:
        text = decode_abc(handle.read())
    yield from split_tunes(text, file_slice.collection, file_slice.file, stop=file_slice.tunes)


def _reason(error: Exception) -> str:
    """A short, reproducible description of an error (no memory addresses)."""
    message = _MEMORY_ADDRESS.sub("...", str(error)).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(error).__name__}: {first}"[:200]


class ConvertTune(beam.DoFn):
    """ABC text of one tune -> a MIDI file in the staging folder, and a small record of it."""

    def __init__(self, staging_dir: str):
        self.staging_dir = staging_dir

    def process(self, tune: Tune) -> Iterator[dict]:
        record = {
            "collection": tune.collection,
            "file": tune.file,
            "index": tune.index,
            "x": tune.x,
        }
        played: PlayedTune | None = None
        try:
            played = play_with_tokens(tune.text, tune.abc_version)
        except Exception as error:  # any bad tune must not stop the corpus
            record["error"] = _reason(error)
            try:
                played = play_with_streams(tune.text, tune.abc_version)
            except Exception as fallback_error:
                record["fallback_error"] = _reason(fallback_error)
        if played is None:
            yield record
            return
        path = os.path.join(self.staging_dir, tune.midi_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(midi_bytes(played))
        record.update(
            path=tune.midi_path,
            meter="none" if played.meter is None else f"{played.meter[0]}/{played.meter[1]}",
            shifted=played.pickup_shift > 0,
            repeated=played.bars_played > played.bars_written,
            notes=len(played.notes),
            voices=played.voices,
        )
        yield record


def _tune_order(tune: dict) -> tuple[str, str, int]:
    return tune["collection"], tune["file"], tune["index"]


class SummarizeTunes(beam.CombineFn):
    """Counts over all tune records; keeps only the (few) failures and rescues in full."""

    def create_accumulator(self) -> dict:
        return {
            "counts": collections.Counter(),  # (collection, found|converted|failed|notes)
            "meters": collections.Counter(),
            "shifted": 0,
            "repeated": 0,
            "multi_voice": 0,
            "failures": [],
            "rescued": [],
        }

    def add_input(self, acc: dict, record: dict) -> dict:
        collection = record["collection"]
        acc["counts"][(collection, "found")] += 1
        tune = {key: record[key] for key in ("collection", "file", "index", "x")}
        if "fallback_error" in record:
            acc["counts"][(collection, "failed")] += 1
            acc["failures"].append(
                {**tune, "reason": record["error"], "fallback_reason": record["fallback_error"]}
            )
            return acc
        acc["counts"][(collection, "converted")] += 1
        acc["counts"][(collection, "notes")] += record["notes"]
        acc["meters"][record["meter"]] += 1
        acc["shifted"] += record["shifted"]
        acc["repeated"] += record["repeated"]
        acc["multi_voice"] += record["voices"] > 1
        if "error" in record:
            acc["rescued"].append({**tune, "reason": record["error"]})
        return acc

    def merge_accumulators(self, accumulators) -> dict:
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["counts"].update(acc["counts"])
            merged["meters"].update(acc["meters"])
            merged["shifted"] += acc["shifted"]
            merged["repeated"] += acc["repeated"]
            merged["multi_voice"] += acc["multi_voice"]
            merged["failures"] += acc["failures"]
            merged["rescued"] += acc["rescued"]
        return merged

    def extract_output(self, acc: dict) -> dict:
        names = sorted({collection for collection, _ in acc["counts"]})
        per_collection = {
            name: {
                key: acc["counts"][(name, key)] for key in ("found", "converted", "failed", "notes")
            }
            for name in names
        }
        total = {
            key: sum(counts[key] for counts in per_collection.values())
            for key in ("found", "converted", "failed", "notes")
        }
        meters = acc["meters"]
        return {
            "collections": per_collection,
            "total": total,
            # Meter of each converted tune's first bar; "none" tunes are written as 4/4.
            "first_meters": {m: meters[m] for m in sorted(meters, key=lambda m: (-meters[m], m))},
            "shifted_for_pickup": acc["shifted"],
            "repeats_expanded": acc["repeated"],  # tunes played longer than written
            "multi_voice_tunes": acc["multi_voice"],
            "rescued_by_fallback": len(acc["rescued"]),
            "failures": sorted(acc["failures"], key=_tune_order),
            "rescued": sorted(acc["rescued"], key=_tune_order),
        }


def build_pipeline(
    pipeline: beam.Pipeline, slices: list[FileSlice], source: str, staging_dir: str, settings: dict
) -> None:
    _ = (
        pipeline
        | "ListFiles" >> beam.Create(slices)
        | "SplitTunes" >> beam.FlatMap(read_tunes, source)
        # One element per tune, spread evenly over the workers (books differ 10x in size).
        | "SpreadTunes" >> beam.Reshuffle()
        | "ConvertTunes" >> beam.ParDo(ConvertTune(staging_dir))
        | "Summarize" >> beam.CombineGlobally(SummarizeTunes())
        | "WriteReport" >> beam.Map(write_report, staging_dir, settings)
    )


def write_report(summary: dict, folder: str, settings: dict) -> None:
    report = {**settings, **summary}
    with open(os.path.join(folder, REPORT_NAME), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, sort_keys=False, ensure_ascii=False)
        handle.write("\n")


def format_summary(report: dict, output: str, seconds: float) -> str:
    total = report["total"]
    lines = [f"{'collection':<16}{'found':>8}{'converted':>11}{'failed':>8}{'notes':>11}"]
    for name, counts in report["collections"].items():
        lines.append(
            f"{name:<16}{counts['found']:>8,}{counts['converted']:>11,}"
            f"{counts['failed']:>8,}{counts['notes']:>11,}"
        )
    lines.append(
        f"{'total':<16}{total['found']:>8,}{total['converted']:>11,}"
        f"{total['failed']:>8,}{total['notes']:>11,}"
    )
    meters = ", ".join(f"{m} {n:,}" for m, n in report["first_meters"].items())
    lines += [
        f"first meters: {meters}",
        f"shifted for a pickup: {report['shifted_for_pickup']:,}; "
        f"repeats expanded: {report['repeats_expanded']:,}; "
        f"rescued by the music21-stream fallback: {report['rescued_by_fallback']:,}",
    ]
    for failure in report["failures"][:20]:
        lines.append(
            f"  failed {failure['collection']}/{failure['file']} X:{failure['x']}: "
            f"{failure['reason']}"
        )
    lines.append(
        f"{total['failed']:,} of {total['found']:,} tunes failed "
        f"({100 * total['failed'] / max(total['found'], 1):.2f} %); "
        f"{output} written in {seconds:.0f} s"
    )
    return "\n".join(lines)


def tree_digest(folder: str) -> str:
    """sha256 over every file's relative path and bytes, in sorted order."""
    digest = hashlib.sha256()
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, folder).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def build_corpus(args: argparse.Namespace, beam_args: list[str]) -> dict:
    """Run the pipeline into <output>.partial, then rename it to <output>; returns the report."""
    output = os.path.abspath(args.output)
    check_output(output, args.overwrite)
    source = args.source or music21_corpus_dir()
    chosen = args.collections
    if chosen is None:
        chosen = (
            list(DEFAULT_COLLECTIONS)
            if args.source is None
            else sorted(entry.name for entry in os.scandir(source) if entry.is_dir())
        )
    slices = select_files(source, chosen, args.files, args.limit)
    if not slices:
        raise SystemExit("no tunes selected")
    settings = {
        "source": f"music21=={music21.__version__} corpus" if args.source is None else "custom",
        "selection": {"collections": chosen, "files": args.files, "limit": args.limit},
        "midi": {"ticks_per_quarter": TICKS_PER_QUARTER, "velocity": VELOCITY},
    }

    def run(staging: str) -> None:
        with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
            build_pipeline(pipeline, slices, source, staging, settings)

    return build_then_move(output, run, REPORT_NAME)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Other flags are Beam pipeline options (default: DirectRunner, one worker per "
        "core; e.g. --direct_num_workers=1).",
    )
    parser.add_argument("--output", required=True, help="folder to create, e.g. data")
    parser.add_argument(
        "--collections",
        type=lambda text: [name for name in text.split(",") if name],
        default=None,
        help=f"comma-separated collections (default: {','.join(DEFAULT_COLLECTIONS)}; "
        "with --source, every folder in it)",
    )
    parser.add_argument(
        "--files",
        action="append",
        default=[],
        metavar="GLOB",
        help="only ABC files whose <collection>/<file> path matches (repeatable), "
        "e.g. 'essenFolksong/altdeu1*.abc'",
    )
    parser.add_argument(
        "--limit", type=int, default=None, help="at most N tunes per collection, in file order"
    )
    parser.add_argument(
        "--source", default=None, help="folder of collections (default: music21's corpus)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing, non-empty --output"
    )
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, beam_args = parse_args(argv)
    started = time.monotonic()
    report = build_corpus(args, beam_args)
    print(format_summary(report, args.output, time.monotonic() - started))
    return report
