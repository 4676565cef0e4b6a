"""Time example extraction per NoteSequence: folk tunes from the music21 corpus, and a generated
multi-track song the size of a typical Lakh MIDI file.

    python -m bench.extract_speed [--tunes 40]

Prints milliseconds per NoteSequence for each dataset spec, and for splitting/quantizing alone.
"""

from __future__ import annotations

import argparse
import collections
import io
import time
import warnings

import numpy as np
import pretty_midi

from pipelines.extract.pieces import split_into_pieces
from pipelines.extract.windows import (
    DATASET_SPECS,
    examples_from_notesequence,
    examples_from_pieces,
)
from pipelines.representation import midi_bytes_to_notesequence

FOLK_SOURCES = ("essenFolksong/altdeu10", "essenFolksong/han1", "oneills1850", "ryansMammoth")


def folk_tunes(count: int) -> list:
    """NoteSequences of `count` corpus tunes, via music21's MIDI writer and note_seq's parser."""
    import music21  # slow to import; only the benchmark needs it here

    sequences = []
    per_source = -(-count // len(FOLK_SOURCES))
    for source in FOLK_SOURCES:
        opus = music21.corpus.parse(source)
        scores = list(opus.scores) if hasattr(opus, "scores") else [opus]
        for score in scores[:per_source]:
            try:
                data = music21.midi.translate.music21ObjectToMidiFile(score.expandRepeats())
            except Exception:  # noqa: BLE001 - some tunes fail in music21; skip them here
                continue
            sequences.append(midi_bytes_to_notesequence(data.writestr()))
    return sequences[:count]


def lakh_like_song(bars: int = 120, seed: int = 0):
    """A 4/4 song: 6 pitched tracks (two melodies, piano chords, two basses, strings) + drums."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=112.0)
    step = 60.0 / 112.0 / 4
    for program, low, notes_per_bar, chord in [
        (0, 60, 8, 1),
        (25, 55, 4, 1),
        (1, 48, 4, 3),
        (33, 28, 4, 1),
        (34, 28, 2, 1),
        (48, 50, 1, 4),
    ]:
        instrument = pretty_midi.Instrument(program=program)
        for bar in range(bars):
            starts = np.sort(rng.choice(16, size=notes_per_bar, replace=False))
            for start in starts:
                for voice in range(chord):
                    pitch = int(low + rng.integers(0, 24) + 4 * voice)
                    t = (bar * 16 + start) * step
                    instrument.notes.append(pretty_midi.Note(80, pitch, t, t + 2 * step))
        midi.instruments.append(instrument)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for bar in range(bars):
        for s in range(16):
            for pitch, every in ((36, 8), (38, 8), (42, 2)):
                if (s + (4 if pitch == 38 else 0)) % every == 0:
                    t = (bar * 16 + s) * step
                    drums.notes.append(pretty_midi.Note(100, pitch, t, t + step))
    midi.instruments.append(drums)
    buffer = io.BytesIO()
    midi.write(buffer)
    return midi_bytes_to_notesequence(buffer.getvalue())


def time_per_sequence(sequences, run, repeats: int = 3) -> float:
    """Best-of-`repeats` mean milliseconds of `run(ns)` over `sequences`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for ns in sequences:
            run(ns)
        best = min(best, (time.perf_counter() - start) / len(sequences))
    return best * 1000


def report(title: str, sequences) -> None:
    notes = np.mean([len(ns.notes) for ns in sequences])
    print(f"{title}: {len(sequences)} sequences, {notes:.0f} notes on average")
    split_ms = time_per_sequence(
        sequences, lambda ns: split_into_pieces(ns, 10**6, collections.Counter())
    )
    print(f"  split + quantize alone: {split_ms:.2f} ms/sequence")
    for name, spec in DATASET_SPECS.items():
        ms = time_per_sequence(
            sequences, lambda ns, spec=spec: examples_from_notesequence(ns, spec)
        )
        windows = sum(len(examples_from_notesequence(ns, spec)[0]) for ns in sequences)
        print(f"  {name:<11} {ms:7.2f} ms/sequence  {windows} windows")

    def all_specs(ns):
        pieces = split_into_pieces(ns, 10**6, collections.Counter())
        for spec in DATASET_SPECS.values():
            examples_from_pieces(pieces, spec)

    print(f"  all four, split once: {time_per_sequence(sequences, all_specs):.2f} ms/sequence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tunes", type=int, default=40)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    report("folk tunes (music21 corpus)", folk_tunes(args.tunes))
    report("generated Lakh-size song (7 tracks, 120 bars)", [lakh_like_song()])


if __name__ == "__main__":
    main()
