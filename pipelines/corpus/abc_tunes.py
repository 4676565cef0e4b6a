"""Split ABC files into tunes.

An ABC file holds one or more tunes, each starting at an `X:` (reference number) line; the lines
before the first `X:` are a file header that applies to every tune. Splitting the text ourselves
lets the pipeline parse one small tune at a time instead of a whole multi-tune book.
"""

from __future__ import annotations

import dataclasses
import re

# music21 reads the ABC version from a `%abc-2.1` comment in the first 100 characters of a file.
_ABC_VERSION = re.compile(r"%abc-(\d+)\.(\d+)\.?(\d+)?")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9]+")


@dataclasses.dataclass(frozen=True)
class Tune:
    """One tune of an ABC file, with the file header prepended to its text."""

    collection: str  # folder of the corpus, e.g. "essenFolksong"
    file: str  # path of the ABC file inside the collection, e.g. "altdeu10.abc"
    index: int  # 1-based position of the tune in its file
    x: str  # the tune's reference number as written after `X:`
    text: str
    abc_version: tuple[int, int, int] | None  # from the file's `%abc-` comment, if any

    @property
    def midi_path(self) -> str:
        """Stable relative path of the tune's MIDI file: <collection>/<file stem>/<index>_X<x>.mid."""
        stem = self.file[: -len(".abc")] if self.file.endswith(".abc") else self.file
        x = _UNSAFE_NAME_CHARS.sub("", self.x) or "none"
        return f"{self.collection}/{stem}/{self.index:04d}_X{x}.mid"


def decode_abc(data: bytes) -> str:
    """ABC files are UTF-8, but old ones are often Latin-1; accept both."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _is_reference_line(line: str) -> bool:
    return line.lstrip().startswith("X:")


def count_tunes(text: str) -> int:
    """Number of tunes in an ABC file (cheap: no parsing)."""
    return sum(1 for line in text.split("\n") if _is_reference_line(line))


def abc_version(text: str) -> tuple[int, int, int] | None:
    match = _ABC_VERSION.search(text[:100])
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def split_tunes(text: str, collection: str, file: str, stop: int | None = None) -> list[Tune]:
    """The tunes of one ABC file, in file order (only the first `stop` if given)."""
    version = abc_version(text)
    header: list[str] = []
    blocks: list[list[str]] = []
    for line in text.split("\n"):
        if _is_reference_line(line):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            header.append(line)
    header_text = "\n".join(header).strip("\n")
    tunes = []
    for position, block in enumerate(blocks[:stop]):
        body = "\n".join(block)
        tunes.append(
            Tune(
                collection=collection,
                file=file,
                index=position + 1,
                x=block[0].lstrip()[2:].strip(),
                text=f"{header_text}\n{body}" if header_text else body,
                abc_version=version,
            )
        )
    return tunes
