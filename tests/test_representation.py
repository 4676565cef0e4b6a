"""The token representation: constants, validation, and tokens <-> NoteSequence <-> MIDI."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from note_seq import drums_encoder_decoder, melodies_lib, sequences_lib
from note_seq.protobuf import music_pb2

from pipelines import representation as rep

# Melody tokens where no-events and note-offs are as common as note-ons.
melody_token = st.one_of(st.just(0), st.integers(0, 1), st.integers(0, rep.MELODY_CLASSES - 1))
drum_token = st.one_of(st.just(0), st.integers(0, rep.DRUM_CLASSES - 1))
melody_tokens = st.lists(melody_token, min_size=1, max_size=96)
drum_tokens = st.lists(drum_token, min_size=1, max_size=96)
qpms = st.floats(min_value=30.0, max_value=300.0, allow_nan=False)


@st.composite
def trio_tokens(draw):
    n = draw(st.integers(1, 64))
    return {
        "melody": draw(st.lists(melody_token, min_size=n, max_size=n)),
        "bass": draw(st.lists(melody_token, min_size=n, max_size=n)),
        "drums": draw(st.lists(drum_token, min_size=n, max_size=n)),
    }


def canonical(tokens, kind):
    """The canonical form of every stream of `tokens` (drum streams are always canonical)."""
    tracks = rep.as_tracks(tokens, kind)
    return {
        spec.column: rep.canonical_melody(tracks[spec.column])
        if spec.track_type == "melody"
        else tracks[spec.column]
        for spec in rep.TRACKS[kind]
    }


def assert_same_tracks(actual, expected):
    assert actual.keys() == expected.keys()
    for column in expected:
        np.testing.assert_array_equal(actual[column], expected[column], err_msg=column)


# --- constants -------------------------------------------------------------------------------


def test_vocabulary_sizes_and_tracks_follow_the_architecture():
    assert (rep.MELODY_CLASSES, rep.DRUM_CLASSES) == (90, 512)
    assert rep.STEPS_PER_BAR == 16
    assert [(t.column, t.num_classes, t.track_type) for t in rep.TRACKS["trio"]] == [
        ("melody", 90, "melody"),
        ("bass", 90, "melody"),
        ("drums", 512, "drums"),
    ]
    assert [(t.column, t.num_classes) for t in rep.TRACKS["melody"]] == [("tokens", 90)]
    assert [(t.column, t.num_classes) for t in rep.TRACKS["drums"]] == [("tokens", 512)]


def test_drum_classes_are_magentas_mapping():
    magenta_classes = [list(c) for c in drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES]
    assert magenta_classes == rep.DRUM_PITCH_CLASSES
    for drum_class, pitches in enumerate(rep.DRUM_PITCH_CLASSES):
        assert all(rep.DRUM_PITCH_TO_CLASS[p] == drum_class for p in pitches)
    assert (rep.DRUM_PITCH_TO_CLASS >= 0).sum() == sum(map(len, rep.DRUM_PITCH_CLASSES))
    # Same bit per class as note_seq's MultiDrumOneHotEncoding.
    encoding = drums_encoder_decoder.MultiDrumOneHotEncoding()
    hits = [(36,), (38, 42), (46, 45, 48, 50), (49, 51), ()]
    for hit in hits:
        ours = rep.drum_tokens_from_hits(
            np.zeros(len(hit), int), rep.DRUM_PITCH_TO_CLASS[list(hit)], 1
        )
        assert ours[0] == encoding.encode_event(frozenset(hit))


def test_pitch_tokens():
    assert rep.melody_pitch_token(21) == 2 and rep.melody_pitch_token(108) == 89
    assert rep.melody_token_pitch(2) == 21 and rep.melody_token_pitch(89) == 108
    for bad_token in (0, 1, 90):
        with pytest.raises(ValueError, match="not a note-on"):
            rep.melody_token_pitch(bad_token)
    with pytest.raises(ValueError, match="outside the melody range"):
        rep.melody_pitch_token(20)


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "kind", "message"),
    [
        ([0, 90], "melody", r"token 90 at step 1 is outside 0\.\.89"),
        ([-1], "melody", "token -1 at step 0"),
        ([512], "drums", r"outside 0\.\.511"),
        ({"melody": [0], "bass": [0]}, "trio", r"missing \['drums'\]"),
        ({"melody": [0], "bass": [0, 0], "drums": [0]}, "trio", "equal length"),
        (np.zeros((4, 2), int), "trio", r"\[T, 3\]"),
        ([0.5, 2.0], "melody", "non-integer"),
        ([0], "piano", "unknown kind"),
    ],
)
def test_bad_tokens_raise_a_clear_error(tokens, kind, message):
    with pytest.raises(ValueError, match=message):
        rep.tokens_to_notesequence(tokens, kind)


def test_trio_programs_must_stay_in_their_ranges():
    tokens = {"melody": [30], "bass": [30], "drums": [1]}
    with pytest.raises(ValueError, match="bass program must be in 32..39"):
        rep.tokens_to_notesequence(tokens, "trio", programs={"bass": 0})
    ns = rep.tokens_to_notesequence(tokens, "trio", programs={"melody": 24, "bass": 34})
    assert sorted((n.program, n.is_drum) for n in ns.notes) == [(0, True), (24, False), (34, False)]


def test_array_layouts_are_equivalent():
    stacked = np.array([[40, 35, 1], [0, 1, 0], [1, 0, 3]])
    from_array = rep.as_tracks(stacked, "trio")
    from_dict = rep.as_tracks(
        {"melody": [40, 0, 1], "bass": [35, 1, 0], "drums": [1, 0, 3]}, "trio"
    )
    assert_same_tracks(from_array, from_dict)


# --- decoding and the canonical form ---------------------------------------------------------


def test_melody_decoding_by_hand():
    # step: 0   1  2   3  4  5   6   7  8  9  10 11 12
    tokens = [1, 0, 41, 0, 1, 41, 43, 0, 1, 1, 0, 0, 89]
    assert rep.melody_notes(tokens) == [(60, 2, 4), (60, 5, 6), (62, 6, 8), (108, 12, 13)]
    # The note-offs at steps 0 and 9 end nothing: the canonical form drops them.
    np.testing.assert_array_equal(
        rep.canonical_melody(tokens), [0, 0, 41, 0, 1, 41, 43, 0, 1, 0, 0, 0, 89]
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 5), min_size=12, max_size=12), min_size=1, max_size=6))
def test_canonical_melody_of_a_batch_is_canonical_melody_of_each_row(rows):
    # Tokens 0..5 only, so note-offs, no-events and notes meet often.
    batch = np.array(rows, dtype=np.int16).reshape(len(rows), 1, 12)
    canonical = rep.canonical_melody(batch)
    assert canonical.shape == batch.shape and canonical.dtype == np.int16
    for row, got in zip(batch[:, 0], canonical[:, 0], strict=True):
        # Reference by hand: a note-off survives only when the latest event before it is a note.
        want, latest = [], rep.MELODY_NO_EVENT
        for token in row.tolist():
            orphan = token == rep.MELODY_NOTE_OFF and latest < rep.MELODY_FIRST_PITCH_TOKEN
            want.append(rep.MELODY_NO_EVENT if orphan else token)
            latest = token if token != rep.MELODY_NO_EVENT else latest
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(rep.canonical_melody(row), want)


def test_canonical_melody_rejects_tokens_outside_the_vocabulary():
    # The same check as every token stream's (as_tracks), with the stream of a batch named.
    with pytest.raises(ValueError, match=r"token 90 at step 1 of stream \(0,\) is outside 0\.\.89"):
        rep.canonical_melody(np.array([[0, 90]]))
    with pytest.raises(ValueError, match="non-integer"):
        rep.canonical_melody(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="scalar"):
        rep.canonical_melody(np.array(3))


def test_drum_hits_and_piano_roll():
    tokens = [0, 1 | 4, 0, 511]
    hits = rep.drum_hits(tokens)
    assert hits[:2] == [(1, 0), (1, 2)] and len(hits) == 2 + 9
    roll = rep.piano_roll(tokens, "drums")["tokens"]
    assert roll.shape == (4, 128)
    assert np.flatnonzero(roll[1]).tolist() == [36, 42]
    assert roll[3].sum() == 9 and not roll[0].any()
    melody_roll = rep.piano_roll([41, 0, 1, 43], "melody")["tokens"]
    assert np.flatnonzero(melody_roll[:, 60]).tolist() == [0, 1]
    assert np.flatnonzero(melody_roll[:, 62]).tolist() == [3]


def test_monophonic_reduction_keeps_highest_onset_and_cuts_held_notes():
    # A chord at step 0 (the top note wins), a long note at 4 cut by an onset at 6,
    # and a note at 10 ending at 12.
    starts = [0, 0, 0, 4, 6, 10]
    ends = [4, 4, 2, 16, 8, 12]
    pitches = [60, 67, 64, 50, 52, 55]
    tokens = rep.melody_tokens_from_notes(starts, ends, pitches, 16)
    expected = np.zeros(16, int)
    expected[[0, 4, 6, 10]] = [67 - 19, 50 - 19, 52 - 19, 55 - 19]
    expected[[8, 12]] = rep.MELODY_NOTE_OFF
    np.testing.assert_array_equal(tokens, expected)


def test_melody_encoding_matches_note_seq_melody():
    """Our encoder and note_seq's Melody agree on a monophonic line with rests and overlaps."""
    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=120)
    for pitch, start, end in [(60, 0, 2), (62, 1, 3), (64, 4, 5), (65, 9, 12), (67, 12, 14)]:
        ns.notes.add(pitch=pitch, start_time=start * 0.125, end_time=end * 0.125, velocity=90)
    ns.total_time = 14 * 0.125
    quantized = sequences_lib.quantize_note_sequence(ns, 4)
    melody = melodies_lib.Melody()
    melody.from_quantized_sequence(quantized, gap_bars=4, ignore_polyphonic_notes=True)
    # note_seq: pitches as is, -1 note-off, -2 no event; it drops the final note-off.
    theirs = [{-2: 0, -1: 1}.get(e, e - 19) for e in melody]
    ours = rep.notesequence_to_tokens(ns, "melody", num_steps=len(theirs))["tokens"]
    np.testing.assert_array_equal(ours, theirs)


# --- round trips (hypothesis) ----------------------------------------------------------------

ROUND_TRIP = settings(max_examples=150, deadline=None)
MIDI_ROUND_TRIP = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@ROUND_TRIP
@given(melody_tokens)
def test_melody_notesequence_round_trip_is_canonicalisation(tokens):
    expected = canonical(tokens, "melody")
    ns = rep.tokens_to_notesequence(tokens, "melody")
    assert_same_tracks(rep.notesequence_to_tokens(ns, "melody", len(tokens)), expected)
    # ... hence the identity on canonical sequences, and the canonical form is idempotent.
    again = rep.tokens_to_notesequence(expected["tokens"], "melody")
    assert_same_tracks(rep.notesequence_to_tokens(again, "melody", len(tokens)), expected)
    np.testing.assert_array_equal(rep.canonical_melody(expected["tokens"]), expected["tokens"])
    assert rep.melody_notes(tokens) == rep.melody_notes(expected["tokens"])


@ROUND_TRIP
@given(drum_tokens)
def test_drums_notesequence_round_trip_is_identity(tokens):
    ns = rep.tokens_to_notesequence(tokens, "drums")
    assert all(n.is_drum for n in ns.notes)
    np.testing.assert_array_equal(
        rep.notesequence_to_tokens(ns, "drums", len(tokens))["tokens"], tokens
    )


@ROUND_TRIP
@given(trio_tokens())
def test_trio_notesequence_round_trip_is_canonicalisation(tokens):
    num_steps = len(tokens["drums"])
    ns = rep.tokens_to_notesequence(tokens, "trio")
    assert_same_tracks(rep.notesequence_to_tokens(ns, "trio", num_steps), canonical(tokens, "trio"))


@MIDI_ROUND_TRIP
@given(melody_tokens, qpms)
def test_melody_midi_round_trip(tokens, qpm):
    data = rep.tokens_to_midi_bytes(tokens, "melody", qpm=qpm)
    assert data[:4] == b"MThd"
    decoded = rep.midi_bytes_to_tokens(data, "melody", num_steps=len(tokens))
    assert_same_tracks(decoded, canonical(tokens, "melody"))


@MIDI_ROUND_TRIP
@given(drum_tokens, qpms)
def test_drums_midi_round_trip(tokens, qpm):
    decoded = rep.midi_bytes_to_tokens(
        rep.tokens_to_midi_bytes(tokens, "drums", qpm=qpm), "drums", len(tokens)
    )
    np.testing.assert_array_equal(decoded["tokens"], tokens)


@MIDI_ROUND_TRIP
@given(trio_tokens(), qpms)
def test_trio_midi_round_trip(tokens, qpm):
    num_steps = len(tokens["melody"])
    data = rep.tokens_to_midi_bytes(tokens, "trio", qpm=qpm)
    assert_same_tracks(rep.midi_bytes_to_tokens(data, "trio", num_steps), canonical(tokens, "trio"))


# --- encoding arbitrary NoteSequences --------------------------------------------------------


def _sequence(notes, qpm=120.0):
    """An unquantized NoteSequence from (pitch, start_step, end_step, program, is_drum)."""
    ns = music_pb2.NoteSequence()
    ns.tempos.add(qpm=qpm)
    seconds = 60.0 / qpm / 4
    for pitch, start, end, program, is_drum in notes:
        ns.notes.add(
            pitch=pitch,
            start_time=start * seconds,
            end_time=end * seconds,
            velocity=100,
            program=program,
            is_drum=is_drum,
            instrument=9 if is_drum else program,
        )
    ns.total_time = max(n.end_time for n in ns.notes)
    return ns


def test_unrepresentable_notes_raise_unless_dropped():
    ns = _sequence([(60, 0, 4, 0, False), (110, 4, 8, 0, False)])
    with pytest.raises(ValueError, match=r"1 note\(s\) cannot be encoded as melody: pitches"):
        rep.notesequence_to_tokens(ns, "melody")
    tokens = rep.notesequence_to_tokens(ns, "melody", strict=False)["tokens"]
    assert rep.melody_notes(tokens) == [(60, 0, 4)]
    assert len(tokens) == 16  # one whole bar by default

    drums = _sequence([(36, 0, 1, 0, True), (20, 2, 3, 0, True)])
    with pytest.raises(ValueError, match="drum pitches outside the 9 classes"):
        rep.notesequence_to_tokens(drums, "drums")
    assert rep.drum_hits(rep.notesequence_to_tokens(drums, "drums", strict=False)["tokens"]) == [
        (0, 0)
    ]

    strings = _sequence([(60, 0, 4, 48, False)])
    with pytest.raises(ValueError, match="programs outside 0-39"):
        rep.notesequence_to_tokens(strings, "trio")


def test_trio_streams_are_chosen_by_program():
    ns = _sequence([(72, 0, 4, 0, False), (40, 0, 8, 33, False), (38, 4, 5, 0, True)])
    tokens = rep.notesequence_to_tokens(ns, "trio", num_steps=8)
    assert rep.melody_notes(tokens["melody"]) == [(72, 0, 4)]
    assert rep.melody_notes(tokens["bass"]) == [(40, 0, 8)]
    assert rep.drum_hits(tokens["drums"]) == [(4, 1)]


def test_tempo_changes_cannot_be_encoded_directly():
    ns = _sequence([(60, 0, 4, 0, False), (62, 8, 12, 0, False)])
    ns.tempos.add(time=0.75, qpm=90)
    with pytest.raises(ValueError, match="cannot quantize.*MultipleTempoError"):
        rep.notesequence_to_tokens(ns, "melody")


def test_garbage_midi_raises_value_error():
    with pytest.raises(ValueError, match="not a readable MIDI file"):
        rep.midi_bytes_to_tokens(b"not a midi file", "melody")
