"""The default-corpus builder: ABC tunes -> one MIDI file each, through the real Beam pipeline.

music21's own stream route (parse -> expandRepeats -> flatten) is the oracle for what a tune
sounds like; the fast token route and the MIDI files must agree with it.
"""

from __future__ import annotations

import json
import os
from fractions import Fraction

import pytest
from music21 import midi as music21_midi
from music21.abcFormat import translate
from note_seq import midi_io

from pipelines.corpus import build as corpus
from pipelines.corpus.abc_played import TICKS_PER_QUARTER, to_ticks
from pipelines.corpus.abc_repeats import BarMarks, play_order
from pipelines.corpus.abc_streams import play_with_streams
from pipelines.corpus.abc_tokens import play_with_tokens, tokenize
from pipelines.corpus.abc_tunes import decode_abc, split_tunes

# Six Essen tunes (pickups, an "M: none" tune, a TimeSignature-reuse tune) and a reel with repeats.
ESSEN_FILE = "essenFolksong/altdeu10.abc"
REEL_FILE = "ryansMammoth/AcaciaReel.abc"
SELECTION = [
    "--collections=essenFolksong,ryansMammoth",
    f"--files={ESSEN_FILE}",
    f"--files={REEL_FILE}",
    "--limit=6",
]
TS_REUSE_X = "5"  # altdeu10 X:5: music21 re-bars it and its MIDI writer then fails
IN_MEMORY = ["--direct_running_mode=in_memory"]


def abc(body: str, meter: str = "2/4", length: str = "1/4") -> str:
    return f"X:1\nT:test\nM:{meter}\nL:{length}\nK:C\n{body}\n"


def pitches(text: str) -> list[int]:
    return [note.pitch for note in play_with_tokens(text).notes]


def corpus_tunes(path: str) -> list:
    collection, file = path.split("/")
    with open(os.path.join(corpus.music21_corpus_dir(), path), "rb") as handle:
        return split_tunes(decode_abc(handle.read()), collection, file)


def midi_notes(path: str) -> list[tuple[int, float, float]]:
    sequence = midi_io.midi_file_to_note_sequence(path)
    return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6)) for n in sequence.notes)


def expected_notes(tune, qpm: float) -> list[tuple[int, float, float]]:
    """What music21's streams play for the tune, in seconds."""
    seconds = 60.0 / qpm / TICKS_PER_QUARTER
    played = play_with_streams(tune.text, tune.abc_version)
    return sorted(
        (n.pitch, round(n.start * seconds, 6), round(n.end * seconds, 6)) for n in played.notes
    )


# --- repeats: the order a player plays the bars in ---


@pytest.mark.parametrize(
    "body, expected",
    [
        ("C D :| E F :|", "C D C D E F E F"),  # no |: before B: repeat B only, not A again
        ("|: C D :|: E F :|", "C D C D E F E F"),
        ("|: C D |1 E F :|2 G A ||", "C D E F C D G A"),
        ("C D |1 E F |2 G A ||", "C D E F C D G A"),  # the :| before |2 left out
        ("|: C D |1 E :|2 F || G A :|", "C D E C D F G A G A"),  # B part after the endings
    ],
)
def test_repeats_are_played_as_a_musician_reads_them(body, expected):
    midi_of = {"C": 60, "D": 62, "E": 64, "F": 65, "G": 67, "A": 69}
    assert pitches(abc(body)) == [midi_of[name] for name in expected.split()]


def test_three_endings():
    # music21's tokenizer knows endings 1 and 2 only; the bar logic takes any number.
    bars = [
        BarMarks(start_repeat=True),
        BarMarks(ending=1, end_repeat=True),
        BarMarks(ending=2, end_repeat=True),
        BarMarks(ending=3, double_bar=True),
        BarMarks(),
    ]
    assert play_order(bars) == [0, 1, 0, 2, 0, 3, 4]


def test_play_order_copes_with_stray_marks():
    # Endings out of order: the :| in ending 1 sends the player back once, to the bar after the
    # first repeated section; the second pass skips ending 1 and stops.
    bars = [BarMarks(end_repeat=True), BarMarks(ending=2), BarMarks(end_repeat=True, ending=1)]
    assert play_order(bars) == [0, 0, 1, 2, 1]


# --- the fast token route against music21's streams ---


def test_token_route_matches_music21_on_tricky_notation():
    body = (
        '"Am"(3ABc d2 z/ {g}^f>e | [CEG]2 =c2- | c/ "Dm"B/ A2 G | (3:2:4G/A/B/c/ d2 |]\n'
        "K:D\n|: f2 e>d | d4 :|"
    )
    text = abc(body, meter="4/4", length="1/8")
    ours, music21s = play_with_tokens(text), play_with_streams(text)
    assert ours.notes == music21s.notes
    assert ours.meter == music21s.meter == (4, 4)
    written = play_with_tokens(text, expand_repeats=False)
    assert len(ours.notes) > len(written.notes)  # the |: f2 e>d | d4 :| part is played twice


@pytest.mark.parametrize(
    "body",
    [
        "V:1\nC D | E F |\nV:2\nA, B, | C D |\nV:1\nG A |]\nV:2\nE F |]",
        "[V:1] C D | E F |\n[V:2] A, B, | C D |\n[V:1] G A |]\n[V:2] E F |]",  # inline fields
    ],
)
def test_interleaved_voices_are_joined_per_voice(body):
    played = play_with_tokens(abc(body))
    by_voice = {v: [(n.start, n.pitch) for n in played.notes if n.voice == v] for v in (0, 1)}
    quarter = TICKS_PER_QUARTER
    assert played.voices == 2
    assert by_voice[0] == [(i * quarter, p) for i, p in enumerate([60, 62, 64, 65, 67, 69])]
    assert by_voice[1] == [(i * quarter, p) for i, p in enumerate([57, 59, 60, 62, 64, 65])]


def test_tie_joins_only_equal_pitches():
    # "F-G" is a slur written as a tie in many transcriptions: both notes sound.
    played = play_with_tokens(abc("C2- C2 | F- G D2 |]", length="1/8"))
    assert [(n.pitch, n.end - n.start) for n in played.notes] == [
        (60, 2 * TICKS_PER_QUARTER),
        (65, TICKS_PER_QUARTER // 2),
        (67, TICKS_PER_QUARTER // 2),
        (62, TICKS_PER_QUARTER),
    ]


def test_pickup_is_shifted_so_the_first_full_bar_starts_on_a_bar_line():
    played = play_with_tokens(abc("D | G2 A B2 c | d3 d3 |]", meter="6/8", length="1/8"))
    bar = 3 * TICKS_PER_QUARTER  # a 6/8 bar is three quarter notes
    starts = [note.start for note in played.notes]
    assert played.pickup_shift == Fraction(5, 2)
    assert starts[0] == bar - TICKS_PER_QUARTER // 2  # the pickup ends on the bar line
    assert starts[1] == bar  # G, first note of the first full bar
    assert starts[-2] == 2 * bar


def test_no_meter_is_not_shifted():
    played = play_with_tokens(abc("D | G2 A B2 c | d3 |]", meter="none", length="1/8"))
    assert played.meter is None and played.notes[0].start == 0


def test_split_tunes_prepends_the_file_header():
    text = "% a book\nL:1/8\n\nX: 7\nT:a\nK:G\nGA|\n\nX:0012\nT:b\nK:D\nd|\n"
    tunes = split_tunes(text, "book", "dir/tunes.abc")
    assert [(t.index, t.x) for t in tunes] == [(1, "7"), (2, "0012")]
    assert tunes[1].text.startswith("% a book\nL:1/8") and "X:0012" in tunes[1].text
    assert "GA|" not in tunes[1].text
    assert tunes[1].midi_path == "book/dir/tunes/0002_X0012.mid"


# --- the Beam pipeline on real corpus tunes ---


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The selection built once with two worker processes (the default runner mode)."""
    output = str(tmp_path_factory.mktemp("corpus") / "data")
    report = corpus.main(["--output", output, *SELECTION, "--direct_num_workers=2"])
    return output, report


def test_build_converts_every_selected_tune(built):
    output, report = built
    essen, reel = corpus_tunes(ESSEN_FILE)[:6], corpus_tunes(REEL_FILE)
    notes = sum(len(midi_notes(os.path.join(output, t.midi_path))) for t in essen + reel)
    assert report["total"] == {"found": 7, "converted": 7, "failed": 0, "notes": notes}
    assert report["failures"] == [] and not os.path.exists(f"{output}.partial")
    with open(os.path.join(output, "REPORT.json"), encoding="utf-8") as handle:
        assert json.load(handle) == report
    for tune in essen + reel:
        path = os.path.join(output, tune.midi_path)
        sequence = midi_io.midi_file_to_note_sequence(path)
        played = play_with_tokens(tune.text, tune.abc_version)
        assert midi_notes(path) == expected_notes(tune, played.qpm), tune.midi_path
        numerator, denominator = played.meter or (4, 4)
        assert [(ts.numerator, ts.denominator, ts.time) for ts in sequence.time_signatures] == [
            (numerator, denominator, 0.0)
        ]
        assert [round(t.qpm, 6) for t in sequence.tempos] == [round(played.qpm, 6)]


def test_pickup_tune_starts_its_first_full_bar_on_a_bar_line(built):
    output, report = built
    tune = corpus_tunes(ESSEN_FILE)[0]  # M:4/2, L:1/4, opens with the pickup "G2 |"
    assert "M: 4/2" in tune.text and "\nG2 | _B2B2c2c2 |" in tune.text
    sequence = midi_io.midi_file_to_note_sequence(os.path.join(output, tune.midi_path))
    seconds_per_quarter = 60.0 / sequence.tempos[0].qpm
    starts = sorted({n.start_time for n in sequence.notes})
    assert starts[0] == pytest.approx(6 * seconds_per_quarter)  # a half-note pickup in 4/2
    assert starts[1] == pytest.approx(8 * seconds_per_quarter)  # the first full bar
    assert report["shifted_for_pickup"] >= 1
    unmetered = sum("M: none" in t.text for t in corpus_tunes(ESSEN_FILE)[:6])
    assert report["first_meters"]["none"] == unmetered > 0  # written as 4/4


def test_repeats_are_expanded(built):
    output, _ = built
    tune = corpus_tunes(REEL_FILE)[0]
    written = play_with_tokens(tune.text, expand_repeats=False)
    sequence = midi_io.midi_file_to_note_sequence(os.path.join(output, tune.midi_path))
    assert len(sequence.notes) > len(written.notes)
    assert len(sequence.notes) == len(play_with_streams(tune.text).notes)


def test_time_signature_reuse_tune_is_converted(built):
    output, _ = built
    (tune,) = [t for t in corpus_tunes(ESSEN_FILE) if t.x == TS_REUSE_X]
    score = translate.abcToStreamScore(tokenize(tune.text)).expandRepeats()
    with pytest.raises(Exception, match="already found"):
        music21_midi.translate.streamToMidiFile(score)  # the pitfall this tune is known for
    path = os.path.join(output, tune.midi_path)
    played = play_with_tokens(tune.text)
    assert midi_notes(path) == expected_notes(tune, played.qpm)
    sequence = midi_io.midi_file_to_note_sequence(path)
    assert [(ts.numerator, ts.denominator) for ts in sequence.time_signatures] == [(4, 2)]


def test_rebuild_is_byte_identical(built, tmp_path):
    output, _ = built
    again = str(tmp_path / "again")
    corpus.main(["--output", again, *SELECTION, *IN_MEMORY])
    assert corpus.tree_digest(again) == corpus.tree_digest(output)


def test_a_bad_tune_is_reported_and_does_not_stop_the_build(tmp_path):
    book = tmp_path / "abc" / "mybook"
    book.mkdir(parents=True)
    good, empty = abc("C D | E F |]"), "X:2\nT:words only\nM:2/4\nL:1/4\nK:C\n"
    (book / "tunes.abc").write_text(good + "\n" + empty, encoding="utf-8")
    output = tmp_path / "out"
    report = corpus.main(["--output", str(output), "--source", str(tmp_path / "abc"), *IN_MEMORY])
    assert report["total"]["found"] == 2 and report["total"]["converted"] == 1
    (failure,) = report["failures"]
    assert (failure["collection"], failure["file"], failure["x"]) == ("mybook", "tunes.abc", "2")
    assert "no notes" in failure["reason"]
    assert sorted(os.listdir(output / "mybook" / "tunes")) == ["0001_X1.mid"]


def test_refuses_to_replace_a_non_empty_output(tmp_path):
    (tmp_path / "mine.mid").write_bytes(b"MThd")
    with pytest.raises(SystemExit, match="--overwrite"):
        corpus.main(["--output", str(tmp_path), *SELECTION])
    assert (tmp_path / "mine.mid").read_bytes() == b"MThd"


def test_ticks_round_exactly():
    assert to_ticks(Fraction(1, 3)) == TICKS_PER_QUARTER // 3
    assert to_ticks(Fraction(1, 7)) == round(TICKS_PER_QUARTER / 7)
