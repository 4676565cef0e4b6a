"""A user's MIDI file -> the window of tokens a model understands, or a reason why there is none.

The model reads one window of ``num_bars`` bars of its dataset's kind (a melody, a drum track or a
trio) on the 16-steps-per-bar grid. A user's file goes through the same steps as the training
data (`pipelines.extract.windows`: split on tempo/meter changes, keep 16-step bars, extract tracks, slice
windows), with three differences that suit one file chosen by a person rather than a corpus:

- melodies and drum tracks are extracted per MIDI track (note_seq's instrument number), so that
  ``--track`` can choose one; a trio takes its melody, bass and drums from the whole file;
- every program may carry a melody (the 2-bar training set keeps programs 0-31 only), tracks are
  not cut at 100 bars, and repeated windows are kept, so that any ``--start-bar`` can be reached;
- when nothing fits, `InputError` says why in words (no 4/4, only drums, too short, ...).

A polyphonic track is usable: like the training data, it is read as one voice (the note with the
latest onset, the highest of those starting together; see `pipelines.representation`).

Bars are counted from 0 at the start of the file, or of the section that follows a tempo or
time-signature change.
"""

from __future__ import annotations

import collections
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi
from note_seq.protobuf import music_pb2

from pipelines.extract.pieces import (
    METER_AS_PAIRS,
    METER_DROPPED,
    METER_KEPT,
    Piece,
    split_into_pieces,
)
from pipelines.extract.windows import (
    DATASET_SPECS,
    DatasetSpec,
    Example,
    segments_from_piece,
    windows_from_segment,
)
from pipelines.representation import (
    BASS_PROGRAMS,
    MELODY_MAX_PITCH,
    MELODY_MIN_PITCH,
    MELODY_PROGRAMS,
    TRACKS,
    midi_bytes_to_notesequence,
)

MAX_MIDI_BYTES = 64 * 1024 * 1024  # far above any real MIDI file; guards against a wrong path


class InputError(ValueError):
    """A problem with the user's input, told in words a user can act on."""


@dataclass
class Window:
    """The window chosen from a file, as the model reads it."""

    tokens: np.ndarray  # int64 [num_bars * 16, K], tracks in the order of TRACKS[kind]
    kind: str
    source: str  # the file it came from
    start_bar: int
    track: int | None  # MIDI track (note_seq instrument) of a melody or drum window
    program: int  # program of the melody track; -1 for drums
    qpm: float  # tempo of the section it came from
    meter: str

    def describe(self) -> str:
        where = f"track {self.track}, " if self.track is not None else ""
        bars = len(self.tokens) // 16
        return (
            f"{self.source}: {where}bars {self.start_bar}-{self.start_bar + bars - 1} "
            f"({self.kind}, {self.meter}, {self.qpm:g} qpm)"
        )


@dataclass
class TrackInfo:
    """One MIDI track (note_seq instrument) of the file, for choosing and for messages."""

    instrument: int
    program: int
    is_drum: bool
    num_notes: int

    def describe(self) -> str:
        if self.is_drum:
            what = "drums"
        else:
            what = (
                f"program {self.program} ({pretty_midi.program_to_instrument_name(self.program)})"
            )
        return f"track {self.instrument}: {what}, {self.num_notes} notes"


def read_notesequence(path: str | Path) -> music_pb2.NoteSequence:
    """Parse a MIDI file; InputError when it is missing, unreadable or not MIDI."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path}: the file is empty")
    if size > MAX_MIDI_BYTES:
        raise InputError(f"{path}: {size} bytes is too large for a MIDI file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the file ({error.strerror})") from error
    try:
        return midi_bytes_to_notesequence(data)
    except ValueError as error:
        hint = "" if data[:4] == b"MThd" else " (it does not start with a MIDI header)"
        raise InputError(f"{path}: not a readable MIDI file{hint}") from error


def tracks_of(ns: music_pb2.NoteSequence) -> list[TrackInfo]:
    """The MIDI tracks of a sequence that hold notes, by instrument number."""
    notes: dict[int, list] = collections.defaultdict(list)
    for note in ns.notes:
        notes[note.instrument].append(note)
    return [
        TrackInfo(
            instrument,
            int(group[0].program),
            bool(group[0].is_drum),
            len(group),
        )
        for instrument, group in sorted(notes.items())
    ]


def user_spec(dataset: str) -> DatasetSpec:
    """The dataset's extraction spec, loosened for one user file (see the module docstring)."""
    if dataset not in DATASET_SPECS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASET_SPECS)}")
    return dataclasses.replace(
        DATASET_SPECS[dataset],
        valid_programs=None,
        max_track_bars=None,
        dedup_within_sequence=False,
    )


def _only_instrument(ns: music_pb2.NoteSequence, instrument: int) -> music_pb2.NoteSequence:
    """A copy of `ns` holding only the notes of one instrument (tempos and meters kept)."""
    single = music_pb2.NoteSequence()
    single.CopyFrom(ns)
    del single.notes[:]
    single.notes.extend(n for n in ns.notes if n.instrument == instrument)
    return single


@dataclass
class _Extraction:
    """Every window of one source (a track, or the whole file for trios) and what was dropped."""

    track: int | None
    windows: list[tuple[Example, Piece]]
    counts: collections.Counter
    longest_bars: int  # longest extracted melody / drum track / trio segment


def _extract(ns: music_pb2.NoteSequence, spec: DatasetSpec, track: int | None) -> _Extraction:
    counts: collections.Counter = collections.Counter()
    windows, longest = [], 0
    for piece in split_into_pieces(ns, spec.max_piece_steps, counts):
        for segment in segments_from_piece(piece, spec, counts):
            longest = max(longest, segment.num_bars)
            windows += [(e, piece) for e in windows_from_segment(segment, piece, spec, counts)]
    return _Extraction(track, windows, counts, longest)


def _why_nothing(
    extractions: list[_Extraction], spec: DatasetSpec, tracks: list[TrackInfo], source: str
) -> str:
    """One message that explains why no window could be taken, most basic reason first."""
    counts: collections.Counter = collections.Counter()
    for extraction in extractions:
        counts.update(extraction.counts)
    reasons = [key for key in counts if isinstance(key, str)]
    meters = [key for key in counts if isinstance(key, tuple)]  # (group, meter)
    rejected_meters = sorted({meter for group, meter in meters if group == METER_DROPPED})
    kept_meters = [key for key in meters if key[0] in (METER_KEPT, METER_AS_PAIRS)]
    need = f"{spec.num_bars} bar{'s' if spec.num_bars > 1 else ''}"
    listing = "; ".join(t.describe() for t in tracks)

    if counts["sequence:no_notes"] and not tracks:
        return f"{source}: the file has no notes"
    if rejected_meters and not kept_meters:
        return (
            f"{source}: no section in 4/4 — the file is in {', '.join(rejected_meters)}; the model "
            "reads bars of four quarter notes (4/4 or 2/2; 2/4 is read as pairs of bars)"
        )
    failed = sorted(k for k in reasons if k.startswith(("split:failed", "quantize:failed")))
    if failed and not any(extraction.windows for extraction in extractions):
        return f"{source}: the notes could not be put on a 16th-note grid ({', '.join(failed)})"
    if spec.kind == "melody":
        pitched = [t for t in tracks if not t.is_drum]
        if not pitched:
            return f"{source}: no melody — the file holds only drums ({listing})"
        if counts["melody:notes_out_of_range"] and not counts["melody:extracted"]:
            return (
                f"{source}: no melody — every pitched note is outside the model's range "
                f"{MELODY_MIN_PITCH}..{MELODY_MAX_PITCH}"
            )
    if spec.kind == "drums" and not counts["drums:extracted"]:
        if not any(t.is_drum for t in tracks):
            return f"{source}: no drum track (drums are notes on MIDI channel 10) ({listing})"
        return f"{source}: no drum notes on the pitches of the 9 drum classes ({listing})"
    if spec.kind == "trio":
        missing = [
            what
            for key, what in (
                ("trio:missing_melody", f"melody (programs {MELODY_PROGRAMS.start}-31)"),
                ("trio:missing_bass", f"bass (programs {BASS_PROGRAMS.start}-39)"),
                ("trio:missing_drums", "drums"),
            )
            if counts[key]
        ]
        if missing and not any(extraction.windows for extraction in extractions):
            return (
                f"{source}: a trio needs a melody, a bass and a drum track; missing: "
                f"{', '.join(missing)} ({listing})"
            )
    longest = max((extraction.longest_bars for extraction in extractions), default=0)
    what = {"melody": "melody", "drums": "drum track", "trio": "stretch of all three tracks"}
    if longest < spec.num_bars:
        gap = "a bar or more of silence ends it" if spec.kind != "trio" else "all three must play"
        return (
            f"{source}: too short — the longest {what[spec.kind]} lasts {longest} bar"
            f"{'s' if longest != 1 else ''} in 4/4 and the model needs {need} ({gap})"
        )
    return f"{source}: no {need} window with any note in it"


def extract_window(
    ns: music_pb2.NoteSequence,
    dataset: str,
    *,
    track: int | None = None,
    start_bar: int | None = None,
    source: str = "input",
) -> Window:
    """The window of `dataset`'s kind the model should read from `ns`.

    By default the first window (earliest start) of the first MIDI track that yields one; `track`
    picks the MIDI track (melody and drum models), `start_bar` the first bar. InputError explains
    what is missing when there is no such window.
    """
    spec = user_spec(dataset)
    tracks = tracks_of(ns)
    if start_bar is not None and start_bar < 0:
        raise InputError(f"{source}: --start-bar must be >= 0, got {start_bar}")
    if spec.kind == "trio":
        if track is not None:
            raise InputError(
                f"{source}: --track does not apply to trio models: a trio takes its melody, bass and drums "
                "from the tracks of programs 0-31, 32-39 and channel 10"
            )
        extractions = [_extract(ns, spec, None)]
    else:
        wanted_drums = spec.kind == "drums"
        candidates = [t for t in tracks if t.is_drum == wanted_drums]
        if track is not None:
            chosen = [t for t in tracks if t.instrument == track]
            if not chosen:
                raise InputError(
                    f"{source}: no track {track}; tracks with notes: "
                    + ("; ".join(t.describe() for t in tracks) or "none")
                )
            if chosen[0].is_drum != wanted_drums:
                kind = "a drum" if wanted_drums else "a melody"
                raise InputError(f"{source}: {chosen[0].describe()} cannot be read by {kind} model")
            candidates = chosen
        extractions = [
            _extract(_only_instrument(ns, t.instrument), spec, t.instrument) for t in candidates
        ]
        if not candidates:
            extractions = [_extract(ns, spec, None)]  # only to explain why nothing fits

    # (order of the track, window) pairs: the first usable track wins, then the earliest window.
    found = [(i, x, w) for i, x in enumerate(extractions) for w in x.windows]
    if not found:
        raise InputError(_why_nothing(extractions, spec, tracks, source))
    if start_bar is not None:
        at_bar = [item for item in found if item[2][0].start_bar == start_bar]
        if not at_bar:
            starts = sorted({w[0].start_bar for _, _, w in found})
            raise InputError(
                f"{source}: no {spec.num_bars}-bar window with notes starts at bar {start_bar}"
                + (f" of track {track}" if track is not None else "")
                + f"; windows start at bars {_ranges(starts)}"
            )
        found = at_bar
    _, extraction, (example, piece) = min(
        found, key=lambda item: (item[0], item[2][1].index, item[2][0].start_bar)
    )
    columns = [t.column for t in TRACKS[spec.kind]]
    tokens = np.stack([example.tracks[c].astype(np.int64) for c in columns], axis=1)
    return Window(
        tokens=tokens,
        kind=spec.kind,
        source=source,
        start_bar=example.start_bar,
        track=extraction.track,
        program=example.program,
        qpm=piece.qpm,
        meter=piece.meter,
    )


def load_window(
    path: str | Path, dataset: str, *, track: int | None = None, start_bar: int | None = None
) -> Window:
    """`extract_window` of a MIDI file (see there); InputError on any problem with the file."""
    return extract_window(
        read_notesequence(path), dataset, track=track, start_bar=start_bar, source=str(path)
    )


def _ranges(values: list[int]) -> str:
    """Sorted ints as "0-5, 8, 10-12"."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)
