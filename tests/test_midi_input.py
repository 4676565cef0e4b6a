"""A user's MIDI file -> the model's window: real MIDI files written to disk and parsed back."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_data import (
    bass_notes,
    drum_notes,
    make_sequence,
    melody_notes,
    to_midi_bytes,
)

from pipelines.extract.midi_input import InputError, load_window
from pipelines.representation import notesequence_to_tokens


def write(tmp_path, name: str, sequence) -> str:
    path = tmp_path / name
    path.write_bytes(to_midi_bytes(sequence))
    return str(path)


def trio_sequence(bars: int = 18):
    return make_sequence(
        [
            (0, False, melody_notes(bars, 4, seed=2, low=65)),
            (33, False, bass_notes(bars)),
            (0, True, drum_notes(bars)),
        ]
    )


def test_melody_window_is_the_first_bars_of_the_tune(tmp_path):
    sequence = make_sequence([(0, False, melody_notes(18, 4, seed=1))])
    window = load_window(write(tmp_path, "tune.mid", sequence), "mel_16bar")
    expected = notesequence_to_tokens(sequence, "melody", num_steps=256)["tokens"]
    assert window.tokens.shape == (256, 1)
    np.testing.assert_array_equal(window.tokens[:, 0], expected)
    assert (window.start_bar, window.track, window.meter, window.qpm) == (0, 0, "4/4", 120.0)


def test_start_bar_picks_a_later_window(tmp_path):
    sequence = make_sequence([(0, False, melody_notes(20, 4, seed=1))])
    path = write(tmp_path, "tune.mid", sequence)
    window = load_window(path, "mel_2bar", start_bar=5)
    everything = notesequence_to_tokens(sequence, "melody", num_steps=20 * 16)["tokens"]
    np.testing.assert_array_equal(window.tokens[:, 0], everything[5 * 16 : 7 * 16])
    assert window.start_bar == 5


def test_track_chooses_among_melody_tracks(tmp_path):
    sequence = trio_sequence()
    path = write(tmp_path, "band.mid", sequence)
    assert load_window(path, "mel_16bar").track == 0  # the first usable track by default
    window = load_window(path, "mel_16bar", track=1)
    bass_only = make_sequence([(33, False, bass_notes(18))])
    expected = notesequence_to_tokens(bass_only, "melody", num_steps=256)["tokens"]
    np.testing.assert_array_equal(window.tokens[:, 0], expected)
    assert window.program == 33


def test_chords_are_read_as_their_top_voice(tmp_path):
    triads = [(p + 12 * (bar % 2), 4.0 * bar, 4.0) for bar in range(2) for p in (60, 64, 67)]
    sequence = make_sequence([(0, False, triads)])
    window = load_window(write(tmp_path, "chords.mid", sequence), "mel_2bar")
    tops = make_sequence([(0, False, [(67, 0.0, 4.0), (79, 4.0, 4.0)])])
    expected = notesequence_to_tokens(tops, "melody", num_steps=32)["tokens"]
    np.testing.assert_array_equal(window.tokens[:, 0], expected)


def test_drum_and_trio_windows(tmp_path):
    path = write(tmp_path, "band.mid", trio_sequence())
    drums = load_window(path, "drums_2bar")
    assert drums.tokens.shape == (32, 1) and drums.track == 2 and drums.kind == "drums"
    assert drums.tokens.max() < 512 and (drums.tokens > 0).sum() == 16  # 8th-note hats
    trio = load_window(path, "trio_16bar")
    assert trio.tokens.shape == (256, 3) and trio.track is None
    expected = notesequence_to_tokens(trio_sequence(), "trio", num_steps=256)
    for index, column in enumerate(("melody", "bass", "drums")):
        np.testing.assert_array_equal(trio.tokens[:, index], expected[column])


def test_two_four_is_read_as_pairs_of_bars(tmp_path):
    sequence = make_sequence(
        [(0, False, melody_notes(34, 2, seed=4))], time_signatures=[(0.0, 2, 4)]
    )
    window = load_window(write(tmp_path, "polka.mid", sequence), "mel_16bar")
    assert window.meter == "2/4" and window.tokens.shape == (256, 1)


def test_tempo_change_takes_the_first_section_with_its_tempo(tmp_path):
    sequence = make_sequence(
        [(0, False, melody_notes(8, 4, seed=4))], tempos=[(0.0, 100.0), (10.0, 140.0)]
    )
    window = load_window(write(tmp_path, "tempo.mid", sequence), "mel_2bar")
    assert window.qpm == pytest.approx(100.0, rel=1e-3)
    assert window.start_bar == 0


@pytest.mark.parametrize(
    ("setup", "dataset", "kwargs", "expected"),
    [
        ("missing", "mel_2bar", {}, "no such file"),
        ("directory", "mel_2bar", {}, "not a file"),
        ("empty", "mel_2bar", {}, "empty"),
        ("text", "mel_2bar", {}, "not a readable MIDI file"),
        ("no_notes", "mel_2bar", {}, "no notes"),
        ("waltz", "mel_2bar", {}, "in 3/4"),
        ("drums_only", "mel_2bar", {}, "only drums"),
        ("melody", "drums_2bar", {}, "no drum track"),
        ("melody", "trio_16bar", {}, "missing: bass (programs 32-39), drums"),
        ("short", "mel_16bar", {}, "longest melody lasts 6 bars"),
        ("melody", "mel_16bar", {"track": 4}, "no track 4"),
        ("band", "mel_16bar", {"track": 2}, "cannot be read by a melody model"),
        ("melody", "mel_16bar", {"start_bar": 9}, "windows start at bars 0-"),
        ("band", "trio_16bar", {"track": 0}, "--track does not apply to trio"),
        ("low", "mel_2bar", {}, "outside the model's range"),
    ],
)
def test_unusable_input_says_why(tmp_path, setup, dataset, kwargs, expected):
    path = tmp_path / f"{setup}.mid"
    sequences = {
        "no_notes": make_sequence([]),
        "waltz": make_sequence(
            [(73, False, melody_notes(16, 3, seed=3))], time_signatures=[(0.0, 3, 4)]
        ),
        "drums_only": make_sequence([(0, True, drum_notes(4))]),
        "melody": make_sequence([(0, False, melody_notes(18, 4, seed=1))]),
        "short": make_sequence([(0, False, melody_notes(6, 4, seed=1))]),
        "band": trio_sequence(),
        "low": make_sequence([(0, False, [(12, float(beat), 1.0) for beat in range(16)])]),
    }
    if setup in sequences:
        path.write_bytes(to_midi_bytes(sequences[setup]))
    elif setup == "directory":
        path.mkdir()
    elif setup == "empty":
        path.write_bytes(b"")
    elif setup == "text":
        path.write_text("these are not the notes you are looking for\n")
    with pytest.raises(InputError) as raised:
        load_window(path, dataset, **kwargs)
    assert expected in str(raised.value)
    assert str(raised.value).startswith(str(path))  # the message names the file
