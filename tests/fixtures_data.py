"""Data fixtures shared by the test suite: generated MIDI files and tiny real datasets.

`generated_corpus()` writes MIDI files that exercise the data pipeline (a melody, drums, a trio,
3/4, a tempo change, a duplicate, broken files), each with the outcome stage 1 must give it.
`tiny_datasets` runs both Beam stages over a few dozen real folk tunes and returns the datasets
root (`<root>/<dataset>/{train,eval,test}-*.parquet`), for training and evaluation tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pytest

QPM = 120.0
SECONDS_PER_BEAT = 60.0 / QPM


@dataclass
class GeneratedFile:
    """One file of the generated corpus and what stage 1 must make of it."""

    path: str  # relative to the corpus root
    data: bytes
    sequence: object | None = None  # the NoteSequence it was written from (None for junk)
    error: str | None = None  # the expected error reason, None when it converts
    programs: list[int] = field(default_factory=list)
    has_drums: bool = False
    tempos: list[float] = field(default_factory=list)
    time_signatures: list[str] = field(default_factory=list)


def make_sequence(
    tracks: list[tuple[int, bool, list[tuple[int, float, float]]]],
    *,
    tempos: list[tuple[float, float]] = ((0.0, QPM),),
    time_signatures: list[tuple[float, int, int]] = ((0.0, 4, 4),),
):
    """A NoteSequence from tracks of (program, is_drum, [(pitch, start_beat, beats)]).

    Beats are converted to seconds at the first tempo (tempo changes only move later events
    in the MIDI file's tick grid, which is what a tempo-change test needs).
    """
    from note_seq.protobuf import music_pb2

    sequence = music_pb2.NoteSequence(ticks_per_quarter=220)
    spb = 60.0 / tempos[0][1]
    for time, qpm in tempos:
        sequence.tempos.add(time=time, qpm=qpm)
    for time, numerator, denominator in time_signatures:
        sequence.time_signatures.add(time=time, numerator=numerator, denominator=denominator)
    for instrument, (program, is_drum, notes) in enumerate(tracks):
        for pitch, start, beats in notes:
            sequence.notes.add(
                pitch=pitch,
                velocity=90,
                start_time=start * spb,
                end_time=(start + beats) * spb,
                instrument=instrument,
                program=program,
                is_drum=is_drum,
            )
    sequence.total_time = max((n.end_time for n in sequence.notes), default=0.0)
    return sequence


def make_step_sequence(notes, qpm=120.0, meter=(4, 4), total_steps=None):
    """An unquantized NoteSequence from notes given on the step grid.

    `notes`: (pitch, start_step, end_step) or (pitch, start, end, program, instrument, is_drum).
    """
    from note_seq.protobuf import music_pb2

    from pipelines.representation import STEPS_PER_QUARTER

    ns = music_pb2.NoteSequence()
    ns.tempos.add(time=0.0, qpm=qpm)
    ns.time_signatures.add(time=0.0, numerator=meter[0], denominator=meter[1])
    seconds = 60.0 / qpm / STEPS_PER_QUARTER
    for note in notes:
        pitch, start, end, program, instrument, is_drum = (*note, 0, 0, False)[:6]
        ns.notes.add(
            pitch=pitch,
            velocity=90,
            start_time=start * seconds,
            end_time=end * seconds,
            program=program,
            instrument=instrument,
            is_drum=is_drum,
        )
    last = max((n.end_time for n in ns.notes), default=0.0)
    ns.total_time = total_steps * seconds if total_steps is not None else last
    return ns


def to_midi_bytes(sequence) -> bytes:
    import io

    from note_seq import midi_io

    buffer = io.BytesIO()
    midi_io.note_sequence_to_pretty_midi(sequence).write(buffer)
    return buffer.getvalue()


def melody_notes(
    bars: int, beats_per_bar: int, seed: int, low: int = 60
) -> list[tuple[int, float, float]]:
    """A stepwise tune in eighths and quarters, one pitch at a time, no gaps."""
    rng = np.random.default_rng(seed)
    notes, time, pitch = [], 0.0, low + 7
    while time < bars * beats_per_bar:
        beats = float(rng.choice([0.5, 1.0]))
        notes.append((int(pitch), time, beats))
        pitch = int(np.clip(pitch + rng.integers(-2, 3), low, low + 19))
        time += beats
    return notes


def bass_notes(bars: int, seed: int | None = None) -> list[tuple[int, float, float]]:
    """Halves on a four-bar root pattern; with a seed, a bass line of its own (random rhythm and
    roots), so that generated band files share no near-copy of a bass line."""
    if seed is None:
        return [
            (36 + (bar % 4) * 2, bar * 4.0 + half * 2, 2.0)
            for bar in range(bars)
            for half in range(2)
        ]
    rng = np.random.default_rng(seed)
    notes, time = [], 0.0
    while time < bars * 4:
        beats = float(rng.choice([0.5, 1.0, 1.5, 2.0]))
        notes.append((int(rng.integers(33, 52)), time, beats))
        time += beats
    return notes


def drum_notes(bars: int) -> list[tuple[int, float, float]]:
    notes = []
    for bar in range(bars):
        for eighth in range(8):
            t = bar * 4 + eighth / 2
            notes.append((42, t, 0.25))  # closed hat
            if eighth in (0, 4):
                notes.append((36, t, 0.25))  # kick
            if eighth in (2, 6):
                notes.append((38, t, 0.25))  # snare
    return notes


def random_drum_notes(bars: int, seed: int) -> list[tuple[int, float, float]]:
    """A drum groove that differs from seed to seed (kick, snare, hats, a tom fill, a crash)."""
    rng = np.random.default_rng(seed)
    pattern = {
        pitch: rng.random(16) < p for pitch, p in ((36, 0.3), (38, 0.25), (42, 0.6), (46, 0.1))
    }
    notes = []
    for bar in range(bars):
        for step in range(16):
            t = bar * 4 + step / 4
            notes += [(pitch, t, 0.25) for pitch, hits in pattern.items() if hits[step]]
            if bar % 4 == 3 and step >= 12:
                notes.append((int(rng.choice([45, 48, 50])), t, 0.25))
        if bar % 8 == 0:
            notes.append((49, bar * 4.0, 0.25))
    return notes


def band_file(kind: str, i: int) -> GeneratedFile:
    """Drum groove or trio (melody + bass + drums) number `i`: the folk corpus has neither."""
    if kind == "drums":
        return _converted(
            f"drums_{i:02d}.mid", make_sequence([(0, True, random_drum_notes(8, 100 + i))])
        )
    trio = make_sequence(
        [
            (i % 8, False, melody_notes(20, 4, seed=200 + i, low=62)),
            (32 + i % 8, False, bass_notes(20, seed=400 + i)),
            (0, True, random_drum_notes(20, seed=300 + i)),
        ]
    )
    return _converted(f"trio_{i:02d}.mid", trio)


def band_files_in_every_split(
    per_split: int, eval_fraction: float, test_fraction: float
) -> list[GeneratedFile]:
    """Drum and trio files, at least `per_split` of each kind in each split (the split is a
    hash of the file's bytes, so files are drawn until every split has its share)."""
    import hashlib

    from pipelines.examples import SPLITS, split_of

    files = []
    for kind in ("drums", "trio"):
        have = dict.fromkeys(SPLITS, 0)
        for i in range(200):
            if min(have.values()) >= per_split:
                break
            f = band_file(kind, i)
            split = split_of(hashlib.sha256(f.data).hexdigest(), eval_fraction, test_fraction)
            if have[split] < per_split:
                have[split] += 1
                files.append(f)
    return files


def _converted(path, sequence, **kw) -> GeneratedFile:
    programs = sorted({n.program for n in sequence.notes if not n.is_drum})
    return GeneratedFile(
        path=path,
        data=to_midi_bytes(sequence),
        sequence=sequence,
        programs=programs,
        has_drums=any(n.is_drum for n in sequence.notes),
        tempos=[t.qpm for t in sequence.tempos],
        time_signatures=[f"{t.numerator}/{t.denominator}" for t in sequence.time_signatures],
        **kw,
    )


def generated_corpus() -> list[GeneratedFile]:
    """The files of the stage-1 test corpus (deterministic)."""
    melody = make_sequence([(0, False, melody_notes(18, 4, seed=1))])
    # The same tune as another instrument: other bytes, same windows (de-duplicated in stage 2).
    melody_on_flute = make_sequence([(73, False, melody_notes(18, 4, seed=1))])
    files = [
        _converted("folk/melody.mid", melody),
        _converted("folk/melody_on_flute.mid", melody_on_flute),
        # Same bytes under a path that sorts first: this copy is the one kept.
        _converted("copies/melody.mid", melody),
        _converted("drums/beat.mid", make_sequence([(0, True, drum_notes(4))])),
        _converted(
            "band/trio.mid",
            make_sequence(
                [
                    (0, False, melody_notes(17, 4, seed=2, low=65)),
                    (33, False, bass_notes(17)),
                    (0, True, drum_notes(17)),
                ]
            ),
        ),
        _converted(
            "folk/waltz.mid",
            make_sequence(
                [(73, False, melody_notes(16, 3, seed=3))], time_signatures=[(0.0, 3, 4)]
            ),
        ),
        _converted(
            "folk/tempo_change.mid",
            make_sequence(
                [(0, False, melody_notes(8, 4, seed=4))], tempos=[(0.0, 120.0), (8.0, 90.0)]
            ),
        ),
    ]
    rng = np.random.default_rng(0)
    valid = files[0].data
    files += [
        GeneratedFile("broken/empty.mid", b"", error="empty"),
        GeneratedFile("broken/also_empty.mid", b"", error="empty"),
        GeneratedFile("broken/truncated.mid", valid[: len(valid) // 2], error="corrupt"),
        GeneratedFile("broken/random.mid", rng.bytes(700), error="not_midi"),
        GeneratedFile("broken/random_after_header.mid", b"MThd" + rng.bytes(300), error="corrupt"),
        GeneratedFile("broken/no_notes.mid", to_midi_bytes(make_sequence([])), error="no_notes"),
        GeneratedFile(
            "broken/absurd_tempo.mid",
            to_midi_bytes(
                make_sequence([(0, False, melody_notes(2, 4, seed=5))], tempos=[(0.0, 90_000.0)])
            ),
            error="absurd_tempo",
        ),
        GeneratedFile("broken/notes.txt", b"not music", error="unsupported_format"),
    ]
    return files


def write_corpus(root: str, files: list[GeneratedFile]) -> str:
    for f in files:
        path = os.path.join(root, f.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(f.data)
    return root


@pytest.fixture(scope="session")
def generated_files() -> list[GeneratedFile]:
    return generated_corpus()


@pytest.fixture(scope="session")
def generated_corpus_dir(tmp_path_factory, generated_files) -> str:
    return write_corpus(str(tmp_path_factory.mktemp("generated_corpus")), generated_files)


# --- tiny real datasets -------------------------------------------------------------------------

TINY_TUNES_PER_COLLECTION = 30
TINY_BAND_FILES_PER_SPLIT = 2
TINY_EVAL_FRACTION = TINY_TEST_FRACTION = 0.15  # default 0.05: a tiny corpus needs more


def write_folk_tunes(root: str, tunes_per_collection: int) -> None:
    """Real folk tunes of the default corpus (Essen 2/4 and 4/4 songs, Ryan's reels) as MIDI
    files under `root`, written by the corpus builder."""
    from pipelines.corpus import build as corpus

    corpus.main(
        [
            "--output", root,
            "--collections", "essenFolksong,ryansMammoth",
            "--files", "essenFolksong/fink0.abc",
            "--files", "ryansMammoth/*Reel.abc",
            "--limit", str(tunes_per_collection),
            "--direct_running_mode=in_memory",
        ]
    )  # fmt: skip


def build_tiny_datasets(root: str) -> str:
    """Both Beam stages over 60 real folk tunes plus a few generated drum and trio files."""
    corpus = os.path.join(root, "corpus")
    write_folk_tunes(corpus, TINY_TUNES_PER_COLLECTION)
    band = band_files_in_every_split(
        TINY_BAND_FILES_PER_SPLIT, TINY_EVAL_FRACTION, TINY_TEST_FRACTION
    )
    write_corpus(os.path.join(corpus, "generated"), band)
    datasets = os.path.join(root, "datasets")
    run_tiny_stages(corpus, datasets, ["--direct_running_mode=in_memory"])
    return datasets


def run_tiny_stages(corpus: str, datasets: str, runner_args: list[str]) -> dict[str, dict]:
    """Stage 1 then stage 2 (the tiny split fractions) from `corpus` into `datasets`, with the
    given Beam runner flags; returns stage 2's stats per dataset."""
    from pipelines import examples, notesequences

    notesequences.main(["--input", corpus, "--output", f"{datasets}/notesequences", *runner_args])
    splits = [
        "--eval_fraction",
        str(TINY_EVAL_FRACTION),
        "--test_fraction",
        str(TINY_TEST_FRACTION),
    ]
    return examples.main(
        ["--input", f"{datasets}/notesequences", "--output", datasets, *splits, *runner_args]
    )


@pytest.fixture(scope="session")
def tiny_datasets(tmp_path_factory) -> str:
    """Root of real datasets: <root>/<name>/{train,eval,test}-*.parquet and stats.json for
    mel_2bar, mel_16bar, drums_2bar, trio_16bar, and <root>/notesequences (stage 1)."""
    return build_tiny_datasets(str(tmp_path_factory.mktemp("tiny_datasets")))
