"""NoteSequence -> training examples: the per-sequence work of the examples stage.

`examples_from_notesequence(ns, spec)` runs the steps of magenta's MusicVAE converters on one
NoteSequence and returns the windows it yields plus a Counter of everything it dropped or cut:

1. split on tempo and time-signature changes, keep meters with a 16-step bar (2/4 read as pairs
   of bars), quantize at 4 steps per quarter (`pipelines.extract.pieces`);
2. extract melodies, drum tracks or trios from every piece (`pipelines.extract.tracks`);
3. slice every window of `num_bars` bars, sliding by `hop_bars` bars, inside each extracted
   segment; drop windows with no note onset at all ("window:all_rest") and windows identical to
   an earlier window of the same sequence ("window:duplicate_in_sequence", e.g. the repeats of
   an AABB tune; the stage still de-duplicates across the corpus). In melody windows a note-off
   before the window's first note-on (the end of a note of the previous bar) becomes a no-event,
   as magenta's sliced Melody does, so every melody window is canonical. Trio windows keep it:
   magenta's TrioConverter slices the encoded tensors, not Melody objects.

A melody of N bars thus yields N - num_bars + 1 windows (before those two filters). Counter keys
are "<step>:<reason>" (see the docstrings of pipelines.extract.pieces and pipelines.extract.tracks) plus
melody:too_short / drums:too_short / trio:too_short [segment shorter than a window] and
(EXAMPLES_BY_METER, <meter>) [window kept]. Nothing is raised for odd data: a sequence that yields
nothing is explained by its counts.

Magenta also caps the windows of one sequence at 5, sampled afresh at every epoch
(max_tensors_per_notesequence); a static dataset keeps them all instead.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from note_seq.protobuf import music_pb2

from pipelines.extract.pieces import Piece, split_into_pieces
from pipelines.extract.tracks import Segment, drum_segments, melody_segments, trio_segments
from pipelines.representation import (
    MELODY_FIRST_PITCH_TOKEN,
    MELODY_MAX_PITCH,
    MELODY_MIN_PITCH,
    MELODY_PROGRAMS,
    STEPS_PER_BAR,
    STEPS_PER_QUARTER,
    TRACKS,
    canonical_melody,
)

# Counter key of the windows kept per meter, (EXAMPLES_BY_METER, meter): readers get the meter
# without parsing it out of a string.
EXAMPLES_BY_METER = "examples_by_meter"


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset extracts from a NoteSequence.

    `valid_programs` keeps melody tracks of these programs only (None: every non-drum program;
    trios always take programs 0-31 for the melody and 32-39 for the bass). `gap_bars`: bars of
    silence that end a melody or drum track, or for trios the coverage gap a track may leave.
    `max_track_bars`: melodies and drum tracks are cut to this many bars before slicing, and
    trios look at this many bars of a piece (magenta: 100 and 1024). `max_piece_steps`: longer
    pieces are dropped (piece:too_long), a guard against broken files.
    """

    name: str
    kind: str
    num_bars: int
    hop_bars: int = 1
    steps_per_quarter: int = STEPS_PER_QUARTER
    valid_programs: Collection[int] | None = None
    gap_bars: int = 1
    min_pitch: int = MELODY_MIN_PITCH
    max_pitch: int = MELODY_MAX_PITCH
    max_track_bars: int | None = 100
    max_piece_steps: int = 100_000  # ~1.7 hours at 120 qpm
    dedup_within_sequence: bool = True

    def __post_init__(self) -> None:
        if self.kind not in TRACKS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {sorted(TRACKS)}")
        if self.steps_per_quarter != STEPS_PER_QUARTER:
            raise ValueError(f"the representation has {STEPS_PER_QUARTER} steps per quarter")
        if self.num_bars < 1 or self.hop_bars < 1 or self.gap_bars < 0:
            raise ValueError("num_bars and hop_bars must be >= 1 and gap_bars >= 0")
        if not MELODY_MIN_PITCH <= self.min_pitch <= self.max_pitch <= MELODY_MAX_PITCH:
            raise ValueError("min_pitch..max_pitch must lie within 21..108")

    @property
    def num_steps(self) -> int:
        """Tokens per track in one window."""
        return self.num_bars * STEPS_PER_BAR


DATASET_SPECS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        # magenta cat-mel_2bar: OneHotMelodyConverter(valid_programs=MEL_PROGRAMS, max_bars=100,
        # slice_bars=2, gap_bars=1)
        DatasetSpec("mel_2bar", "melody", num_bars=2, valid_programs=MELODY_PROGRAMS),
        # magenta mel_16bar_converter: every program, max_bars=100, slice_bars=16
        DatasetSpec("mel_16bar", "melody", num_bars=16),
        # magenta cat-drums_2bar: DrumsConverter(max_bars=100, slice_bars=2, gap_bars=1)
        DatasetSpec("drums_2bar", "drums", num_bars=2),
        # magenta trio_16bar_converter: TrioConverter(slice_bars=16, gap_bars=2, max_bars=1024)
        DatasetSpec("trio_16bar", "trio", num_bars=16, gap_bars=2, max_track_bars=1024),
    )
}


@dataclass(eq=False)  # arrays inside: compare content_key() instead
class Example:
    """One window: `tracks` maps each column of `TRACKS[kind]` to int16 tokens [num_bars*16]."""

    kind: str
    start_bar: int  # first bar of the window in its piece (16-step bars)
    program: int  # program of the melody track; -1 for drums
    tracks: dict[str, np.ndarray]
    piece: int = 0  # index of the piece of the sequence (split on tempo/meter changes)
    meter: str = "4/4"  # time signature of the piece
    _key: str | None = field(default=None, init=False, repr=False, compare=False)

    def content_key(self) -> str:
        """sha256 (hex) of the kind and the tokens: equal keys mean equal windows."""
        if self._key is None:
            digest = hashlib.sha256(self.kind.encode())
            for spec in TRACKS[self.kind]:
                digest.update(b"\0" + spec.column.encode() + b"\0")
                digest.update(np.ascontiguousarray(self.tracks[spec.column], dtype="<i2").tobytes())
            self._key = digest.hexdigest()
        return self._key


def _has_onset(tokens: np.ndarray, track_type: str) -> np.ndarray:
    """bool per window row: does the window hold a note-on (melody) or a hit (drums)?"""
    if track_type == "melody":
        return (tokens >= MELODY_FIRST_PITCH_TOKEN).any(axis=-1)
    return (tokens != 0).any(axis=-1)


def windows_from_segment(
    segment: Segment, piece: Piece, spec: DatasetSpec, counts: collections.Counter
) -> list[Example]:
    """Every window of `spec.num_bars` bars of a segment, sliding by `spec.hop_bars` bars, that
    holds at least one onset."""
    if segment.num_bars < spec.num_bars:
        counts[f"{spec.kind}:too_short"] += 1
        return []
    hop_steps = spec.hop_bars * STEPS_PER_BAR
    windows = {
        column: np.lib.stride_tricks.sliding_window_view(tokens, spec.num_steps)[::hop_steps]
        for column, tokens in segment.tokens.items()
    }
    if spec.kind == "melody":  # magenta's Melody slices; its trio slices keep the note-off
        windows["tokens"] = canonical_melody(windows["tokens"])
    has_onset = np.zeros(len(next(iter(windows.values()))), dtype=bool)
    for track in TRACKS[spec.kind]:
        has_onset |= _has_onset(windows[track.column], track.track_type)
    counts["window:all_rest"] += int((~has_onset).sum())
    first_bar = segment.start_step // STEPS_PER_BAR
    return [
        Example(
            kind=spec.kind,
            start_bar=first_bar + int(row) * spec.hop_bars,
            program=segment.program,
            tracks={column: rows[row].astype(np.int16) for column, rows in windows.items()},
            piece=piece.index,
            meter=piece.meter,
        )
        for row in np.flatnonzero(has_onset)
    ]


def segments_from_piece(
    piece: Piece, spec: DatasetSpec, counts: collections.Counter
) -> list[Segment]:
    """The melodies, drum tracks or trios of one piece, as `spec` asks."""
    if spec.kind == "melody":
        return melody_segments(
            piece.notes,
            valid_programs=spec.valid_programs,
            min_pitch=spec.min_pitch,
            max_pitch=spec.max_pitch,
            gap_bars=spec.gap_bars,
            max_bars=spec.max_track_bars,
            counts=counts,
        )
    if spec.kind == "drums":
        return drum_segments(
            piece.notes, gap_bars=spec.gap_bars, max_bars=spec.max_track_bars, counts=counts
        )
    return trio_segments(
        piece.notes,
        piece.num_steps,
        min_pitch=spec.min_pitch,
        max_pitch=spec.max_pitch,
        gap_bars=spec.gap_bars,
        max_bars=spec.max_track_bars,
        counts=counts,
    )


def examples_from_pieces(
    pieces: list[Piece], spec: DatasetSpec, counts: collections.Counter | None = None
) -> tuple[list[Example], collections.Counter]:
    """Examples of already split and quantized pieces (reuse `split_into_pieces` across specs)."""
    counts = collections.Counter() if counts is None else counts
    examples: list[Example] = []
    seen: set[str] = set()
    for piece in pieces:
        for segment in segments_from_piece(piece, spec, counts):
            for example in windows_from_segment(segment, piece, spec, counts):
                if spec.dedup_within_sequence:
                    key = example.content_key()
                    if key in seen:
                        counts["window:duplicate_in_sequence"] += 1
                        continue
                    seen.add(key)
                examples.append(example)
                counts[EXAMPLES_BY_METER, piece.meter] += 1
    for key in [key for key, value in counts.items() if value == 0]:
        del counts[key]  # steps add zero counts; keep the report to what happened
    return examples, counts


def examples_from_notesequence(
    ns: music_pb2.NoteSequence, spec: DatasetSpec
) -> tuple[list[Example], collections.Counter]:
    """All examples of `spec` in one NoteSequence, and the counts of what was dropped or cut."""
    counts: collections.Counter = collections.Counter()
    pieces = split_into_pieces(ns, spec.max_piece_steps, counts)
    return examples_from_pieces(pieces, spec, counts)
