"""Build the multi-track corpus: folk tunes with MMA's drums and bass, and MMA's grooves alone.

    python -m pipelines.multitrack --input data --output data_multitrack [--library DIR]

What it is: real tunes (the folk corpus, `python -m pipelines.corpus`) and real grooves (drum
and bass patterns that musicians wrote for MMA's library), put together by a program. What it is
not: an arrangement anyone played. Each 4/4 or 2/2 single-voice tune of at least `--min_bars`
bars gets one groove, chosen by a hash of its path, and a harmonisation of one diatonic triad per
bar (`pipelines.multitrack.harmony`); `mma` plays the groove over those chords. The file keeps
the tune (channel 1, program 0), the groove's drums (channel 10) and its bass (one track of
programs 32-39, channel 2); MMA's chord, arpeggio and other tracks are left out, since they
would be read as more melodies. Every 4/4 groove of the library is also played alone, 8 bars over
I-vi-IV-V in C, with its drums and bass, for the drum datasets.

Output, byte for byte the same on every run over the same input with the same `mma` (a tune's
humanised drums also depend on the tunes that share its `mma` call, those whose grooves come from
the same library file):

- <output>/tunes/<the tune's path under --input>.mid
- <output>/grooves/<library file>/<groove>.mid
- <output>/REPORT.json: tunes read, accompanied and skipped (with the reason), grooves found and
  played, mma's version. Written last.

The build goes into <output>.partial and is renamed to <output> once complete. Licences: MMA and
its groove library are GPL-2+; the tunes carry their collections' terms (the Essen collection is
for non-commercial use only).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import math
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import apache_beam as beam

from pipelines.beamio.options import pipeline_options
from pipelines.corpus.abc_played import TICKS_PER_QUARTER
from pipelines.corpus.midi import Note, multitrack_midi_bytes, paired_notes, read_events
from pipelines.corpus.staging import build_then_move, check_output
from pipelines.multitrack import harmony, mma
from pipelines.params import read_params

REPORT_NAME = "REPORT.json"
BASS_PROGRAMS = range(32, 40)
DRUM_CHANNEL = 9
MELODY_CHANNEL, BASS_CHANNEL = 0, 1
METERS = ((4, 4), (2, 2))  # four quarter notes a bar: MMA's 4/4 grooves fit them
GROOVE_BARS = 8
GROOVE_CHORDS = ("C", "Am", "F", "G")
TUNES_PER_SONG = 200  # one `mma` call renders at most this many tunes
READ_BATCH = 500  # tune files read per element
QPM = 120  # MMA plays in beats; the tune's own tempo goes into the written file


@dataclass(frozen=True)
class MultitrackParams:
    """params.yaml's `multitrack` section, or the command-line flags of the same names."""

    min_bars: int = 16  # shorter tunes are skipped (a trio window is 16 bars)
    library: str = mma.DEFAULT_LIBRARY  # MMA groove library: every 4/4 groove in it is used


@dataclass(frozen=True)
class Tune:
    path: str  # under --input, "/"-separated
    meter: tuple[int, int]
    qpm: float
    bars: int
    notes: tuple[tuple[int, int, int, int], ...]  # (start, end, pitch, velocity) in ticks
    chords: tuple[str, ...]
    groove: mma.Groove


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def read_tune(folder: str, path: str, grooves: list[mma.Groove], min_bars: int) -> Tune | str:
    """The tune in `path`, harmonised and given its groove, or why it cannot take one."""
    try:
        with open(os.path.join(folder, path), "rb") as handle:
            ticks_per_quarter, events = read_events(handle.read())
    except (OSError, ValueError, IndexError, struct.error) as error:  # reported, not fatal
        return f"unreadable: {type(error).__name__}"
    meters, tempos = [], []
    for _, _, status, data in events:
        if status == 0xFF and data[0] == 0x58:
            meters.append((data[1], 2 ** data[2]))
        elif status == 0xFF and data[0] == 0x51:
            tempos.append(60_000_000 / int.from_bytes(data[1:4], "big"))
    voices = collections.defaultdict(list)
    for note in paired_notes(events):
        voices[note.track].append((note.start, note.end, note.pitch, note.velocity))
    if len(set(meters)) != 1 or meters[0] not in METERS:
        return "meter not 4/4 or 2/2 throughout"
    if len(voices) != 1:
        return "not one voice"
    scale = TICKS_PER_QUARTER / ticks_per_quarter
    (played,) = voices.values()
    notes = tuple(sorted((round(s * scale), round(e * scale), p, v) for s, e, p, v in played))
    bar = 4 * TICKS_PER_QUARTER
    bars = math.ceil(max(end for _, end, _, _ in notes) / bar)
    if bars < min_bars:
        return f"shorter than {min_bars} bars"
    if not grooves:
        return "no groove of the library plays drums and bass"
    chords = harmony.harmonise([harmony.Note(s / bar, e / bar, p) for s, e, p, _ in notes], bars)
    return Tune(
        path=path,
        meter=meters[0],
        qpm=tempos[0] if tempos else 120.0,
        bars=bars,
        notes=notes,
        chords=tuple(chord.name for chord in chords),
        groove=grooves[_hash(path) % len(grooves)],
    )


def song_text(parts: list[tuple[mma.Groove, list[str], int]]) -> str:
    """An MMA song of (groove, chord per bar, seed) parts, one after another. `RndSeed` and
    `Seq` before each part restart its groove and seed MMA's randomness, though not fully: some
    humanised drum hits still depend on the parts before it (2,003 of 2,312 tunes differed
    between two batchings), so the batches must be deterministic."""
    lines = [f"Tempo {QPM}"]
    for groove, chords, seed in parts:
        lines += [f"RndSeed {seed}", "Seq", f"Groove {groove.name}"]
        lines += chords
    return "\n".join(lines) + "\n"


def split_parts(rendered: mma.Rendered, lengths: list[int]) -> Iterator[list[Note]]:
    """The notes of each part (by its length in bars), from its first bar, at TICKS_PER_QUARTER;
    notes held past a part's end are cut there."""
    scale = TICKS_PER_QUARTER // rendered.ticks_per_quarter
    bar = 4 * rendered.ticks_per_quarter
    bounds, start = [], 0
    for length in lengths:
        bounds.append((start * bar, (start + length) * bar))
        start += length
    by_part: list[list[Note]] = [[] for _ in lengths]
    part = 0
    for note in rendered.notes:  # sorted by start
        while part < len(bounds) and note.start >= bounds[part][1]:
            part += 1
        if part == len(bounds):
            break
        low, high = bounds[part]
        by_part[part].append(
            Note(
                (note.start - low) * scale,
                (min(note.end, high) - low) * scale,
                note.channel,
                note.program,
                note.pitch,
                note.velocity,
                note.track,
            )
        )
    yield from by_part


def drums_and_bass(notes: list[Note]) -> tuple[list, list, int] | str:
    """(drum notes, bass notes, bass program) of one part: every drum note, and the MMA bass
    track (programs 32-39) that plays most; or why the part has no trio."""
    drums = [(n.start, n.end, n.pitch, n.velocity) for n in notes if n.channel == DRUM_CHANNEL]
    bass_tracks = collections.Counter(
        n.track for n in notes if n.channel != DRUM_CHANNEL and n.program in BASS_PROGRAMS
    )
    if not drums:
        return "the groove played no drums"
    if not bass_tracks:
        return "the groove played no bass"
    track = min(bass_tracks, key=lambda t: (-bass_tracks[t], t))
    bass = [n for n in notes if n.track == track and n.program in BASS_PROGRAMS]
    return drums, [(n.start, n.end, n.pitch, n.velocity) for n in bass], bass[0].program


def write_file(path: str, meter, qpm: float, tracks) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(multitrack_midi_bytes(meter, qpm, tracks))


def play_grooves(library_grooves: tuple[str, list[mma.Groove]], staging_dir: str) -> Iterator[dict]:
    """The grooves of one library file, each alone over I-vi-IV-V, written to grooves/; one
    record per groove: played, or why it was left out (no drums, no bass)."""
    _, grooves = library_grooves
    chords = [GROOVE_CHORDS[bar % len(GROOVE_CHORDS)] for bar in range(GROOVE_BARS)]
    parts = [(g, chords, _hash(f"{g.library}/{g.name}") % 2**31) for g in grooves]
    rendered = mma.render(song_text(parts))
    lengths = [GROOVE_BARS] * len(grooves)
    for groove, notes in zip(grooves, split_parts(rendered, lengths), strict=True):
        found = drums_and_bass(notes)
        record = {"groove": groove}
        if isinstance(found, str):
            yield {**record, "left_out": found}
            continue
        drums, bass, program = found
        write_file(
            os.path.join(staging_dir, "grooves", groove.library, f"{groove.name}.mid"),
            (4, 4),
            QPM,
            [(BASS_CHANNEL, program, bass), (DRUM_CHANNEL, 0, drums)],
        )
        yield record


class ReadTunes(beam.DoFn):
    """A batch of paths -> (groove library, tune) for each tune that takes a groove; a record
    of every other path on the "skipped" output."""

    def __init__(self, input_dir: str, min_bars: int):
        self.input_dir, self.min_bars = input_dir, min_bars

    def process(self, paths: list[str], grooves: list[mma.Groove]):
        grooves = sorted(grooves)  # a side input's order is the runner's
        for path in paths:
            tune = read_tune(self.input_dir, path, grooves, self.min_bars)
            if isinstance(tune, str):
                yield beam.pvalue.TaggedOutput("skipped", {"path": path, "skipped": tune})
            else:
                yield tune.groove.library, tune


def accompany(library_tunes: tuple[str, list[Tune]], staging_dir: str) -> Iterator[dict]:
    """The tunes whose grooves come from one library file -> their trio files, one record each.
    One `mma` call per TUNES_PER_SONG tunes: loading a library costs more than playing it."""
    _, tunes = library_tunes
    tunes = sorted(tunes, key=lambda tune: tune.path)
    for first in range(0, len(tunes), TUNES_PER_SONG):
        batch = tunes[first : first + TUNES_PER_SONG]
        song = song_text([(t.groove, list(t.chords), _hash(t.path) % 2**31) for t in batch])
        rendered = mma.render(song)
        for tune, notes in zip(batch, split_parts(rendered, [t.bars for t in batch]), strict=True):
            groove = f"{tune.groove.library}/{tune.groove.name}"
            parts = drums_and_bass(notes)
            if isinstance(parts, str):
                yield {"path": tune.path, "skipped": parts, "groove": groove}
                continue
            drums, bass, program = parts
            write_file(
                os.path.join(staging_dir, "tunes", tune.path),
                tune.meter,
                tune.qpm,
                [
                    (MELODY_CHANNEL, 0, list(tune.notes)),
                    (BASS_CHANNEL, program, bass),
                    (DRUM_CHANNEL, 0, drums),
                ],
            )
            yield {"path": tune.path, "groove": groove}


def list_midi(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith((".mid", ".midi"))
    )


class Summarize(beam.CombineFn):
    def create_accumulator(self) -> dict:
        return {
            "read": 0,
            "accompanied": 0,
            "skipped": collections.Counter(),
            "grooves": collections.Counter(),
            "grooves_found": 0,
            "grooves_left_out": {},
        }

    def add_input(self, acc: dict, record: dict) -> dict:
        if isinstance(record.get("groove"), mma.Groove):  # a groove played alone
            acc["grooves_found"] += 1
            if "left_out" in record:
                name = f"{record['groove'].library}/{record['groove'].name}"
                acc["grooves_left_out"][name] = record["left_out"]
            return acc
        acc["read"] += 1
        if "skipped" in record:
            acc["skipped"][record["skipped"]] += 1
        else:
            acc["accompanied"] += 1
            acc["grooves"][record["groove"]] += 1
        return acc

    def merge_accumulators(self, accumulators) -> dict:
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["read"] += acc["read"]
            merged["accompanied"] += acc["accompanied"]
            merged["skipped"].update(acc["skipped"])
            merged["grooves"].update(acc["grooves"])
            merged["grooves_found"] += acc["grooves_found"]
            merged["grooves_left_out"].update(acc["grooves_left_out"])
        return merged

    def extract_output(self, acc: dict) -> dict:
        left_out = acc["grooves_left_out"]
        return {
            "grooves_found": acc["grooves_found"],
            "grooves_played": acc["grooves_found"] - len(left_out),
            "grooves_left_out": {name: left_out[name] for name in sorted(left_out)},
            "tunes_read": acc["read"],
            "tunes_accompanied": acc["accompanied"],
            "tunes_skipped": dict(sorted(acc["skipped"].items())),
            "grooves_used": len(acc["grooves"]),
        }


def write_report(summary: dict, folder: str, settings: dict) -> None:
    with open(os.path.join(folder, REPORT_NAME), "w", encoding="utf-8") as handle:
        json.dump({**settings, **summary}, handle, indent=1)
        handle.write("\n")


def build_pipeline(
    pipeline: beam.Pipeline,
    paths: list[str],
    args: argparse.Namespace,
    grooves: list[mma.Groove],
    staging: str,
    settings: dict,
) -> None:
    by_library = collections.defaultdict(list)
    for groove in grooves:
        by_library[groove.library].append(groove)
    batches = [paths[i : i + READ_BATCH] for i in range(0, len(paths), READ_BATCH)]
    played = (
        pipeline
        | "Libraries" >> beam.Create(sorted(by_library.items()))
        | "SpreadLibraries" >> beam.Reshuffle()
        | "PlayGrooves" >> beam.FlatMap(play_grooves, staging)
    )
    playing = played | "Playing" >> beam.FlatMap(
        lambda record: [] if "left_out" in record else [record["groove"]]
    )
    tunes = (
        pipeline
        | "Batches" >> beam.Create(batches)
        | "SpreadBatches" >> beam.Reshuffle()
        | "ReadTunes"
        >> beam.ParDo(
            ReadTunes(args.input, args.min_bars), beam.pvalue.AsList(playing)
        ).with_outputs("skipped", main="tunes")
    )
    accompanied = (
        tunes.tunes
        | "ByLibrary" >> beam.GroupByKey()
        | "Accompany" >> beam.FlatMap(accompany, staging)
    )
    _ = (
        (played, tunes.skipped, accompanied)
        | "All" >> beam.Flatten()
        | "Summarize" >> beam.CombineGlobally(Summarize())
        | "WriteReport" >> beam.Map(write_report, staging, settings)
    )


def build(args: argparse.Namespace, beam_args: list[str]) -> dict:
    """Run the pipeline into <output>.partial, then rename it to <output>; returns the report."""
    output = os.path.abspath(args.output)
    check_output(output, args.overwrite)
    grooves = mma.main_grooves(args.library)
    if not grooves:
        raise SystemExit(f"no 4/4 grooves in {args.library}")
    paths = list_midi(args.input)
    settings = {
        "mma": mma.version(),
        "library": os.path.basename(args.library.rstrip("/")),
        "min_bars": args.min_bars,
    }

    def run(staging: str) -> None:
        with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
            build_pipeline(pipeline, paths, args, grooves, staging, settings)

    return build_then_move(output, run, REPORT_NAME)


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Flags over params.yaml's `multitrack` section (with --params) over MultitrackParams."""
    params = argparse.ArgumentParser(add_help=False)
    params.add_argument("--params", help="params.yaml: its multitrack section sets the defaults")
    defaults = read_params(params.parse_known_args(argv)[0].params, "multitrack", MultitrackParams)
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.multitrack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Other flags are Beam pipeline options.",
        parents=[params],
    )
    parser.add_argument("--input", default="data", help="the folk corpus (MIDI files)")
    parser.add_argument("--output", required=True, help="folder to create, e.g. data_multitrack")
    parser.add_argument("--library", default=defaults.library, help="MMA groove library")
    parser.add_argument(
        "--min_bars", type=int, default=defaults.min_bars, help="shorter tunes are skipped"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args, beam_args = parse_args(argv)
    started = time.monotonic()
    try:
        mma.executable()
    except mma.MMAMissing as missing:
        raise SystemExit(str(missing)) from None
    report = build(args, beam_args)
    skipped = ", ".join(f"{reason} {n:,}" for reason, n in report["tunes_skipped"].items())
    print(
        f"{report['tunes_accompanied']:,} of {report['tunes_read']:,} tunes accompanied "
        f"({skipped}); {report['grooves_played']} of {report['grooves_found']} grooves play "
        f"drums and bass; {args.output} written in {time.monotonic() - started:.0f} s"
    )
    return report
