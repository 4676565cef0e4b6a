"""Write a `PlayedTune` as a Standard MIDI File, byte for byte the same on every machine.

A format-1 file: track 0 holds the meter and the tempo, then one track per ABC voice. Events at
one tick are ordered note-offs first, then by pitch. Nothing depends on the clock, the platform
or dict order.
"""

from __future__ import annotations

import struct

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


def _conductor_track(tune: PlayedTune) -> bytes:
    numerator, denominator = tune.meter or (4, 4)
    time_signature = bytes([0xFF, 0x58, 4, numerator, denominator.bit_length() - 1, 24, 8])
    microseconds = min(max(round(60_000_000 / tune.qpm), 1), 0xFFFFFF)
    tempo = b"\xff\x51\x03" + microseconds.to_bytes(3, "big")
    return _track([(0, time_signature), (0, tempo)])


def _voice_track(tune: PlayedTune, voice: int) -> bytes:
    channel = voice if voice < _DRUM_CHANNEL else min(voice + 1, 15)
    keyed = []  # (tick, 0 = off / 1 = on, pitch): offs before ons at the same tick
    for note in tune.notes:
        if note.voice == voice:
            keyed.append((note.start, 1, note.pitch))
            keyed.append((note.end, 0, note.pitch))
    keyed.sort()
    events = [
        (tick, bytes([(0x90 if on else 0x80) | channel, pitch, VELOCITY if on else 0]))
        for tick, on, pitch in keyed
    ]
    return _track(events)


def midi_bytes(tune: PlayedTune) -> bytes:
    """The tune as a Standard MIDI File (format 1, TICKS_PER_QUARTER ticks per quarter)."""
    tracks = [_conductor_track(tune)]
    tracks += [_voice_track(tune, voice) for voice in range(tune.voices)]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS_PER_QUARTER)
    return header + b"".join(tracks)
