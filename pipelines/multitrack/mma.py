"""Musical MIDI Accompaniment (MMA, Debian's `mma`): its 4/4 grooves, and songs rendered to notes.

MMA's libraries hold drum, bass and chord patterns written by musicians (`DefGroove`s). A song
is a groove and one chord per bar; `mma` plays the groove's patterns over the chords. MMA
humanises (random skipped hits, timing and velocity) from a seed the song sets (`RndSeed`), so
a song renders to the same notes every time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from pipelines.corpus.midi import Note, paired_notes, read_events

DEFAULT_LIBRARY = "/usr/share/mma/lib/stdlib"
BEATS_PER_BAR = 4
# Intros, endings, fills and breaks are not what a groove plays for a whole tune.
_NOT_A_MAIN_GROOVE = re.compile(r"intro|end|fill|break", re.IGNORECASE)
_TIME = re.compile(r"^\s*time\s+(\d+)", re.IGNORECASE)
_TIMESIG = re.compile(r"^\s*timesig\s+(\d+)\s*/?\s*(\d+)", re.IGNORECASE)
_DEFGROOVE = re.compile(r"^\s*defgroove\s+(\S+)", re.IGNORECASE)


class MMAMissing(RuntimeError):
    pass


@dataclass(frozen=True, order=True)
class Groove:
    library: str  # the .mma file's stem, e.g. "rock"
    name: str  # as DefGroove spells it, e.g. "Rock1Sus"


@dataclass(frozen=True)
class Rendered:
    ticks_per_quarter: int
    notes: list[Note]  # ticks at ticks_per_quarter; `track`: one per MMA track, e.g. Bass-1


def executable() -> str:
    """Path of `mma`, or MMAMissing with how to install it."""
    path = shutil.which("mma")
    if path is None:
        raise MMAMissing(
            "mma (Musical MIDI Accompaniment) is not installed: `apt-get install mma` "
            "(Debian/Ubuntu) gives the drums and trio corpus its grooves"
        )
    return path


def version() -> str:
    out = subprocess.run(
        [executable(), "-v"], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[-1] if out else "unknown"


def main_grooves(library: str = DEFAULT_LIBRARY) -> list[Groove]:
    """Every DefGroove in 4/4 of the library's files (intros, endings, fills left out), sorted."""
    grooves = set()
    for name in sorted(os.listdir(library)):
        if not name.endswith(".mma"):
            continue
        beats, meter_ok = None, True
        with open(os.path.join(library, name), encoding="latin-1") as handle:
            for line in handle:
                if match := _TIME.match(line):
                    beats = int(match.group(1))
                elif match := _TIMESIG.match(line):
                    meter_ok = (int(match.group(1)), int(match.group(2))) in ((4, 4), (2, 2))
                elif match := _DEFGROOVE.match(line):
                    groove = match.group(1)
                    if (
                        beats == BEATS_PER_BAR
                        and meter_ok
                        and not _NOT_A_MAIN_GROOVE.search(groove)
                    ):
                        grooves.add(Groove(name[: -len(".mma")], groove))
    return sorted(grooves)


def render(song: str, timeout: float = 600.0) -> Rendered:
    """MMA source text -> the notes of the MIDI file `mma` writes for it.

    Raises RuntimeError with MMA's own message when it rejects the song."""
    with tempfile.TemporaryDirectory(prefix="mma-") as folder:
        source, output = os.path.join(folder, "song.mma"), os.path.join(folder, "song.mid")
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(song)
        done = subprocess.run(
            [executable(), "-m", "10000000", "-f", output, source],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=folder,
        )
        errors = [line for line in done.stdout.splitlines() if line.startswith("Error")]
        if done.returncode != 0 or errors or not os.path.exists(output):
            raise RuntimeError(f"mma failed: {' '.join(errors) or done.stderr.strip()[:300]}")
        return read_notes(output)


def read_notes(path: str) -> Rendered:
    """Every note of a MIDI file with the program its channel had when the note began."""
    with open(path, "rb") as handle:
        ticks_per_quarter, events = read_events(handle.read())
    return Rendered(ticks_per_quarter, paired_notes(events))
