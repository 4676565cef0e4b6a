"""The fast ABC route: music21's ABC tokenizer, then our own walk over its tokens.

music21 turns ABC text into tokens in a few milliseconds per tune; the tokens already carry the
resolved pitch (key signature, accidentals, octave) and length (default length, broken rhythm)
of every note. Building music21 streams from them (beaming, clefs, re-barring, deep copies when
expanding repeats) costs 100x more, so we read bars, repeats and notes straight off the tokens.
`abc_streams` is the slow route through music21's streams, kept as the fallback and reference.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from fractions import Fraction

from music21 import abcFormat, common, defaults, pitch

from pipelines.corpus.abc_played import (
    DEFAULT_QPM,
    Event,
    PlayedTune,
    bar_length,
    midi_meter,
    pickup_shift,
    played_notes,
)
from pipelines.corpus.abc_repeats import BarMarks, play_order

_DOUBLE_BAR_STYLES = ("light-light", "light-heavy", "heavy-light")
_INLINE_VOICE = re.compile(r"\s*\[V:\s*([^\s\]]+)")


@dataclasses.dataclass
class _Bar:
    marks: BarMarks
    notes: list[Event]  # onsets are offsets within the bar
    length: Fraction


@functools.lru_cache(maxsize=1024)
def _midi_pitch(name: str) -> int:
    return pitch.Pitch(name).midi


@functools.lru_cache(maxsize=1024)
def _fraction(quarter_length: float | Fraction) -> Fraction:
    return Fraction(common.opFrac(quarter_length))


def _note_length(token: abcFormat.ABCNote) -> Fraction:
    """Sounding length in quarter notes: the written length scaled by an active tuplet."""
    length = _fraction(token.quarterLength)
    tuplet = token.activeTuplet
    if tuplet is not None:
        if tuplet.durationActual is None and tuplet.durationNormal is None:
            length *= Fraction(tuplet.numberNotesNormal, tuplet.numberNotesActual)
        else:
            length *= _fraction(tuplet.tupletMultiplier())
    return length


def _read_bars(tokens: list[abcFormat.ABCToken]) -> tuple[list[_Bar], int]:
    """Split one voice's tokens into bars; also return music21's clef transposition."""
    bars: list[_Bar] = []
    marks = BarMarks()
    notes: list[Event] = []
    position = Fraction(0)
    transposition = 0

    def close_bar() -> None:
        nonlocal marks, notes, position
        if notes or position > 0:
            bars.append(_Bar(marks, notes, position))
            marks, notes, position = BarMarks(), [], Fraction(0)

    for token in tokens:
        if isinstance(token, abcFormat.ABCBar):
            close_bar()
            if token.isRepeat() and token.repeatForm == "end":
                if bars:
                    bars[-1].marks.end_repeat = True
            elif token.isRepeat() and token.repeatForm == "start":
                marks.start_repeat = True
            elif token.isRepeatBracket():
                marks.ending = token.isRepeatBracket()
            elif token.barStyle in _DOUBLE_BAR_STYLES and bars:
                bars[-1].marks.double_bar = True
        elif isinstance(token, abcFormat.ABCChord):
            pitches = [
                sub.pitchName for sub in token.subTokens if isinstance(sub, abcFormat.ABCNote)
            ]
            if token.inGrace or not pitches:
                continue  # grace notes steal no time; music21 drops empty chords
            length = _note_length(token)
            tied = token.tie in ("start", "continue")
            notes.extend((position, length, _midi_pitch(name), tied) for name in pitches)
            position += length
        elif isinstance(token, abcFormat.ABCNote):
            if token.inGrace:
                continue
            length = _note_length(token)
            if not token.isRest:
                tied = token.tie in ("start", "continue")
                notes.append((position, length, _midi_pitch(token.pitchName), tied))
            position += length
        elif isinstance(token, abcFormat.ABCMetadata) and token.isKey():
            clef, shift = token.getClefObject()
            if clef is not None and shift is not None:
                transposition = shift  # music21 transposes the whole part by the last one
    close_bar()
    return bars, transposition


def _meter_and_tempo(tokens: list[abcFormat.ABCToken]) -> tuple[tuple[int, int] | None, float]:
    """Meter and tempo in force at the first note (written before it, usually in the header)."""
    meter: tuple[int, int] | None = None
    qpm: float | None = None
    for token in tokens:
        if isinstance(token, abcFormat.ABCNote):
            break
        if not isinstance(token, abcFormat.ABCMetadata):
            continue
        if token.isMeter():
            signature = token.getTimeSignatureObject()  # None for "M: none"
            meter = (
                None
                if signature is None
                else midi_meter(signature.numerator, signature.denominator)
            )
        elif token.isTempo() and qpm is None:
            mark = token.getMetronomeMarkObject()
            bpm = None if mark is None else mark.getQuarterBPM()
            qpm = float(bpm) if bpm else None
    return meter, qpm or DEFAULT_QPM


def _voices(handler: abcFormat.ABCHandler) -> list[list[abcFormat.ABCToken]]:
    """Token lists per voice (V:), each with the tune header first.

    Unlike music21's splitByVoice, which makes a part of every `V:` section, the sections of one
    voice are joined in order: multi-voice ABC often alternates `V:1` and `V:2` every few bars.
    """
    header: list[abcFormat.ABCToken] = []  # fields before the music: shared by all voices
    sections: dict[str, list[abcFormat.ABCToken]] = {}
    current = ""  # music before any V: belongs to a voice of its own
    for token in handler.tokens:
        if isinstance(token, abcFormat.ABCMetadata) and token.isVoice():
            current = token.data.split()[0] if token.data.strip() else ""
        elif isinstance(token, abcFormat.ABCChord) and (inline := _INLINE_VOICE.match(token.src)):
            current = inline.group(1)  # music21 reads an inline [V:2] as an empty chord
        elif not sections and not isinstance(token, (abcFormat.ABCNote, abcFormat.ABCBar)):
            header.append(token)
        else:
            sections.setdefault(current, []).append(token)
    voices = [header + tokens for tokens in sections.values()]
    return voices if len(voices) > 1 else [handler.tokens]


def tokenize(text: str, abc_version: tuple[int, int, int] | None = None) -> abcFormat.ABCHandler:
    handler = abcFormat.ABCHandler(abcVersion=abc_version or defaults.abcVersionDefault)
    handler.process(text)
    return handler


def play_with_tokens(
    text: str, abc_version: tuple[int, int, int] | None = None, *, expand_repeats: bool = True
) -> PlayedTune:
    """What a player plays from one tune's ABC text: repeats expanded (unless told not to),
    ties joined, grace notes and chord symbols left out, shifted for a pickup."""
    voices = _voices(tokenize(text, abc_version))
    meter, qpm = _meter_and_tempo(voices[0])
    played: list[list[Event]] = []
    for voice, tokens in enumerate(voices):
        bars, transposition = _read_bars(tokens)
        order = play_order([bar.marks for bar in bars]) if expand_repeats else range(len(bars))
        events = []
        start = Fraction(0)
        for index in order:
            bar = bars[index]
            events.extend(
                (start + offset, length, pitch_ + transposition, tied)
                for offset, length, pitch_, tied in bar.notes
            )
            start += bar.length
        if voice == 0:  # the first voice's bars set the downbeats and the length for all
            first_bar = bars[0].length if len(bars) > 1 else None
            bars_written, bars_played = len(bars), len(order)
            tune_length = start
        elif abs(start - tune_length) >= (bar_length(meter) if meter else 1):
            # A voice a bar longer or shorter than the first cannot be placed in time (music21
            # drops the invisible rests `x` that pad accompaniment voices): leave it out.
            continue
        played.append(events)
    shift = pickup_shift(first_bar, meter)
    notes = played_notes(played, shift)
    if not notes:
        raise ValueError("the tune has no notes")
    return PlayedTune(notes, meter, qpm, shift, len(played), bars_written, bars_played)
