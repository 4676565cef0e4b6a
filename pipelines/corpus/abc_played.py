"""A tune as a player plays it: the notes in time order, its meter and tempo.

Both ABC routes (music21's tokens read by us, and music21's full stream route used as a fallback
and as the reference in tests) produce a `PlayedTune`; the MIDI writer only reads this.
The routes keep times as exact fractions of a quarter note; `played_notes` rounds them to ticks
once, with integer arithmetic, so the result is the same on every machine.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import NamedTuple

TICKS_PER_QUARTER = 960  # divisible by 2, 3, 4, 5, 6, 8, 10, 12, 15, 16 ... 64
DEFAULT_QPM = 120.0
_MIDI_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)

# (onset, duration, MIDI pitch, tied into the next note), times in quarter notes
Event = tuple[Fraction, Fraction, int, bool]


class PlayedNote(NamedTuple):
    start: int  # ticks from the start of the tune, after the pickup shift
    end: int
    pitch: int  # MIDI pitch
    voice: int  # 0-based ABC voice (V:), one MIDI track each


@dataclasses.dataclass(frozen=True)
class PlayedTune:
    notes: tuple[PlayedNote, ...]  # sorted
    meter: tuple[int, int] | None  # meter of the first bar; None when the tune has none
    qpm: float  # quarter notes per minute
    pickup_shift: Fraction  # quarter notes the tune was moved so its first full bar starts a bar
    voices: int
    bars_written: int  # in the first voice
    bars_played: int  # the same, repeats expanded


def midi_meter(numerator: int, denominator: int) -> tuple[int, int] | None:
    """A meter MIDI can store (power-of-two denominator), or None."""
    if 0 < numerator < 256 and denominator in _MIDI_DENOMINATORS:
        return numerator, denominator
    return None


def bar_length(meter: tuple[int, int]) -> Fraction:
    """Length of one bar in quarter notes."""
    numerator, denominator = meter
    return Fraction(4 * numerator, denominator)


def pickup_shift(first_bar: Fraction | None, meter: tuple[int, int] | None) -> Fraction:
    """How far to move a tune that opens with a pickup so its first full bar starts on a bar line.

    A pickup (anacrusis) is a first written bar shorter than the meter's bar; one of length p gets
    bar - p of silence before it, so the following bar lines fall on multiples of the bar length.
    No meter, or no bar line inside the tune (`first_bar` None), means nothing to align.
    """
    if meter is None or first_bar is None or first_bar <= 0:
        return Fraction(0)
    bar = bar_length(meter)
    return bar - first_bar if first_bar < bar else Fraction(0)


def merge_ties(events: list[Event]) -> list[tuple[Fraction, Fraction, int]]:
    """Join tied notes of one voice (events in time order) into sounding notes."""
    merged: list[list] = []
    open_ties: dict[int, int] = {}  # pitch -> index in `merged` of a note tied into the next
    for onset, duration, pitch, tied in events:
        k = open_ties.pop(pitch, None)
        if k is not None and merged[k][0] + merged[k][1] == onset:
            merged[k][1] += duration
        else:
            k = len(merged)
            merged.append([onset, duration, pitch])
        if tied:
            open_ties[pitch] = k
    return [(onset, duration, pitch) for onset, duration, pitch in merged]


def to_ticks(quarters: Fraction) -> int:
    """Nearest tick (halves round up), in integer arithmetic."""
    numerator = quarters.numerator * TICKS_PER_QUARTER
    return (2 * numerator + quarters.denominator) // (2 * quarters.denominator)


def played_notes(voices: list[list[Event]], shift: Fraction) -> tuple[PlayedNote, ...]:
    """Join ties per voice, shift, round to ticks, drop silent notes and unisons, sort."""
    notes: dict[tuple[int, int, int], PlayedNote] = {}
    for voice, events in enumerate(voices):
        for onset, duration, pitch in merge_ties(events):
            if duration <= 0 or not 0 <= pitch <= 127:
                continue  # nothing to hear, or outside MIDI's range
            start = to_ticks(onset + shift)
            end = max(to_ticks(onset + shift + duration), start + 1)
            key = (voice, start, pitch)
            if key not in notes or notes[key].end < end:
                notes[key] = PlayedNote(start, end, pitch, voice)  # a unison sounds once
    return tuple(sorted(notes.values()))
