"""Example extraction on small hand-made NoteSequences, and against note_seq's own extractors."""

import collections
import io

import numpy as np
import pretty_midi
import pytest
from fixtures_data import make_step_sequence
from hypothesis import given, settings
from hypothesis import strategies as st
from note_seq import drums_encoder_decoder, drums_lib, melodies_lib, sequences_lib
from note_seq.protobuf import music_pb2

from pipelines import representation as rep
from pipelines.extract.pieces import METER_AS_PAIRS, METER_DROPPED, METER_KEPT, meter_count_name
from pipelines.extract.tracks import drum_segments, melody_segments
from pipelines.extract.windows import (
    DATASET_SPECS,
    EXAMPLES_BY_METER,
    DatasetSpec,
    Example,
    examples_from_notesequence,
)
from pipelines.representation import NoteArrays

MEL_2BAR = DATASET_SPECS["mel_2bar"]
MEL_16BAR = DATASET_SPECS["mel_16bar"]
DRUMS_2BAR = DATASET_SPECS["drums_2bar"]
TRIO_16BAR = DATASET_SPECS["trio_16bar"]
BAR = rep.STEPS_PER_BAR


def bar_line(first_bar, num_bars, base_pitch=60, program=0, instrument=0):
    """Four quarter notes per bar, pitches changing every bar so that no two bars are equal."""
    return [
        (
            base_pitch + bar % 24 + beat,
            bar * BAR + beat * 4,
            bar * BAR + beat * 4 + 4,
            program,
            instrument,
            False,
        )
        for bar in range(first_bar, first_bar + num_bars)
        for beat in range(4)
    ]


def start_bars(examples):
    return [e.start_bar for e in examples]


# --- windows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "num_bars"), [(MEL_2BAR, 7), (MEL_16BAR, 20)])
def test_a_melody_of_n_bars_gives_n_minus_window_plus_one_windows(spec, num_bars):
    examples, counts = examples_from_notesequence(make_step_sequence(bar_line(0, num_bars)), spec)
    assert start_bars(examples) == list(range(num_bars - spec.num_bars + 1))
    assert counts["melody:extracted"] == 1
    for example in examples:
        assert example.tracks["tokens"].dtype == np.int16
        assert example.tracks["tokens"].shape == (spec.num_steps,)


def test_window_tokens_are_the_slices_of_the_encoded_melody():
    ns = make_step_sequence(bar_line(0, 5))
    whole = rep.notesequence_to_tokens(ns, "melody")["tokens"]
    examples, _ = examples_from_notesequence(ns, MEL_2BAR)
    for example in examples:
        window = whole[example.start_bar * BAR : (example.start_bar + 2) * BAR]
        np.testing.assert_array_equal(example.tracks["tokens"], window)


def test_pickup_bar_windows_start_where_the_tune_starts():
    # Bar 0 is empty; the tune plays bars 1-4.
    examples, counts = examples_from_notesequence(make_step_sequence(bar_line(1, 4)), MEL_2BAR)
    assert start_bars(examples) == [1, 2, 3]
    assert counts["window:all_rest"] == 0


def test_windows_without_an_onset_are_dropped_and_counted():
    # Bar 0 plays, then one note is held through bars 1-3, then bar 4 plays.
    notes = bar_line(0, 1) + [(50, BAR, 4 * BAR, 0, 0, False)] + bar_line(4, 1)
    examples, counts = examples_from_notesequence(make_step_sequence(notes), MEL_2BAR)
    assert start_bars(examples) == [0, 1, 3]  # window (2, 3) only holds the held note
    assert counts["window:all_rest"] == 1


def test_repeated_windows_of_one_sequence_are_kept_once():
    motif = bar_line(0, 1)
    notes = [
        (p, s + bar * BAR, e + bar * BAR, *rest) for bar in range(4) for p, s, e, *rest in motif
    ]
    examples, counts = examples_from_notesequence(make_step_sequence(notes), MEL_2BAR)
    assert len(examples) == 1
    assert counts["window:duplicate_in_sequence"] == 2
    examples_all, _ = examples_from_notesequence(
        make_step_sequence(notes),
        DatasetSpec("all", "melody", num_bars=2, dedup_within_sequence=False),
    )
    assert len(examples_all) == 3
    assert len({e.content_key() for e in examples_all}) == 1


def test_content_key_depends_on_kind_and_tokens():
    tokens = np.zeros(32, np.int16)
    tokens[0] = 40
    key = Example("melody", 0, 0, {"tokens": tokens}).content_key()
    assert len(key) == 64 and int(key, 16) >= 0
    assert Example("melody", 5, 7, {"tokens": tokens.copy()}).content_key() == key
    assert Example("drums", 0, -1, {"tokens": tokens}).content_key() != key
    other = tokens.copy()
    other[1] = 1
    assert Example("melody", 0, 0, {"tokens": other}).content_key() != key


# --- melodies --------------------------------------------------------------------------------


def test_one_bar_of_silence_ends_a_melody():
    # Bars 0-1 play (last note ends at step 32); the next note starts one bar later.
    split = bar_line(0, 2) + bar_line(3, 2)
    examples, counts = examples_from_notesequence(make_step_sequence(split), MEL_2BAR)
    assert counts["melody:extracted"] == 2
    assert start_bars(examples) == [0, 3]
    # One step less of silence keeps one melody.
    joined = bar_line(0, 2) + [(70, 3 * BAR - 1, 3 * BAR, 0, 0, False)] + bar_line(3, 2)
    examples, counts = examples_from_notesequence(make_step_sequence(joined), MEL_2BAR)
    assert counts["melody:extracted"] == 1
    assert start_bars(examples) == [0, 1, 2, 3]


def test_polyphony_keeps_the_highest_pitch():
    chords = [
        (p, bar * BAR, (bar + 1) * BAR) for bar in range(2) for p in (60 + bar, 64 + bar, 67 + bar)
    ]
    examples, _ = examples_from_notesequence(make_step_sequence(chords), MEL_2BAR)
    (example,) = examples
    assert rep.melody_notes(example.tracks["tokens"]) == [(67, 0, 16), (68, 16, 32)]


def test_notes_outside_the_piano_range_are_dropped_and_counted():
    notes = bar_line(0, 2)
    notes[5] = (110, *notes[5][1:])
    notes[6] = (12, *notes[6][1:])
    examples, counts = examples_from_notesequence(make_step_sequence(notes), MEL_2BAR)
    assert counts["melody:notes_out_of_range"] == 2
    (example,) = examples
    kept = [(p, s, e) for p, s, e, *_ in notes if 21 <= p <= 108]
    assert rep.melody_notes(example.tracks["tokens"]) == kept


def test_drums_are_not_melodies():
    drums = [(36, step, step + 1, 0, 9, True) for step in range(0, 4 * BAR, 4)]
    examples, counts = examples_from_notesequence(make_step_sequence(drums), MEL_2BAR)
    assert examples == [] and counts["melody:none"] == 1
    examples, _ = examples_from_notesequence(make_step_sequence(drums + bar_line(0, 2)), MEL_2BAR)
    (example,) = examples
    assert {p for p, _, _ in rep.melody_notes(example.tracks["tokens"])} <= set(range(60, 70))


def test_melody_programs_filter():
    piano = bar_line(0, 2, program=0, instrument=0)
    violin = bar_line(0, 2, base_pitch=80, program=40, instrument=1)
    ns = make_step_sequence(piano + violin)
    examples, counts = examples_from_notesequence(ns, MEL_2BAR)  # programs 0-31 only
    assert [e.program for e in examples] == [0]
    assert counts["melody:track_program_excluded"] == 1
    every_program = DatasetSpec("any", "melody", num_bars=2)
    examples, _ = examples_from_notesequence(ns, every_program)
    assert sorted(e.program for e in examples) == [0, 40]


def test_long_melodies_are_truncated_before_slicing():
    spec = DatasetSpec("short", "melody", num_bars=2, max_track_bars=4)
    examples, counts = examples_from_notesequence(make_step_sequence(bar_line(0, 10)), spec)
    assert start_bars(examples) == [0, 1, 2]
    assert counts["melody:truncated"] == 1


def test_melodies_shorter_than_a_window_are_counted():
    examples, counts = examples_from_notesequence(make_step_sequence(bar_line(0, 3)), MEL_16BAR)
    assert examples == [] and counts["melody:too_short"] == 1


# --- meters, tempi, odd input ----------------------------------------------------------------


def test_two_four_is_read_as_pairs_of_bars():
    # Eight bars of 2/4 = four 16-step bars.
    notes = [(60 + i % 12, i * 4, i * 4 + 4) for i in range(16)]
    examples, counts = examples_from_notesequence(make_step_sequence(notes, meter=(2, 4)), MEL_2BAR)
    assert counts[METER_AS_PAIRS, "2/4"] == 1
    assert meter_count_name((METER_AS_PAIRS, "2/4")) == "meter:2/4_as_pairs"  # in stats.json
    assert start_bars(examples) == [0, 1, 2]
    assert {e.meter for e in examples} == {"2/4"}
    assert counts[EXAMPLES_BY_METER, "2/4"] == 3


def test_three_four_is_dropped_with_its_reason():
    examples, counts = examples_from_notesequence(
        make_step_sequence(bar_line(0, 4), meter=(3, 4)), MEL_2BAR
    )
    assert examples == []
    assert counts[METER_DROPPED, "3/4"] == 1
    assert meter_count_name((METER_DROPPED, "3/4")) == "meter:not_16_steps:3/4"  # in stats.json


def test_a_tempo_change_splits_the_sequence():
    first = make_step_sequence(bar_line(0, 4), qpm=120.0)  # 8 s
    ns = make_step_sequence([])
    ns.CopyFrom(first)
    ns.tempos.add(time=8.0, qpm=60.0)
    seconds = 60.0 / 60.0 / 4  # a step at the new tempo
    for pitch, start, end, *_ in bar_line(0, 3, base_pitch=40):
        ns.notes.add(
            pitch=pitch, velocity=90, start_time=8.0 + start * seconds, end_time=8.0 + end * seconds
        )
    ns.total_time = max(n.end_time for n in ns.notes)
    examples, counts = examples_from_notesequence(ns, MEL_2BAR)
    assert counts["split:tempo_change"] == 1
    assert [(e.piece, e.start_bar) for e in examples] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    # The second piece was quantized at its own tempo: quarter notes are 4 steps again.
    assert rep.melody_notes(examples[-1].tracks["tokens"])[0] == (40 + 1, 0, 4)


def test_a_time_signature_change_keeps_the_usable_piece():
    ns = make_step_sequence(bar_line(0, 6))
    ns.time_signatures.add(time=6.0, numerator=3, denominator=4)  # from bar 3 on
    examples, counts = examples_from_notesequence(ns, MEL_2BAR)
    assert counts["split:time_signature_change"] == 1
    assert counts[METER_KEPT, "4/4"] == 1 and counts[METER_DROPPED, "3/4"] == 1
    assert meter_count_name((METER_KEPT, "4/4")) == "meter:4/4"
    assert start_bars(examples) == [0, 1]


def test_time_events_that_change_nothing_do_not_split():
    ns = make_step_sequence(bar_line(0, 4))
    ns.tempos.add(time=4.0, qpm=120.0)  # the same tempo again
    ns.time_signatures.add(time=2.0, numerator=4, denominator=4)
    ns.tempos.add(time=ns.total_time, qpm=90.0)  # after the last note, as MIDI files often end
    examples, counts = examples_from_notesequence(ns, MEL_2BAR)
    assert start_bars(examples) == [0, 1, 2]
    assert not any(isinstance(key, str) and key.startswith("split:") for key in counts)


def test_odd_sequences_are_counted_not_raised():
    assert examples_from_notesequence(music_pb2.NoteSequence(), MEL_2BAR) == (
        [],
        collections.Counter({"sequence:no_notes": 1}),
    )
    spec = DatasetSpec("tiny", "melody", num_bars=2, max_piece_steps=64)
    examples, counts = examples_from_notesequence(make_step_sequence(bar_line(0, 5)), spec)
    assert examples == [] and counts["piece:too_long"] == 1
    # 6/6 has a 16-step bar but no power-of-two denominator: note_seq refuses to quantize it.
    examples, counts = examples_from_notesequence(
        make_step_sequence(bar_line(0, 2), meter=(6, 6)), MEL_2BAR
    )
    assert examples == [] and counts["quantize:failed:BadTimeSignatureError"] == 1


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown kind"):
        DatasetSpec("x", "piano", num_bars=2)
    with pytest.raises(ValueError, match="steps per quarter"):
        DatasetSpec("x", "melody", num_bars=2, steps_per_quarter=8)
    with pytest.raises(ValueError, match="21..108"):
        DatasetSpec("x", "melody", num_bars=2, min_pitch=0)
    assert set(DATASET_SPECS) == {"mel_2bar", "mel_16bar", "drums_2bar", "trio_16bar"}


# --- drums -----------------------------------------------------------------------------------


def test_drum_hits_map_to_their_classes():
    hits = [(36, 0), (35, 0), (38, 4), (42, 4), (46, 8), (51, 12), (20, 2), (49, 16), (45, 20)]
    drums = [(p, s, s + 1, 0, 9, True) for p, s in hits]
    examples, counts = examples_from_notesequence(make_step_sequence(drums), DRUMS_2BAR)
    (example,) = examples
    tokens = example.tracks["tokens"]
    assert example.program == -1
    assert tokens[0] == 1  # kick (35 and 36 are one class)
    assert tokens[4] == 2 | 4  # snare + closed hat
    assert tokens[8] == 8 and tokens[12] == 256 and tokens[16] == 128 and tokens[20] == 16
    assert tokens[2] == 0 and counts["drums:unmapped_pitch"] == 1
    assert np.count_nonzero(tokens) == 6


def test_drum_tracks_merge_drum_instruments_and_split_at_gaps():
    kit_a = [(36, s, s + 1, 0, 9, True) for s in range(0, 2 * BAR, 4)]
    kit_b = [(42, s, s + 1, 0, 10, True) for s in range(2, 2 * BAR, 4)]
    late = [(38, s, s + 1, 0, 9, True) for s in range(5 * BAR, 7 * BAR, 4)]
    examples, counts = examples_from_notesequence(
        make_step_sequence(kit_a + kit_b + late), DRUMS_2BAR
    )
    assert counts["drums:extracted"] == 2
    assert start_bars(examples) == [0, 5]
    assert examples[0].tracks["tokens"][:8].tolist() == [1, 0, 4, 0, 1, 0, 4, 0]


# --- trios -----------------------------------------------------------------------------------


def trio_notes(num_bars, drum_bars=None):
    melody = bar_line(0, num_bars, base_pitch=70, program=0, instrument=0)
    bass = [(36 + bar % 12, bar * BAR, (bar + 1) * BAR, 33, 1, False) for bar in range(num_bars)]
    drums = [
        (36 + 2 * (s % 8 == 4), s, s + 1, 0, 9, True)
        for s in range(0, (drum_bars or num_bars) * BAR, 4)
    ]
    return melody, bass, drums


def test_trio_windows_align_the_three_streams():
    melody, bass, drums = trio_notes(18)
    ns = make_step_sequence(melody + bass + drums)
    examples, counts = examples_from_notesequence(ns, TRIO_16BAR)
    assert start_bars(examples) == [0, 1, 2]
    assert counts["trio:combinations"] == 1
    whole = rep.notesequence_to_tokens(ns, "trio")
    for example in examples:
        assert example.program == 0 and set(example.tracks) == {"melody", "bass", "drums"}
        steps = slice(example.start_bar * BAR, (example.start_bar + 16) * BAR)
        for column, tokens in example.tracks.items():
            np.testing.assert_array_equal(tokens, whole[column][steps], err_msg=column)


def test_trio_needs_all_three_tracks():
    melody, bass, drums = trio_notes(18)
    examples, counts = examples_from_notesequence(make_step_sequence(melody + drums), TRIO_16BAR)
    assert examples == [] and counts["trio:missing_bass"] == 1
    examples, counts = examples_from_notesequence(make_step_sequence(melody + bass), TRIO_16BAR)
    assert examples == [] and counts["trio:missing_drums"] == 1


def test_trio_windows_need_every_track_to_cover_them():
    # Drums stop after bar 9: widened by 2 bars they cover bars 0-11; the last 2 bars count as
    # covered (magenta's leniency at the ends). Neither run holds 16 bars.
    melody, bass, drums = trio_notes(20, drum_bars=10)
    examples, counts = examples_from_notesequence(
        make_step_sequence(melody + bass + drums), TRIO_16BAR
    )
    assert examples == [] and counts["trio:too_short"] == 2
    # With drums up to bar 13 (covering bars 0-15), the first window is there.
    melody, bass, drums = trio_notes(20, drum_bars=14)
    examples, _ = examples_from_notesequence(make_step_sequence(melody + bass + drums), TRIO_16BAR)
    assert start_bars(examples) == [0]


# --- real MIDI -------------------------------------------------------------------------------


def test_extraction_from_a_parsed_midi_file():
    """A MIDI file written by pretty_midi (piano + strings + drums) read back through note_seq."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=100.0)
    quarter = 60.0 / 100.0
    piano, strings = pretty_midi.Instrument(program=0), pretty_midi.Instrument(program=48)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for i in range(24):  # six bars of quarter notes
        t = i * quarter
        piano.notes.append(pretty_midi.Note(90, 60 + i % 7, t, t + quarter))
        strings.notes.append(pretty_midi.Note(70, 48 + i % 5, t, t + 2 * quarter))
        drums.notes.append(pretty_midi.Note(100, 36 if i % 2 == 0 else 38, t, t + 0.1))
    midi.instruments += [piano, strings, drums]
    buffer = io.BytesIO()
    midi.write(buffer)
    ns = rep.midi_bytes_to_notesequence(buffer.getvalue())

    melodies, counts = examples_from_notesequence(ns, MEL_2BAR)
    assert counts["melody:track_program_excluded"] == 1  # strings
    assert len(melodies) == 5 and {e.program for e in melodies} == {0}
    beats = [rep.melody_notes(e.tracks["tokens"]) for e in melodies]
    assert beats[0][:3] == [(60, 0, 4), (61, 4, 8), (62, 8, 12)]
    drum_examples, _ = examples_from_notesequence(ns, DRUMS_2BAR)
    # Kick and snare alternate on quarter notes: one distinct 2-bar window.
    assert len(drum_examples) == 1
    assert drum_examples[0].tracks["tokens"][:8].tolist() == [1, 0, 0, 0, 2, 0, 0, 0]


# --- the same tracks as note_seq's extractors ------------------------------------------------

random_notes = st.lists(
    st.tuples(st.integers(0, 160), st.integers(1, 24), st.integers(21, 108)),
    min_size=1,
    max_size=40,
)


def quantized(notes, is_drum=False):
    ns = make_step_sequence([(p, s, s + d, 0, 0, is_drum) for s, d, p in notes])
    return sequences_lib.quantize_note_sequence(ns, rep.STEPS_PER_QUARTER)


@settings(max_examples=150, deadline=None)
@given(random_notes)
def test_melodies_match_note_seq_melody_extraction(notes):
    """magenta's extract_melodies loop, run with note_seq's Melody, finds the same melodies."""
    qns = quantized(notes)
    theirs, search_start = [], 0
    while True:
        melody = melodies_lib.Melody()
        melody.from_quantized_sequence(
            qns,
            search_start_step=search_start,
            gap_bars=1,
            ignore_polyphonic_notes=True,
            pad_end=True,
        )
        search_start = melody.end_step + (-melody.end_step) % BAR
        if not melody:
            break
        events = [{-2: 0, -1: 1}.get(e, e - 19) for e in melody]
        theirs.append((melody.start_step, events))

    counts = collections.Counter()
    segments = melody_segments(
        NoteArrays.from_quantized(qns),
        valid_programs=None,
        min_pitch=21,
        max_pitch=108,
        gap_bars=1,
        max_bars=None,
        counts=counts,
    )
    assert [(s.start_step, s.tokens["tokens"].tolist()) for s in segments] == theirs


@settings(max_examples=150, deadline=None)
@given(random_notes)
def test_drum_tracks_match_note_seq_drum_extraction(notes):
    drum_notes = [(s, d, 35 + p % 25) for s, d, p in notes]  # GM drum pitches 35..59
    qns = quantized(drum_notes, is_drum=True)
    # DrumsConverter maps pitches to classes before extracting, then encodes class sets.
    for note in qns.notes:
        note.pitch = int(rep.DRUM_PITCH_TO_CLASS[note.pitch])
    encoding = drums_encoder_decoder.MultiDrumOneHotEncoding(
        drum_type_pitches=[(i,) for i in range(rep.NUM_DRUM_CLASSES)]
    )
    theirs, search_start = [], 0
    while True:
        track = drums_lib.DrumTrack()
        track.from_quantized_sequence(qns, search_start_step=search_start, gap_bars=1, pad_end=True)
        search_start = track.end_step + (-track.end_step) % BAR
        if not track:
            break
        theirs.append((track.start_step, [encoding.encode_event(e) for e in track]))

    segments = drum_segments(
        NoteArrays.from_quantized(quantized(drum_notes, is_drum=True)),
        gap_bars=1,
        max_bars=None,
        counts=collections.Counter(),
    )
    assert [(s.start_step, s.tokens["tokens"].tolist()) for s in segments] == theirs
