"""Write a `PlayedTune` as a Standard MIDI File, byte for byte the same on every machine.

A format-1 file: track 0 holds the meter and the tempo, then one track per ABC voice. Events at
one tick are ordered note-offs first, then by pitch. Nothing depends on the clock, the platform
or dict order.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pipelines.corpus.abc_played import TICKS_PER_QUARTER, PlayedTune

VELOCITY = 90  # music21's default loudness
_DRUM_CHANNEL = 9


def _variable_length(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, bytes]]) -> bytes:
    """An MTrk chunk from (absolute tick, message) pairs already in order."""
    body = bytearray()
    now = 0
    for tick, message in events:
        body += _variable_length(tick - now) + message
        now = tick
    body += _variable_length(0) + b"\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _conductor_track(meter: tuple[int, int], qpm: float) -> bytes:
    numerator, denominator = meter
    time_signature = bytes([0xFF, 0x58, 4, numerator, denominator.bit_length() - 1, 24, 8])
    microseconds = min(max(round(60_000_000 / qpm), 1), 0xFFFFFF)
    tempo = b"\xff\x51\x03" + microseconds.to_bytes(3, "big")
    return _track([(0, time_signature), (0, tempo)])


def _notes_track(
    channel: int, notes: list[tuple[int, int, int, int]], program: int | None = None
) -> bytes:
    """An MTrk of (start, end, pitch, velocity) notes on `channel`, after a program change when
    `program` is given."""
    keyed = []  # (tick, 0 = off / 1 = on, pitch, velocity): offs before ons at the same tick
    for start, end, pitch, velocity in notes:
        keyed.append((start, 1, pitch, velocity))
        keyed.append((end, 0, pitch, 0))
    keyed.sort()
    events = [] if program is None else [(0, bytes([0xC0 | channel, program]))]
    events += [
        (tick, bytes([(0x90 if on else 0x80) | channel, pitch, velocity]))
        for tick, on, pitch, velocity in keyed
    ]
    return _track(events)


def _voice_track(tune: PlayedTune, voice: int) -> bytes:
    channel = voice if voice < _DRUM_CHANNEL else min(voice + 1, 15)
    notes = [(n.start, n.end, n.pitch, VELOCITY) for n in tune.notes if n.voice == voice]
    return _notes_track(channel, notes)


def midi_bytes(tune: PlayedTune) -> bytes:
    """The tune as a Standard MIDI File (format 1, TICKS_PER_QUARTER ticks per quarter)."""
    tracks = [_conductor_track(tune.meter or (4, 4), tune.qpm)]
    tracks += [_voice_track(tune, voice) for voice in range(tune.voices)]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS_PER_QUARTER)
    return header + b"".join(tracks)


def multitrack_midi_bytes(
    meter: tuple[int, int],
    qpm: float,
    tracks: list[tuple[int, int, list[tuple[int, int, int, int]]]],
) -> bytes:
    """A format-1 file of (channel, program, notes) tracks; notes are (start tick, end tick,
    pitch, velocity) at TICKS_PER_QUARTER. Channel 9 is General MIDI's drum channel."""
    chunks = [_conductor_track(meter, qpm)]
    chunks += [_notes_track(channel, notes, program) for channel, program, notes in tracks]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_QUARTER)
    return header + b"".join(chunks)


@dataclass(frozen=True, order=True)
class Note:
    start: int  # ticks
    end: int
    channel: int  # 9: drums
    program: int  # the channel's program when the note began
    pitch: int
    velocity: int
    track: int  # index of the MIDI track it is in


def paired_notes(events: list[tuple[int, int, int, bytes]]) -> list[Note]:
    """The notes of `read_events`' events, sorted: each note-on paired with the next note-off (or
    note-on) of its pitch on its track and channel; a note that ends where it starts (a drum hit)
    lasts one tick."""
    events = sorted(events, key=lambda event: event[:2])  # stable: file order within a track
    programs = [0] * 16
    sounding: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    notes = []
    for tick, track, status, data in events:
        kind, channel = status & 0xF0, status & 0x0F
        if kind == 0xC0:
            programs[channel] = data[0]
            continue
        if kind not in (0x80, 0x90):
            continue
        key = (track, channel, data[0])
        if key in sounding:  # an off, or a new on that ends the sounding note first
            start, program, velocity = sounding.pop(key)
            notes.append(
                Note(start, max(tick, start + 1), channel, program, data[0], velocity, track)
            )
        if kind == 0x90 and data[1] > 0:
            sounding[key] = (tick, programs[channel], data[1])
    return sorted(notes)


def _read_variable_length(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    while True:
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos


def read_events(data: bytes) -> tuple[int, list[tuple[int, int, int, bytes]]]:
    """A Standard MIDI File's (ticks per quarter, events); an event is (absolute tick, track,
    status, data), status 0xFF for meta events with data = type byte + payload. Faster than
    mido for the large files MMA writes; raises ValueError on a malformed file."""
    if data[:4] != b"MThd":
        raise ValueError("not a Standard MIDI File")
    header_size, _, num_tracks, division = struct.unpack(">IHHH", data[4:14])
    if division & 0x8000:
        raise ValueError("SMPTE time division is not supported")
    pos, events = 8 + header_size, []
    for track in range(num_tracks):
        if data[pos : pos + 4] != b"MTrk":
            raise ValueError(f"track {track}: no MTrk chunk")
        (size,) = struct.unpack(">I", data[pos + 4 : pos + 8])
        pos, end, tick, status = pos + 8, pos + 8 + size, 0, 0
        while pos < end:
            delta, pos = _read_variable_length(data, pos)
            tick += delta
            if data[pos] >= 0x80:
                status, pos = data[pos], pos + 1
            if status == 0xFF:
                kind = data[pos]
                length, pos = _read_variable_length(data, pos + 1)
                events.append((tick, track, 0xFF, bytes([kind]) + data[pos : pos + length]))
                pos += length
            elif status in (0xF0, 0xF7):
                length, pos = _read_variable_length(data, pos)
                pos += length
            else:
                size_of = 1 if 0xC0 <= status < 0xE0 else 2
                events.append((tick, track, status, data[pos : pos + size_of]))
                pos += size_of
        pos = end
    return division, events
