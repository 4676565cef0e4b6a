"""The token representation of music: the single source for pipelines, training and evaluation.

Time is a grid of 16th notes: 4 steps per quarter, 16 steps per bar. A piece is one or more token
streams ("tracks") of equal length, one token per step; `TRACKS[kind]` names them in order.

Melody stream (90 classes, magenta's OneHotMelodyConverter):
    0 = no event: the previous note is held, or the rest goes on;
    1 = note-off: the sounding note ends at this step;
    2..89 = note-on of MIDI pitch 21..108 (token = pitch - 19); it ends the previous note.
  A note lasts from its note-on to the next non-zero token (or to the end of the stream).

  Canonical form. Decoding ignores a note-off that has no note to end (at the start of the
  stream, or after another note-off with only no-events between them), so two token sequences
  can decode to the same notes. The canonical sequence writes such a note-off as a no-event; in
  other words, in canonical form the first non-zero token before every note-off is a note-on.
  `canonical_melody` maps any sequence to its canonical form, encoding always produces canonical
  tokens, and tokens -> NoteSequence -> tokens (or -> MIDI -> tokens) is the identity exactly on
  canonical sequences (tests/test_representation.py checks this with hypothesis).

Drum stream (512 classes, magenta's MultiDrumOneHotEncoding): 9 drum classes (kick, snare,
  closed hi-hat, open hi-hat, low/mid/high tom, crash, ride), each a set of General MIDI drum
  pitches; the token of a step is the bitmask of the classes hit there (bit i = class i), so
  0 = silence. A hit is decoded as a one-step note of its class's first pitch. Every token
  sequence is canonical.

Trio: a melody stream (programs 0-31), a bass stream (programs 32-39, same 90 classes) and a drum
  stream.

Monophonic reduction (how notes become melody tokens, as magenta's Melody does it): at every step
the melody is the note with the latest onset at or before that step (the highest pitch when
several start together), while that note lasts; a later onset cuts the previous note short.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import note_seq
import numpy as np
from note_seq import midi_io, sequences_lib
from note_seq.protobuf import music_pb2

STEPS_PER_QUARTER = 4
QUARTERS_PER_BAR = 4
STEPS_PER_BAR = STEPS_PER_QUARTER * QUARTERS_PER_BAR

MELODY_NO_EVENT = 0
MELODY_NOTE_OFF = 1
MELODY_MIN_PITCH = 21
MELODY_MAX_PITCH = 108
MELODY_FIRST_PITCH_TOKEN = 2
MELODY_CLASSES = MELODY_FIRST_PITCH_TOKEN + MELODY_MAX_PITCH - MELODY_MIN_PITCH + 1  # 90
_PITCH_OFFSET = MELODY_MIN_PITCH - MELODY_FIRST_PITCH_TOKEN  # token = pitch - 19

# magenta's 9 drum classes (note_seq.drums_encoder_decoder.DEFAULT_DRUM_TYPE_PITCHES); the first
# pitch of each class is the one a decoded hit plays.
DRUM_CLASS_NAMES = (
    "kick",
    "snare",
    "closed_hihat",
    "open_hihat",
    "low_tom",
    "mid_tom",
    "high_tom",
    "crash",
    "ride",
)
DRUM_PITCH_CLASSES: list[list[int]] = [
    [36, 35],
    [38, 27, 28, 31, 32, 33, 34, 37, 39, 40, 56, 65, 66, 75, 85],
    [42, 44, 54, 68, 69, 70, 71, 73, 78, 80, 22],
    [46, 67, 72, 74, 79, 81, 26],
    [45, 29, 41, 43, 61, 64, 84],
    [48, 47, 60, 63, 77, 86, 87],
    [50, 30, 62, 76, 83],
    [49, 52, 55, 57, 58],
    [51, 53, 59, 82],
]
NUM_DRUM_CLASSES = len(DRUM_PITCH_CLASSES)
DRUM_CLASSES = 2**NUM_DRUM_CLASSES  # 512
DRUM_CLASS_EXEMPLARS = np.array([pitches[0] for pitches in DRUM_PITCH_CLASSES], dtype=np.int64)
# MIDI pitch -> drum class, -1 for pitches outside every class.
DRUM_PITCH_TO_CLASS = np.full(128, -1, dtype=np.int64)
for _class_index, _pitches in enumerate(DRUM_PITCH_CLASSES):
    DRUM_PITCH_TO_CLASS[_pitches] = _class_index

# Programs that make a trio's melody and bass (magenta's MEL_PROGRAMS and BASS_PROGRAMS).
MELODY_PROGRAMS = range(0, 32)
BASS_PROGRAMS = range(32, 40)

DEFAULT_QPM = 120.0
OUTPUT_VELOCITY = 80  # magenta's velocity for decoded notes
DRUM_INSTRUMENT = 9  # instrument number of decoded drums (channel 10 in General MIDI)


@dataclass(frozen=True)
class TrackSpec:
    """One token stream of a dataset kind: its Parquet column, vocabulary size and type."""

    column: str
    num_classes: int
    track_type: str  # "melody" or "drums"


TRACKS: dict[str, list[TrackSpec]] = {
    "melody": [TrackSpec("tokens", MELODY_CLASSES, "melody")],
    "drums": [TrackSpec("tokens", DRUM_CLASSES, "drums")],
    "trio": [
        TrackSpec("melody", MELODY_CLASSES, "melody"),
        TrackSpec("bass", MELODY_CLASSES, "melody"),
        TrackSpec("drums", DRUM_CLASSES, "drums"),
    ],
}

# Program of each decoded melody-type stream (by column); drums play on DRUM_INSTRUMENT.
DEFAULT_PROGRAMS: dict[str, dict[str, int]] = {
    "melody": {"tokens": 0},
    "drums": {},
    "trio": {"melody": 0, "bass": 33},  # 33 = electric bass (finger), as magenta decodes trios
}
_TRIO_INSTRUMENTS = {"melody": 0, "bass": 1}

Tracks = Mapping[str, Sequence[int]] | Sequence[int] | np.ndarray


# ---------------------------------------------------------------------------------------------
# Tokens: validation and small helpers


def check_kind(kind: str) -> list[TrackSpec]:
    """The track specs of `kind`; a ValueError names the known kinds otherwise."""
    if kind not in TRACKS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(TRACKS)}")
    return TRACKS[kind]


def as_tracks(tokens: Tracks, kind: str) -> dict[str, np.ndarray]:
    """Validate tokens of `kind` and return them as {column: int64 array [T]}.

    Accepts a mapping column -> sequence, a 1-D sequence (kinds with one track) or a 2-D array
    [T, K] whose columns follow `TRACKS[kind]`. Raises ValueError on a missing or unknown column,
    streams of different lengths, non-integer values or tokens outside [0, num_classes).
    """
    specs = check_kind(kind)
    columns = [spec.column for spec in specs]
    if isinstance(tokens, Mapping):
        missing = [c for c in columns if c not in tokens]
        extra = [c for c in tokens if c not in columns]
        if missing or extra:
            raise ValueError(
                f"{kind} tokens need columns {columns}; missing {missing}, unexpected {extra}"
            )
        arrays = {c: np.asarray(tokens[c]) for c in columns}
    else:
        array = np.asarray(tokens)
        if array.ndim == 1 and len(specs) == 1:
            arrays = {columns[0]: array}
        elif array.ndim == 2 and array.shape[1] == len(specs):
            arrays = {c: array[:, i] for i, c in enumerate(columns)}
        else:
            raise ValueError(
                f"{kind} tokens must be a mapping {columns} -> [T], or an array [T, {len(specs)}]"
                + (" or [T]" if len(specs) == 1 else "")
                + f"; got shape {array.shape}"
            )
    lengths = {c: a.shape for c, a in arrays.items()}
    if any(a.ndim != 1 for a in arrays.values()) or len(set(lengths.values())) > 1:
        raise ValueError(f"{kind} token streams must be 1-D and of equal length; got {lengths}")
    return {spec.column: _checked_stream(arrays[spec.column], kind, spec) for spec in specs}


def _checked_stream(array: np.ndarray, kind: str, spec: TrackSpec) -> np.ndarray:
    """One track's tokens, of any shape with time last, as int64; ValueError on a non-integer
    token or one outside [0, num_classes)."""
    if array.size and array.dtype.kind not in "iu":
        integral = array.dtype.kind == "f" and bool(np.all(np.mod(array, 1) == 0))
        if not integral:
            raise ValueError(
                f"{kind} track {spec.column!r} holds non-integer tokens ({array.dtype})"
            )
    array = array.astype(np.int64)
    bad = (array < 0) | (array >= spec.num_classes)
    if bad.any():
        where = np.unravel_index(np.flatnonzero(bad)[0], array.shape)
        stream = f" of stream {tuple(int(i) for i in where[:-1])}" if array.ndim > 1 else ""
        raise ValueError(
            f"{kind} track {spec.column!r}: token {int(array[where])} at step {int(where[-1])}"
            f"{stream} is outside 0..{spec.num_classes - 1}"
        )
    return array


def melody_token_pitch(token: int) -> int:
    """MIDI pitch of a melody note-on token (2..89 -> 21..108)."""
    if not MELODY_FIRST_PITCH_TOKEN <= token < MELODY_CLASSES:
        raise ValueError(f"melody token {token} is not a note-on (2..{MELODY_CLASSES - 1})")
    return int(token) + _PITCH_OFFSET


def melody_pitch_token(pitch: int) -> int:
    """Note-on token of a MIDI pitch in 21..108."""
    if not MELODY_MIN_PITCH <= pitch <= MELODY_MAX_PITCH:
        raise ValueError(f"pitch {pitch} is outside the melody range 21..108")
    return int(pitch) - _PITCH_OFFSET


def canonical_melody(tokens: Sequence[int] | np.ndarray) -> np.ndarray:
    """The canonical form of melody tokens: note-offs with no note to end become no-events.

    Takes one stream [T] or a batch of streams [..., T] (time on the last axis)."""
    given = np.asarray(tokens)
    if given.ndim == 0:
        raise ValueError("melody tokens must be [T] or [..., T]; got a scalar")
    tokens = _checked_stream(given, "melody", TRACKS["melody"][0])
    # One stream comes back as int64 (as from as_tracks); a batch keeps its integer dtype.
    dtype = given.dtype if given.ndim > 1 else tokens.dtype
    steps = np.arange(tokens.shape[-1])
    # Index of the latest event at or before each step (-1: none yet), then of the one before it.
    latest = np.maximum.accumulate(np.where(tokens != MELODY_NO_EVENT, steps, -1), axis=-1)
    previous = np.concatenate([np.full_like(latest[..., :1], -1), latest[..., :-1]], axis=-1)
    previous_token = np.take_along_axis(tokens, np.maximum(previous, 0), axis=-1)
    previous_is_note = (previous >= 0) & (previous_token >= MELODY_FIRST_PITCH_TOKEN)
    orphan_offs = (tokens == MELODY_NOTE_OFF) & ~previous_is_note
    return np.where(orphan_offs, MELODY_NO_EVENT, tokens).astype(dtype, copy=False)


def melody_notes(tokens: Sequence[int]) -> list[tuple[int, int, int]]:
    """Notes of a melody stream as (pitch, start_step, end_step), end exclusive."""
    pitches, starts, ends = _melody_note_arrays(as_tracks(tokens, "melody")["tokens"])
    return list(zip(pitches.tolist(), starts.tolist(), ends.tolist(), strict=True))


def drum_hits(tokens: Sequence[int]) -> list[tuple[int, int]]:
    """Hits of a drum stream as (step, drum_class), in time then class order."""
    steps, classes = _drum_hit_arrays(as_tracks(tokens, "drums")["tokens"])
    return list(zip(steps.tolist(), classes.tolist(), strict=True))


def piano_roll(tokens: Tracks, kind: str) -> dict[str, np.ndarray]:
    """One bool array [T, 128] per track: True where a pitch sounds (drums: their exemplar pitch,
    for the one step of the hit). For plots."""
    tracks = as_tracks(tokens, kind)
    rolls = {}
    for spec in TRACKS[kind]:
        stream = tracks[spec.column]
        roll = np.zeros((len(stream), 128), dtype=bool)
        if spec.track_type == "melody":
            pitches, starts, ends = _melody_note_arrays(stream)
            for pitch, start, end in zip(pitches, starts, ends, strict=True):
                roll[start:end, pitch] = True
        else:
            steps, classes = _drum_hit_arrays(stream)
            roll[steps, DRUM_CLASS_EXEMPLARS[classes]] = True
        rolls[spec.column] = roll
    return rolls


# ---------------------------------------------------------------------------------------------
# Notes (numpy arrays) <-> tokens: the encoders the extraction pipeline shares


def monophonic_notes(
    starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes a melody keeps, one per onset step, in time order: (starts, ends, pitches).

    Of the notes starting on the same step the highest pitch is kept (ties on pitch: the first
    given, as magenta's stable sort does); its end is its own, before a later onset cuts it.
    Notes last at least one step.
    """
    starts, ends, pitches = (np.asarray(a, dtype=np.int64) for a in (starts, ends, pitches))
    ends = np.maximum(ends, starts + 1)
    order = np.lexsort((-pitches, starts))  # stable: equal keys keep their order
    starts, ends, pitches = starts[order], ends[order], pitches[order]
    first_of_onset = np.ones(len(starts), dtype=bool)
    first_of_onset[1:] = starts[1:] != starts[:-1]
    return starts[first_of_onset], ends[first_of_onset], pitches[first_of_onset]


def melody_tokens_from_notes(
    starts: np.ndarray, ends: np.ndarray, pitches: np.ndarray, num_steps: int
) -> np.ndarray:
    """Melody tokens [num_steps] (int16) of notes given as quantized steps, by the monophonic
    reduction of the module docstring. Pitches must be in 21..108 (callers filter or reject);
    notes starting before 0 or at or after `num_steps` are left out."""
    starts, ends, pitches = (np.asarray(a, dtype=np.int64) for a in (starts, ends, pitches))
    if pitches.size and (pitches.min() < MELODY_MIN_PITCH or pitches.max() > MELODY_MAX_PITCH):
        raise ValueError("melody pitches must be in 21..108")
    inside = (starts >= 0) & (starts < num_steps)
    starts, ends, pitches = monophonic_notes(starts[inside], ends[inside], pitches[inside])
    tokens = np.zeros(num_steps, dtype=np.int16)
    # A note-off goes where a note ends before the next onset and inside the stream.
    ends_early = ends < np.r_[starts[1:], num_steps]
    tokens[ends[ends_early]] = MELODY_NOTE_OFF
    tokens[starts] = pitches - _PITCH_OFFSET
    return tokens


def drum_tokens_from_hits(starts: np.ndarray, classes: np.ndarray, num_steps: int) -> np.ndarray:
    """Drum tokens [num_steps] (int16): the bitmask of the classes hit at each step."""
    starts, classes = np.asarray(starts, dtype=np.int64), np.asarray(classes, dtype=np.int64)
    inside = (starts >= 0) & (starts < num_steps)
    tokens = np.zeros(num_steps, dtype=np.int64)
    np.bitwise_or.at(tokens, starts[inside], np.left_shift(1, classes[inside]))
    return tokens.astype(np.int16)


def _melody_note_arrays(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitches, starts, ends) of validated melody tokens."""
    events = np.flatnonzero(tokens)
    next_events = np.r_[events[1:], len(tokens)]
    is_note = tokens[events] >= MELODY_FIRST_PITCH_TOKEN
    return tokens[events[is_note]] + _PITCH_OFFSET, events[is_note], next_events[is_note]


def _drum_hit_arrays(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(steps, classes) of validated drum tokens, in step then class order."""
    bits = (tokens[:, None] >> np.arange(NUM_DRUM_CLASSES)) & 1
    steps, classes = np.nonzero(bits)
    return steps, classes


# ---------------------------------------------------------------------------------------------
# Tokens <-> NoteSequence <-> MIDI


def tokens_to_notesequence(
    tokens: Tracks,
    kind: str,
    qpm: float = DEFAULT_QPM,
    programs: Mapping[str, int] | None = None,
    velocity: int = OUTPUT_VELOCITY,
) -> music_pb2.NoteSequence:
    """Decode tokens of `kind` into an (unquantized) NoteSequence in 4/4 at `qpm`.

    `programs` overrides the MIDI program of melody-type tracks by column (defaults:
    `DEFAULT_PROGRAMS[kind]`); a trio's melody program must stay in 0-31 and its bass in 32-39
    so that the sequence encodes back to the same streams. Drums go to instrument 9 as drums.
    The sequence's total_time spans every step, trailing silence included.
    """
    tracks = as_tracks(tokens, kind)
    if not qpm > 0:
        raise ValueError(f"qpm must be positive, got {qpm}")
    chosen_programs = dict(DEFAULT_PROGRAMS[kind])
    for column, program in (programs or {}).items():
        if column not in chosen_programs:
            raise ValueError(f"{kind} has no melody-type track {column!r} to give a program")
        if not 0 <= program <= 127:
            raise ValueError(f"MIDI program must be in 0..127, got {program}")
        chosen_programs[column] = int(program)
    if kind == "trio":
        for column, allowed in (("melody", MELODY_PROGRAMS), ("bass", BASS_PROGRAMS)):
            if chosen_programs[column] not in allowed:
                raise ValueError(
                    f"trio {column} program must be in {allowed.start}..{allowed.stop - 1}, "
                    f"got {chosen_programs[column]}"
                )

    seconds_per_step = 60.0 / qpm / STEPS_PER_QUARTER
    num_steps = len(next(iter(tracks.values())))
    ns = music_pb2.NoteSequence()
    ns.ticks_per_quarter = note_seq.constants.STANDARD_PPQ
    ns.tempos.add(time=0.0, qpm=qpm)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    for spec in TRACKS[kind]:
        stream = tracks[spec.column]
        if spec.track_type == "melody":
            instrument = _TRIO_INSTRUMENTS[spec.column] if kind == "trio" else 0
            pitches, starts, ends = _melody_note_arrays(stream)
            for pitch, start, end in zip(pitches, starts, ends, strict=True):
                ns.notes.add(
                    pitch=int(pitch),
                    velocity=velocity,
                    start_time=float(start) * seconds_per_step,
                    end_time=float(end) * seconds_per_step,
                    instrument=instrument,
                    program=chosen_programs[spec.column],
                )
        else:
            steps, classes = _drum_hit_arrays(stream)
            for step, drum_class in zip(steps, classes, strict=True):
                ns.notes.add(
                    pitch=int(DRUM_CLASS_EXEMPLARS[drum_class]),
                    velocity=velocity,
                    start_time=float(step) * seconds_per_step,
                    end_time=float(step + 1) * seconds_per_step,
                    instrument=DRUM_INSTRUMENT,
                    is_drum=True,
                )
    ns.total_time = num_steps * seconds_per_step
    return ns


@dataclass
class NoteArrays:
    """The notes of a quantized NoteSequence as parallel numpy arrays (one entry per note)."""

    start: np.ndarray
    end: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    program: np.ndarray
    instrument: np.ndarray
    is_drum: np.ndarray

    @classmethod
    def from_quantized(cls, ns: music_pb2.NoteSequence) -> NoteArrays:
        """Read the notes of a relative-quantized NoteSequence (one pass over the notes)."""
        fields = np.array(
            [
                (
                    n.quantized_start_step,
                    n.quantized_end_step,
                    n.pitch,
                    n.velocity,
                    n.program,
                    n.instrument,
                    n.is_drum,
                )
                for n in ns.notes
            ],
            dtype=np.int64,
        ).reshape(-1, 7)
        return cls(*(fields[:, i] for i in range(7)))

    def __len__(self) -> int:
        return len(self.start)

    def select(self, mask: np.ndarray) -> NoteArrays:
        """The notes where `mask` is True."""
        return NoteArrays(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))


def quantize(ns: music_pb2.NoteSequence) -> music_pb2.NoteSequence:
    """`ns` quantized at 4 steps per quarter (returned as is when it already is).

    Raises ValueError when it cannot be: tempo or time-signature changes (split the sequence
    first), a bad time signature, negative times, or another grid.
    """
    if sequences_lib.is_relative_quantized_sequence(ns):
        if ns.quantization_info.steps_per_quarter != STEPS_PER_QUARTER:
            raise ValueError(
                f"sequence is quantized at {ns.quantization_info.steps_per_quarter} steps per "
                f"quarter; the representation uses {STEPS_PER_QUARTER}"
            )
        return ns
    if sequences_lib.is_quantized_sequence(ns):
        raise ValueError("sequence is quantized in absolute time; need tempo-relative steps")
    try:
        return sequences_lib.quantize_note_sequence(ns, STEPS_PER_QUARTER)
    except (
        sequences_lib.MultipleTempoError,
        sequences_lib.MultipleTimeSignatureError,
        sequences_lib.BadTimeSignatureError,
        sequences_lib.NegativeTimeError,
    ) as error:
        raise ValueError(
            f"cannot quantize the sequence: {type(error).__name__}: {error}"
        ) from error


def notesequence_to_tokens(
    ns: music_pb2.NoteSequence, kind: str, num_steps: int | None = None, strict: bool = True
) -> dict[str, np.ndarray]:
    """Encode a NoteSequence as tokens of `kind`: {column: int16 array [num_steps]}.

    Unquantized sequences are quantized at 4 steps per quarter (one tempo and one time signature
    only). Melody kind: every non-drum note, reduced to one voice. Trio: non-drum notes of
    programs 0-31 make the melody, 32-39 the bass, drum notes the drums. Notes starting at or
    after `num_steps` are cut off; by default `num_steps` covers the last note, rounded up to
    whole bars. With `strict` (the default) notes the kind cannot represent (pitches outside
    21..108, drum pitches of no class, trio programs outside 0-39) raise ValueError; otherwise
    they are dropped.
    """
    check_kind(kind)
    notes = NoteArrays.from_quantized(quantize(ns))
    notes = notes.select(notes.velocity > 0)
    if num_steps is None:
        last_end = int(notes.end.max()) if len(notes) else 0
        num_steps = max(1, -(-last_end // STEPS_PER_BAR)) * STEPS_PER_BAR
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")

    def keep(mask: np.ndarray, what: str) -> np.ndarray:
        if strict and mask.sum() < len(mask):
            raise ValueError(
                f"{len(mask) - int(mask.sum())} note(s) cannot be encoded as {kind}: {what} "
                "(pass strict=False to drop them)"
            )
        return mask

    if kind == "melody":
        pitched = notes.select(notes.is_drum == 0)
        streams = {"tokens": pitched}
    elif kind == "drums":
        streams = {"tokens": notes.select(notes.is_drum == 1)}
    else:
        pitched = notes.is_drum == 0
        is_melody = pitched & (notes.program < MELODY_PROGRAMS.stop)
        is_bass = (
            pitched & (notes.program >= BASS_PROGRAMS.start) & (notes.program < BASS_PROGRAMS.stop)
        )
        keep(is_melody | is_bass | (notes.is_drum == 1), "programs outside 0-39")
        streams = {
            "melody": notes.select(is_melody),
            "bass": notes.select(is_bass),
            "drums": notes.select(notes.is_drum == 1),
        }

    tokens = {}
    for spec in TRACKS[kind]:
        stream = streams[spec.column]
        if spec.track_type == "melody":
            in_range = (stream.pitch >= MELODY_MIN_PITCH) & (stream.pitch <= MELODY_MAX_PITCH)
            stream = stream.select(keep(in_range, "pitches outside 21..108"))
            tokens[spec.column] = melody_tokens_from_notes(
                stream.start, stream.end, stream.pitch, num_steps
            )
        else:
            classes = DRUM_PITCH_TO_CLASS[np.clip(stream.pitch, 0, 127)]
            mapped = keep(classes >= 0, "drum pitches outside the 9 classes")
            tokens[spec.column] = drum_tokens_from_hits(
                stream.start[mapped], classes[mapped], num_steps
            )
    return tokens


def notesequence_to_midi_bytes(ns: music_pb2.NoteSequence) -> bytes:
    """A NoteSequence written as a standard MIDI file."""
    buffer = io.BytesIO()
    midi_io.note_sequence_to_pretty_midi(ns).write(buffer)
    return buffer.getvalue()


def midi_bytes_to_notesequence(data: bytes) -> music_pb2.NoteSequence:
    """Parse MIDI file bytes; ValueError when they are not a readable MIDI file."""
    try:
        return midi_io.midi_to_note_sequence(data)
    except midi_io.MIDIConversionError as error:
        raise ValueError(f"not a readable MIDI file: {error}") from error


def tokens_to_midi_bytes(
    tokens: Tracks,
    kind: str,
    qpm: float = DEFAULT_QPM,
    programs: Mapping[str, int] | None = None,
    velocity: int = OUTPUT_VELOCITY,
) -> bytes:
    """Tokens of `kind` as a MIDI file (see `tokens_to_notesequence`)."""
    return notesequence_to_midi_bytes(
        tokens_to_notesequence(tokens, kind, qpm=qpm, programs=programs, velocity=velocity)
    )


def midi_bytes_to_tokens(
    data: bytes, kind: str, num_steps: int | None = None, strict: bool = True
) -> dict[str, np.ndarray]:
    """Tokens of `kind` from MIDI file bytes (see `notesequence_to_tokens`). MIDI keeps no
    trailing silence: pass `num_steps` to get a stream of a given length back."""
    return notesequence_to_tokens(midi_bytes_to_notesequence(data), kind, num_steps, strict)
