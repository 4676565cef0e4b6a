"""The slow ABC route, through music21's streams: parse -> expandRepeats -> flatten.

This is how music21 itself plays a tune (about 0.1-1 CPU-s per tune). The corpus builder only
falls back to it when the token route fails, and tests compare the two. It never uses music21's
MIDI writer: that one fails on ~8 % of ABC tunes, whose re-barred measures share one
TimeSignature object; we read the meter of the first measure and write MIDI ourselves.
"""

from __future__ import annotations

from fractions import Fraction

from music21 import common, exceptions21, harmony, meter, repeat, stream, tempo
from music21.abcFormat import translate

from pipelines.corpus.abc_played import (
    DEFAULT_QPM,
    Event,
    PlayedTune,
    midi_meter,
    pickup_shift,
    played_notes,
)
from pipelines.corpus.abc_tokens import tokenize


def _first_meter(part: stream.Part) -> tuple[int, int] | None:
    measures = part.getElementsByClass(stream.Measure)
    signature = measures[0].timeSignature if measures else None
    if signature is None and not measures:
        signature = part.recurse().getElementsByClass(meter.TimeSignature).first()
    if signature is None:
        return None
    return midi_meter(signature.numerator, signature.denominator)


def _expanded(part: stream.Part) -> stream.Part:
    if not part.getElementsByClass(stream.Measure):
        return part
    try:
        return part.expandRepeats()
    except (repeat.ExpanderException, exceptions21.StreamException):
        return part  # badly formed repeats: play the bars as written


def _events(played: stream.Part) -> list[Event]:
    events = []
    # Ties are joined by `merge_ties`, not music21's stripTies: ABC transcriptions often write a
    # slur as a tie between two different pitches, and stripTies then swallows the second note.
    for element in played.flatten().notes:
        if isinstance(element, harmony.Harmony) or element.duration.isGrace:
            continue  # chord symbols are not played; grace notes have no length
        onset = Fraction(common.opFrac(element.offset))
        length = Fraction(common.opFrac(element.quarterLength))
        tied = element.tie is not None and element.tie.type in ("start", "continue")
        events.extend((onset, length, p.midi, tied) for p in element.pitches)
    return events


def play_with_streams(
    text: str, abc_version: tuple[int, int, int] | None = None, *, expand_repeats: bool = True
) -> PlayedTune:
    """What music21 plays from one tune's ABC text, shifted so its first full bar is on a bar."""
    score = translate.abcToStreamScore(tokenize(text, abc_version))
    parts = list(score.parts)
    if not parts:
        raise ValueError("music21 found no part")
    first_meter = _first_meter(parts[0])
    measures = parts[0].getElementsByClass(stream.Measure)
    first_bar = Fraction(common.opFrac(measures[1].offset)) if len(measures) > 1 else None
    shift = pickup_shift(first_bar, first_meter)
    played = [_expanded(part) if expand_repeats else part for part in parts]
    notes = played_notes([_events(part) for part in played], shift)
    if not notes:
        raise ValueError("the tune has no notes")
    mark = score.recurse().getElementsByClass(tempo.MetronomeMark).first()
    bpm = None if mark is None else mark.getQuarterBPM()
    qpm = float(bpm) if bpm else DEFAULT_QPM
    bars_played = len(played[0].getElementsByClass(stream.Measure))
    return PlayedTune(notes, first_meter, qpm, shift, len(parts), len(measures), bars_played)
