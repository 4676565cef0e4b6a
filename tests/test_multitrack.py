"""The multi-track corpus builder: folk tunes with MMA's drums and bass (pipelines/multitrack).

The builder runs the real `mma` on a small groove library (two of MMA's own files) and a handful
of hand-made tunes, and the files it writes go through the same window extraction as a user's
MIDI file. Tests that need `mma` skip, naming the package, where it is not installed; `make test`
installs it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mido
import numpy as np
import pytest
import yaml

from pipelines.corpus.abc_played import TICKS_PER_QUARTER
from pipelines.corpus.midi import multitrack_midi_bytes, read_events
from pipelines.extract.midi_input import load_window
from pipelines.multitrack import build, harmony, mma

HAVE_MMA = shutil.which("mma") is not None and os.path.isdir(mma.DEFAULT_LIBRARY)
needs_mma = pytest.mark.skipif(
    not HAVE_MMA, reason="MMA TESTS SKIPPED: `mma` is not installed (apt-get install mma)"
)
IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
Q = TICKS_PER_QUARTER
# C major: I I IV V | I vi V I, each bar's notes spelling its chord (quarters).
C_MAJOR_BARS = [
    (60, 64, 67, 64), (64, 67, 72, 67), (65, 69, 72, 69), (67, 71, 74, 71),
    (72, 67, 64, 60), (69, 72, 76, 72), (67, 71, 74, 67), (60, 64, 67, 72),
]  # fmt: skip


def melody_notes(bars: list[tuple[int, ...]], repeats: int = 2) -> list[tuple[int, int, int, int]]:
    pitches = [p for _ in range(repeats) for bar in bars for p in bar]
    return [(i * Q, (i + 1) * Q, p, 90) for i, p in enumerate(pitches)]


def write_tune(path: Path, notes, meter=(4, 4), qpm=100.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(multitrack_midi_bytes(meter, qpm, [(0, 0, notes)]))


def test_read_events_reads_what_mido_reads(tmp_path):
    notes = melody_notes(C_MAJOR_BARS, repeats=1)
    drums = [(i * Q // 2, i * Q // 2 + 10, 36 + i % 3, 100) for i in range(64)]
    data = multitrack_midi_bytes((2, 2), 132.0, [(0, 0, notes), (9, 0, drums), (1, 33, notes)])
    path = tmp_path / "x.mid"
    path.write_bytes(data)
    division, events = read_events(data)
    midi = mido.MidiFile(path)
    assert division == midi.ticks_per_beat == Q
    expected = []
    for index, track in enumerate(midi.tracks):
        tick = 0
        for message in track:
            tick += message.time
            if not message.is_meta:
                expected.append((tick, index, message.bytes()[0], bytes(message.bytes()[1:])))
            elif message.type == "time_signature":
                assert (message.numerator, message.denominator) == (2, 2)
    assert [e for e in events if e[2] != 0xFF] == expected
    with pytest.raises(ValueError, match="not a Standard MIDI File"):
        read_events(b"RIFF....")


def test_harmonise_finds_the_key_and_a_chord_per_bar():
    bar = 4 * Q
    notes = [harmony.Note(s / bar, e / bar, p) for s, e, p, _ in melody_notes(C_MAJOR_BARS, 1)]
    assert harmony.estimate_key(notes) == (0, False)
    names = [c.name for c in harmony.harmonise(notes, 9)]
    assert names == ["C", "C", "F", "G", "C", "Am", "G", "C", "C"]  # bar 9 is empty: C held
    # The same tune a minor third down is in A major; in A minor's notes it is A minor.
    down = [harmony.Note(n.start, n.end, n.pitch - 3) for n in notes]
    assert [c.name for c in harmony.harmonise(down, 8)][:4] == ["A", "A", "D", "E"]
    a_minor = [harmony.Note(i / 4, (i + 1) / 4, p) for i, p in enumerate([57, 60, 64, 60] * 4)]
    assert harmony.estimate_key(a_minor) == (9, True)


@needs_mma
def test_main_grooves_are_the_4_4_grooves_a_tune_can_be_played_with():
    grooves = mma.main_grooves()
    names = {(g.library, g.name) for g in grooves}
    assert ("folk", "Folk") in names and ("rock1", "Rock1") not in names
    assert any(g.library == "50srock" for g in grooves)
    assert not any(g.library == "waltz" for g in grooves)  # 3/4
    assert not any(word in g.name.lower() for g in grooves for word in ("intro", "end", "fill"))
    assert grooves == sorted(grooves)


@pytest.fixture(scope="module")
def small_library(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("library")
    for name in ("folk.mma", "50srock.mma"):
        shutil.copy(os.path.join(mma.DEFAULT_LIBRARY, name), folder)
    return str(folder)


def make_corpus(folder: Path) -> None:
    write_tune(folder / "book/a.mid", melody_notes(C_MAJOR_BARS))  # 16 bars of 4/4
    up = [(s, e, p + 2, v) for s, e, p, v in melody_notes(C_MAJOR_BARS, 3)]
    write_tune(folder / "book/b.mid", up, meter=(2, 2), qpm=180.0)  # 24 bars, D major
    write_tune(folder / "book/short.mid", melody_notes(C_MAJOR_BARS, 1))  # 8 bars
    write_tune(folder / "waltz.mid", melody_notes(C_MAJOR_BARS), meter=(3, 4))
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")


@needs_mma
def test_build_writes_trios_and_grooves_the_same_bytes_every_time(tmp_path, small_library):
    make_corpus(tmp_path / "in")
    args = ["--input", str(tmp_path / "in"), "--library", small_library, *IN_MEMORY]
    report = build.main([*args, "--output", str(tmp_path / "out")])
    build.main([*args, "--output", str(tmp_path / "again")])
    files = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.*"))
    again = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*.*"))
    assert files == again
    for name in files:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    assert not (tmp_path / "out.partial").exists()

    assert report == json.loads((tmp_path / "out/REPORT.json").read_text())
    assert report["tunes_read"] == 5 and report["tunes_accompanied"] == 2
    assert report["tunes_skipped"] == {
        "meter not 4/4 or 2/2 throughout": 1,
        "shorter than 16 bars": 1,
        "unreadable: ValueError": 1,
    }
    assert report["grooves_found"] == len(mma.main_grooves(small_library))
    played = sorted(str(p) for p in files if p.parts[0] == "grooves")
    assert len(played) == report["grooves_played"] > 5
    assert report["grooves_left_out"] == {}  # folk and 50s rock grooves all have drums and bass

    # A trio file: the tune as it was, MMA's bass (programs 32-39) and drums (channel 10).
    for name, meter in (("a", (4, 4)), ("b", (2, 2))):
        path = tmp_path / "out/tunes/book" / f"{name}.mid"
        midi = mido.MidiFile(path)
        programs = {
            m.channel: m.program for t in midi.tracks for m in t if m.type == "program_change"
        }
        assert programs[0] == 0 and programs[1] in range(32, 40) and 9 in programs
        _, events = read_events(path.read_bytes())
        assert {(e[3][1], 2 ** e[3][2]) for e in events if e[2] == 0xFF and e[3][0] == 0x58} == {
            meter
        }
        trio = load_window(path, "trio_16bar")
        original = load_window(tmp_path / "in/book" / f"{name}.mid", "mel_16bar")
        assert np.array_equal(trio.tokens[:, 0], original.tokens[:, 0])  # the melody, unchanged
        assert (trio.tokens[:, 1] >= 2).sum() >= 16  # a bass onset in every bar or more
        assert (trio.tokens[:, 2] > 0).sum() >= 32  # drum hits
    drums = load_window(tmp_path / "out" / played[0], "drums_2bar")
    assert (drums.tokens[:, 0] > 0).sum() >= 4


@needs_mma
def test_a_groove_without_bass_is_left_out_and_named(tmp_path):
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(os.path.join(mma.DEFAULT_LIBRARY, "bossanova.mma"), library)
    make_corpus(tmp_path / "in")
    report = build.main(
        ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
         "--library", str(library), *IN_MEMORY]
    )  # fmt: skip
    assert report["grooves_left_out"]["bossanova/BossaNova"] == "the groove played no bass"
    playing = report["grooves_played"]
    assert playing == report["grooves_found"] - len(report["grooves_left_out"])
    assert report["tunes_accompanied"] == (2 if playing else 0)
    if not playing:
        assert report["tunes_skipped"]["no groove of the library plays drums and bass"] == 2


def test_without_mma_the_build_says_how_to_install_it_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    make_corpus(tmp_path / "in")
    with pytest.raises(SystemExit, match=r"apt-get install mma"):
        build.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def test_without_mma_make_repro_runs_every_stage_that_does_not_need_it():
    from pipelines.multitrack.without_mma import MULTITRACK_STAGES, stages_without_mma

    root = Path(__file__).resolve().parents[1]
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"] = {
        "cat-mel_2bar_cpu": {"dataset": "mel_2bar"},
        "cat-drums_2bar_cpu": {"dataset": "drums_2bar"},
        "hierdec-trio_16bar_cpu": {"dataset": "trio_16bar"},
    }
    params["lm_datasets"] = ["mel_2bar", "drums_2bar", "trio_16bar"]
    names = stages_without_mma(dvc_yaml, params)
    assert not set(names) & set(MULTITRACK_STAGES)
    assert {"notesequences", "examples", "compare"} <= set(names)
    assert "train@cat-mel_2bar_cpu" in names and "register@cat-mel_2bar_cpu" in names
    assert "lm@mel_2bar" in names
    assert not [n for n in names if "drums" in n or "trio" in n]
    # One melody model and its dataset: every other stage once, each per-model stage once.
    assert len(names) == len(dvc_yaml["stages"]) - len(MULTITRACK_STAGES)
