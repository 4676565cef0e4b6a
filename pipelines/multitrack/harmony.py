"""A plain harmonisation of a melody, one chord per bar, as a folk accompanist might play it.

The key comes from the Krumhansl-Kessler profiles (correlation with the tune's duration-weighted
pitch classes, 24 keys). Each bar then takes the diatonic triad of that key that covers most of
the bar's sounding time, with a small preference for the primary chords (I, IV, V) and for
keeping the previous chord; a bar without notes keeps the previous chord.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
# (semitones above the tonic, minor triad?, prior bonus as a share of the bar)
_MAJOR_CHORDS = ((0, False, 0.10), (5, False, 0.05), (7, False, 0.05), (2, True, 0.0),
                 (9, True, 0.0), (4, True, 0.0))  # fmt: skip
_MINOR_CHORDS = ((0, True, 0.10), (5, True, 0.05), (7, False, 0.05), (3, False, 0.0),
                 (8, False, 0.0), (10, False, 0.0))  # fmt: skip
_KEEP_BONUS = 0.05


@dataclass(frozen=True)
class Note:
    start: float  # in bars
    end: float
    pitch: int


@dataclass(frozen=True)
class Chord:
    root: int  # pitch class
    minor: bool

    @property
    def name(self) -> str:
        """The chord as MMA (and a lead sheet) writes it: C, F#m, Bb."""
        return NAMES[self.root] + ("m" if self.minor else "")

    def pitch_classes(self) -> tuple[int, int, int]:
        return self.root, (self.root + (3 if self.minor else 4)) % 12, (self.root + 7) % 12


def pitch_class_durations(notes: Sequence[Note]) -> np.ndarray:
    weights = np.zeros(12)
    for note in notes:
        weights[note.pitch % 12] += note.end - note.start
    return weights


def estimate_key(notes: Sequence[Note]) -> tuple[int, bool]:
    """(tonic pitch class, minor?) of the best-correlated Krumhansl-Kessler profile."""
    weights = pitch_class_durations(notes)
    if not weights.any():
        return 0, False
    best, best_score = (0, False), -np.inf
    for minor, profile in ((False, _MAJOR_PROFILE), (True, _MINOR_PROFILE)):
        for tonic in range(12):
            score = np.corrcoef(weights, np.roll(profile, tonic))[0, 1]
            if score > best_score + 1e-12:
                best, best_score = (tonic, minor), score
    return best


def bar_durations(notes: Sequence[Note], num_bars: int) -> np.ndarray:
    """[num_bars, 12]: how long each pitch class sounds in each bar (in bars)."""
    table = np.zeros((num_bars, 12))
    for note in notes:
        first, last = int(note.start), min(int(np.ceil(note.end)) - 1, num_bars - 1)
        for bar in range(first, last + 1):
            overlap = min(note.end, bar + 1) - max(note.start, bar)
            if overlap > 0:
                table[bar, note.pitch % 12] += overlap
    return table


def harmonise(notes: Sequence[Note], num_bars: int) -> list[Chord]:
    """One diatonic triad per bar of the melody's estimated key."""
    tonic, minor = estimate_key(notes)
    options = [
        (Chord((tonic + offset) % 12, is_minor), bonus)
        for offset, is_minor, bonus in (_MINOR_CHORDS if minor else _MAJOR_CHORDS)
    ]
    chords: list[Chord] = []
    previous = options[0][0]
    for durations in bar_durations(notes, num_bars):
        if durations.sum() > 0:
            share = durations / durations.sum()
            scores = [
                share[list(chord.pitch_classes())].sum()
                + bonus
                + (_KEEP_BONUS if chord == previous else 0.0)
                for chord, bonus in options
            ]
            previous = options[int(np.argmax(scores))][0]  # first of equals: primary chords
        chords.append(previous)
    return chords
