"""NoteSequence -> pieces on the 16-steps-per-bar grid: the first step of example extraction.

A piece is a stretch of a NoteSequence with one tempo and one time signature, quantized at
4 steps per quarter, whose notes are held as numpy arrays. As magenta's converters do, the
sequence is split on tempo and time-signature changes (`split_note_sequence_on_time_changes`,
every piece then starts at time 0) and each piece is quantized on its own. Bars are counted from
the start of the piece, so a piece keeps the bar grid of the source only when it starts on a bar
line (tunes in the default corpus are shifted so that their first full bar does).

Meters: a piece is kept when its bar is 16 steps (4/4, 2/2, 8/8). Meters whose bar is 8 steps
(2/4, 4/8) are kept too and read as pairs of bars, so one 16-step bar of the representation is
two bars of the score (counted as (METER_AS_PAIRS, "2/4")); every other meter is dropped and
counted ((METER_DROPPED, "3/4")). A piece without a time signature is 4/4, as note_seq reads it.

Counter keys written here (units in brackets):
  sequence:no_notes [sequence]   split:failed:<Error> [sequence]
  split:tempo_change, split:time_signature_change [boundary between two pieces]
  piece:empty, piece:too_long [piece]   quantize:failed:<Error> [piece]
  (METER_KEPT | METER_AS_PAIRS | METER_DROPPED, <m>) [piece], reported by `meter_count_name` as
  meter:<m>, meter:<m>_as_pairs and meter:not_16_steps:<m>
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from note_seq import sequences_lib
from note_seq.protobuf import music_pb2

from pipelines.representation import (
    DEFAULT_QPM,
    QUARTERS_PER_BAR,
    STEPS_PER_BAR,
    NoteArrays,
    quantize,
)

# Counter keys of a piece's meter, (group, meter): readers get the meter without parsing a string.
METER_KEPT, METER_AS_PAIRS, METER_DROPPED = "meter", "meter_as_pairs", "meter_not_16_steps"
_METER_COUNT_NAMES = {
    METER_KEPT: "meter:{}",
    METER_AS_PAIRS: "meter:{}_as_pairs",
    METER_DROPPED: "meter:not_16_steps:{}",
}

# Quarter notes per bar of the meters kept, and of those read as pairs of bars.
_FULL_BAR_QUARTERS = QUARTERS_PER_BAR
_HALF_BAR_QUARTERS = QUARTERS_PER_BAR / 2


@dataclass
class Piece:
    """One quantized stretch of a NoteSequence with a single tempo and meter."""

    index: int  # position among the pieces of its sequence
    meter: str  # time signature as "n/d"
    qpm: float
    num_steps: int  # quantized length: the end of the last note or of the sequence
    notes: NoteArrays  # notes with velocity > 0

    @property
    def num_bars(self) -> int:
        """Whole 16-step bars that hold every step of the piece (the last may be partial)."""
        return -(-self.num_steps // STEPS_PER_BAR)


def _meter_and_tempo(ns: music_pb2.NoteSequence) -> tuple[tuple[int, int], float]:
    """The time signature and tempo at time 0 (note_seq's defaults 4/4 and 120 when absent)."""
    signatures = sorted(ns.time_signatures, key=lambda t: t.time)
    tempos = sorted(ns.tempos, key=lambda t: t.time)
    meter = (signatures[0].numerator, signatures[0].denominator) if signatures else (4, 4)
    qpm = tempos[0].qpm if tempos else DEFAULT_QPM
    return meter, qpm


def _quarters_per_bar(numerator: int, denominator: int) -> float:
    return 4.0 * numerator / denominator if denominator > 0 else float("nan")


def _has_one_tempo_and_meter(ns: music_pb2.NoteSequence) -> bool:
    """True when `ns` holds a single tempo and a single time signature, each from time 0 (or
    none): then splitting would return the sequence unchanged. Splitting copies every note one
    by one, the slowest step on large files, so such sequences skip it."""
    for events, value in (
        (ns.time_signatures, lambda t: (t.numerator, t.denominator)),
        (ns.tempos, lambda t: t.qpm),
    ):
        if events and (min(e.time for e in events) > 0 or len({value(e) for e in events}) > 1):
            return False
    return True


def meter_count_name(key: tuple[str, str]) -> str:
    """The reason a meter count is reported as, e.g. "meter:4/4" or "meter:not_16_steps:3/4"."""
    group, meter = key
    return _METER_COUNT_NAMES[group].format(meter)


def split_into_pieces(
    ns: music_pb2.NoteSequence, max_steps: int, counts: collections.Counter
) -> list[Piece]:
    """Split `ns` on tempo and time-signature changes and quantize every piece it can use.

    Pieces that cannot be used are counted in `counts` (see the module docstring), never raised:
    this runs over whole corpora, where any file can be odd. `max_steps` caps the quantized
    length of a piece (longer ones are counted as piece:too_long), which bounds memory on broken
    files whose notes end hours late.
    """
    if not ns.notes:
        counts["sequence:no_notes"] += 1
        return []
    if ns.total_time <= 0:  # notes, but no positive duration
        counts["sequence:no_notes"] += 1
        return []
    if _has_one_tempo_and_meter(ns):
        raw_pieces = [ns]
    else:
        try:
            raw_pieces = sequences_lib.split_note_sequence_on_time_changes(ns)
        except (ValueError, sequences_lib.QuantizationStatusError) as error:
            counts[f"split:failed:{type(error).__name__}"] += 1
            return []

    previous = None
    pieces = []
    for index, raw in enumerate(raw_pieces):
        (numerator, denominator), qpm = _meter_and_tempo(raw)
        if previous is not None:
            if previous[0] != (numerator, denominator):
                counts["split:time_signature_change"] += 1
            if previous[1] != qpm:
                counts["split:tempo_change"] += 1
        previous = ((numerator, denominator), qpm)
        if not raw.notes:
            counts["piece:empty"] += 1
            continue

        meter = f"{numerator}/{denominator}"
        quarters = _quarters_per_bar(numerator, denominator)
        if quarters == _FULL_BAR_QUARTERS:
            counts[METER_KEPT, meter] += 1
        elif quarters == _HALF_BAR_QUARTERS:
            counts[METER_AS_PAIRS, meter] += 1
        else:
            counts[METER_DROPPED, meter] += 1
            continue

        try:
            quantized = quantize(raw)
        except ValueError as error:
            cause = type(error.__cause__ or error).__name__
            counts[f"quantize:failed:{cause}"] += 1
            continue
        if quantized.total_quantized_steps > max_steps:
            counts["piece:too_long"] += 1
            continue
        notes = NoteArrays.from_quantized(quantized)
        notes = notes.select(notes.velocity > 0)
        if not len(notes):
            counts["piece:empty"] += 1
            continue
        num_steps = max(int(quantized.total_quantized_steps), int(notes.end.max()))
        pieces.append(Piece(index, meter, float(qpm), num_steps, notes))
    return pieces
