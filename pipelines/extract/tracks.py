"""Track extraction from a quantized piece: melodies, drum tracks and trios, as magenta does it.

Each extractor turns the notes of one piece (`pipelines.extract.pieces.Piece`) into segments: stretches
of whole bars, aligned on the piece's bar lines, holding one token stream per track of the kind.
Windows are sliced from segments afterwards (`pipelines.extract.windows`).

Melodies (magenta's `extract_melodies` as OneHotMelodyConverter calls it): one voice per
(instrument, program) of the non-drum notes, by the monophonic reduction of
`pipelines.representation` (highest pitch on a shared onset, a later onset cuts a held note).
A melody starts at the bar line before its first note; it ends when the next onset comes
`gap_bars` bars (16 steps each) or more after the end of the last note, and its last bar is the
one holding that end (tests/test_extract.py checks these tracks against note_seq's Melody).
Notes outside `min_pitch..max_pitch` are dropped before extraction, as magenta's converter does
(not transposed), and counted. Melodies longer than `max_bars` are cut to their first
`max_bars` bars (magenta's max_bars=100, "truncate long melodies before slicing").

Drum tracks (magenta's `extract_drum_tracks` in DrumsConverter): all drum notes of the piece
form one track (whatever their instrument), each hit mapped to its drum class (hits on pitches of
no class are dropped and counted); a track ends when the next hit comes `gap_bars` bars or more
after the step following the last hit.

Trios (magenta's TrioConverter): every combination of one melody track (non-drum, programs
0-31), one bass track (32-39) and one drum track (per drum instrument), each encoded over the
whole piece without gap splitting. A bar is covered by a track when one of its notes sounds in
it; coverage is widened by `gap_bars` bars on each side, and within `gap_bars` bars of either end
of the piece a bar counts as covered when any of the three tracks covers it. Segments are the
runs of bars covered by all three.

Counter keys written here: melody:notes_out_of_range [note], melody:track_program_excluded
[track], melody:none [piece with no melody track], melody:extracted, melody:truncated
[melody]; drums:none [piece], drums:unmapped_pitch [note], drums:extracted, drums:truncated
[track]; trio:missing_melody, trio:missing_bass, trio:missing_drums [piece],
trio:notes_out_of_range, trio:notes_other_programs [note], trio:combinations [combination].
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from pipelines.representation import (
    BASS_PROGRAMS,
    DRUM_PITCH_TO_CLASS,
    MELODY_PROGRAMS,
    STEPS_PER_BAR,
    NoteArrays,
    drum_tokens_from_hits,
    melody_tokens_from_notes,
    monophonic_notes,
)


@dataclass
class Segment:
    """Whole bars of one or more aligned token streams, starting on a bar line of the piece."""

    start_step: int
    program: int  # program of the melody stream; -1 for drums
    tokens: dict[str, np.ndarray]  # column -> int16 [num_bars * 16]

    @property
    def num_bars(self) -> int:
        return len(next(iter(self.tokens.values()))) // STEPS_PER_BAR


def _bar_floor(steps: np.ndarray | int) -> np.ndarray | int:
    return steps // STEPS_PER_BAR * STEPS_PER_BAR


def _bar_ceil(steps: np.ndarray | int) -> np.ndarray | int:
    return -(-steps // STEPS_PER_BAR) * STEPS_PER_BAR


def _runs_between_gaps(onsets: np.ndarray, ends: np.ndarray, gap_steps: int) -> np.ndarray:
    """Index bounds [first, last + 1) of the runs of events that no gap of `gap_steps` or more
    separates; `onsets` sorted, `ends[i]` the step event i stops counting as sound."""
    breaks = np.flatnonzero(onsets[1:] - ends[:-1] >= gap_steps) + 1
    return np.r_[0, breaks, len(onsets)]


def _segments_from_runs(
    tokens: np.ndarray,
    onsets: np.ndarray,
    ends: np.ndarray,
    gap_bars: int,
    max_bars: int | None,
    program: int,
    kind: str,
    counts: collections.Counter,
) -> list[Segment]:
    """Cut a track's tokens into bar-aligned segments at gaps of silence."""
    bounds = _runs_between_gaps(onsets, ends, gap_bars * STEPS_PER_BAR)
    segments = []
    for first, stop in zip(bounds[:-1], bounds[1:], strict=True):
        start_step = int(_bar_floor(onsets[first]))
        end_step = int(_bar_ceil(ends[stop - 1]))
        counts[f"{kind}:extracted"] += 1
        if max_bars is not None and end_step - start_step > max_bars * STEPS_PER_BAR:
            end_step = start_step + max_bars * STEPS_PER_BAR
            counts[f"{kind}:truncated"] += 1
        segments.append(Segment(start_step, program, {"tokens": tokens[start_step:end_step]}))
    return segments


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Indices of the rows of `keys` [N, k] grouped by equal rows, groups in key order."""
    if not len(keys):
        return []
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    splits = np.flatnonzero(np.diff(inverse.ravel()[order])) + 1
    return np.split(order, splits)


def melody_segments(
    notes: NoteArrays,
    *,
    valid_programs: Collection[int] | None,
    min_pitch: int,
    max_pitch: int,
    gap_bars: int,
    max_bars: int | None,
    counts: collections.Counter,
) -> list[Segment]:
    """Monophonic melodies of every (instrument, program) non-drum track of a piece."""
    pitched = notes.select(notes.is_drum == 0)
    in_range = (pitched.pitch >= min_pitch) & (pitched.pitch <= max_pitch)
    counts["melody:notes_out_of_range"] += int((~in_range).sum())
    pitched = pitched.select(in_range)

    segments = []
    for group in _groups(np.stack([pitched.instrument, pitched.program], axis=1)):
        track = pitched.select(group)
        program = int(track.program[0])
        if valid_programs is not None and program not in valid_programs:
            counts["melody:track_program_excluded"] += 1
            continue
        onsets, ends, pitches = monophonic_notes(track.start, track.end, track.pitch)
        tokens = melody_tokens_from_notes(onsets, ends, pitches, int(_bar_ceil(ends.max())))
        segments += _segments_from_runs(
            tokens, onsets, ends, gap_bars, max_bars, program, "melody", counts
        )
    if not segments:
        counts["melody:none"] += 1
    return segments


def drum_segments(
    notes: NoteArrays, *, gap_bars: int, max_bars: int | None, counts: collections.Counter
) -> list[Segment]:
    """Drum tracks of a piece: all its drum hits, cut at gaps of `gap_bars` bars."""
    drums = notes.select(notes.is_drum == 1)
    classes = DRUM_PITCH_TO_CLASS[np.clip(drums.pitch, 0, 127)]
    mapped = classes >= 0
    counts["drums:unmapped_pitch"] += int((~mapped).sum())
    starts, classes = drums.start[mapped], classes[mapped]
    if not len(starts):
        counts["drums:none"] += 1
        return []
    onsets = np.unique(starts)
    ends = onsets + 1  # silence is measured from the step after a hit
    tokens = drum_tokens_from_hits(starts, classes, int(_bar_ceil(ends.max())))
    return _segments_from_runs(tokens, onsets, ends, gap_bars, max_bars, -1, "drums", counts)


def _bar_coverage(notes: NoteArrays, num_bars: int) -> np.ndarray:
    """bool [num_bars]: bars in which at least one of the notes sounds."""
    first_bar = notes.start // STEPS_PER_BAR
    stop_bar = np.minimum(-(-notes.end // STEPS_PER_BAR), num_bars)
    inside = first_bar < num_bars
    changes = np.zeros(num_bars + 1, dtype=np.int64)
    np.add.at(changes, first_bar[inside], 1)
    np.add.at(changes, stop_bar[inside], -1)
    return np.cumsum(changes[:-1]) > 0


def _widen(covered: np.ndarray, bars: int) -> np.ndarray:
    """Bars within `bars` bars of a covered bar."""
    sums = np.r_[0, np.cumsum(covered)]
    index = np.arange(len(covered))
    return sums[np.minimum(index + bars + 1, len(covered))] - sums[np.maximum(index - bars, 0)] > 0


def trio_segments(
    notes: NoteArrays,
    num_steps: int,
    *,
    min_pitch: int,
    max_pitch: int,
    gap_bars: int,
    max_bars: int | None,
    counts: collections.Counter,
) -> list[Segment]:
    """Aligned melody + bass + drums segments of a piece, one set per track combination."""
    num_bars = -(-num_steps // STEPS_PER_BAR)
    if max_bars is not None:
        num_bars = min(num_bars, max_bars)
    total_steps = num_bars * STEPS_PER_BAR

    pitched = notes.is_drum == 0
    is_melody = pitched & np.isin(notes.program, MELODY_PROGRAMS)
    is_bass = pitched & np.isin(notes.program, BASS_PROGRAMS)
    counts["trio:notes_other_programs"] += int((pitched & ~is_melody & ~is_bass).sum())
    in_range = (notes.pitch >= min_pitch) & (notes.pitch <= max_pitch)
    counts["trio:notes_out_of_range"] += int(((is_melody | is_bass) & ~in_range).sum())

    def pitched_tracks(mask: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        chosen = notes.select(mask & in_range)
        tracks = []
        for group in _groups(np.stack([chosen.instrument, chosen.program], axis=1)):
            track = chosen.select(group)
            tokens = melody_tokens_from_notes(track.start, track.end, track.pitch, total_steps)
            tracks.append((int(track.program[0]), tokens, _bar_coverage(track, num_bars)))
        return tracks

    def drum_tracks() -> list[tuple[int, np.ndarray, np.ndarray]]:
        classes = DRUM_PITCH_TO_CLASS[np.clip(notes.pitch, 0, 127)]
        chosen = notes.select((notes.is_drum == 1) & (classes >= 0))
        chosen_classes = classes[(notes.is_drum == 1) & (classes >= 0)]
        tracks = []
        for group in _groups(chosen.instrument[:, None]):
            track = chosen.select(group)
            tokens = drum_tokens_from_hits(track.start, chosen_classes[group], total_steps)
            tracks.append((-1, tokens, _bar_coverage(track, num_bars)))
        return tracks

    parts = {"melody": pitched_tracks(is_melody), "bass": pitched_tracks(is_bass)}
    parts["drums"] = drum_tracks()
    missing = [name for name, tracks in parts.items() if not tracks]
    for name in missing:
        counts[f"trio:missing_{name}"] += 1
    if missing or num_bars == 0:
        return []

    segments = []
    for combination in itertools.product(parts["melody"], parts["bass"], parts["drums"]):
        counts["trio:combinations"] += 1
        covered = [_widen(coverage, gap_bars) for _, _, coverage in combination]
        all_covered = covered[0] & covered[1] & covered[2]
        if gap_bars:  # near either end, one track suffices (magenta's leniency)
            any_covered = covered[0] | covered[1] | covered[2]
            all_covered[:gap_bars] = any_covered[:gap_bars].any()
            all_covered[-gap_bars:] = any_covered[-gap_bars:].any()
        edges = np.diff(np.r_[0, all_covered.astype(np.int8), 0])
        for first, stop in zip(
            np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True
        ):
            steps = slice(first * STEPS_PER_BAR, stop * STEPS_PER_BAR)
            columns = {
                name: tokens[steps] for name, (_, tokens, _) in zip(parts, combination, strict=True)
            }
            segments.append(Segment(int(first) * STEPS_PER_BAR, combination[0][0], columns))
    return segments
