"""Optional WAV rendering of NoteSequences with FluidSynth, when it is installed.

Nothing is ever downloaded and nothing fails without it: `synthesizer_status()` says whether a
render is possible (pyfluidsynth with its libfluidsynth, and a General MIDI soundfont: the one
that ships inside the pretty_midi wheel, or one named by $MUSICVAE_SOUNDFONT), and
`render_wav` returns None when it is not. MIDI files are written regardless, and any player can
sound them.
"""

from __future__ import annotations

import importlib.util
import os
import wave
from pathlib import Path

import numpy as np
from note_seq.protobuf import music_pb2

SAMPLE_RATE = 22050


def find_soundfont() -> Path | None:
    """$MUSICVAE_SOUNDFONT if set, else the TimGM6mb.sf2 bundled with pretty_midi."""
    chosen = os.environ.get("MUSICVAE_SOUNDFONT")
    if chosen:
        return Path(chosen) if Path(chosen).is_file() else None
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or spec.origin is None:
        return None
    bundled = Path(spec.origin).parent / "TimGM6mb.sf2"
    return bundled if bundled.is_file() else None


def synthesizer_status() -> tuple[bool, str]:
    """(available, explanation) for WAV rendering on this machine."""
    soundfont = find_soundfont()
    if soundfont is None:
        return False, "no soundfont found (set MUSICVAE_SOUNDFONT to an .sf2 file)"
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loads libfluidsynth)
    except ImportError as error:
        return False, (
            f"pyfluidsynth/libfluidsynth not importable ({error}); install the fluidsynth "
            "system package and `pip install pyfluidsynth` to render WAV"
        )
    except OSError as error:  # the Python package is there but the shared library is not
        return False, f"libfluidsynth could not be loaded: {error}"
    return True, f"fluidsynth with soundfont {soundfont}"


def render_wav(
    sequence: music_pb2.NoteSequence, path: str | Path, sample_rate: int = SAMPLE_RATE
) -> Path | None:
    """Write ``sequence`` as a 16-bit mono WAV; None (and no file) when no synthesizer exists."""
    available, _ = synthesizer_status()
    if not available:
        return None
    from note_seq import midi_io

    pm = midi_io.note_sequence_to_pretty_midi(sequence)
    audio = pm.fluidsynth(fs=sample_rate, sf2_path=str(find_soundfont()))
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    samples = (audio / peak * 0.9 if peak > 0 else audio) * 32767.0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path
