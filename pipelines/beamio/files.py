"""File handling shared by the Beam stages: corpus patterns, output folders, small JSON files.

Everything goes through Beam's `FileSystems`, so the same code reads and writes local paths and
`gs://` URLs (the latter needs `apache-beam[gcp]`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

_GLOB_CHARS = re.compile(r"[*?\[]")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a recursive glob into a regex over full paths (Python `glob` semantics).

    `*` and `?` stay within one path segment, `**/` matches zero or more directories (so
    `data/**/*.mid` also matches `data/a.mid`, which Beam's own `**` does not), `[...]` is a
    character class.
    """
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class CorpusPattern:
    """Which files an `--input` names, and the root their relative paths start from.

    A directory (local, or any URL ending in `/`) means every file below it whose extension is in
    `extensions`; other files there are counted as ignored. A glob means exactly the files it
    matches, whatever their extension (an unsupported one becomes an error row downstream).
    """

    root: str  # always ends with "/"
    regex: str | None  # full-path regex; None in directory mode
    extensions: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str, extensions: tuple[str, ...]) -> CorpusPattern:
        is_glob = bool(_GLOB_CHARS.search(spec))
        if not is_glob and (spec.endswith("/") or os.path.isdir(spec)):
            return cls(root=spec.rstrip("/") + "/", regex=None, extensions=extensions)
        if not is_glob:  # a single file
            return cls(
                root=spec.rsplit("/", 1)[0] + "/" if "/" in spec else "./",
                regex=re.escape(spec) + r"\Z",
                extensions=extensions,
            )
        prefix = spec[: _GLOB_CHARS.search(spec).start()]
        root = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        return cls(
            root=root or "./",
            regex=glob_to_regex(spec if root else "./" + spec).pattern,
            extensions=extensions,
        )

    def relative_path(self, path: str) -> str:
        return path[len(self.root) :] if path.startswith(self.root) else path

    def selects(self, path: str) -> bool:
        """True for files of the corpus; False for files the directory mode ignores."""
        if self.regex is None:
            return path.lower().endswith(self.extensions)
        return re.match(self.regex, path) is not None


class MatchCorpus(beam.PTransform):
    """PBegin → (ReadableFile per corpus file, FileMetadata per ignored file).

    Lists everything under the root once, filters it with the glob, and reshuffles so that the
    reading and hashing that follow spread over all workers instead of the one that listed.
    """

    def __init__(self, corpus: CorpusPattern):
        super().__init__()
        self._corpus = corpus

    def expand(self, pbegin):
        corpus = self._corpus
        listed = (
            pbegin
            | "List" >> fileio.MatchFiles(corpus.root + "**", fileio.EmptyMatchTreatment.ALLOW)
            | "SkipDirectories" >> beam.Filter(lambda m: not m.path.endswith("/"))
        )
        if corpus.regex is not None:  # a glob: files outside it are not part of the corpus at all
            selected = listed | "Glob" >> beam.Filter(lambda m: corpus.selects(m.path))
            ignored = pbegin | "NothingIgnored" >> beam.Create([])
        else:
            selected, ignored = listed | "ByExtension" >> beam.Partition(
                lambda m, _: 0 if corpus.selects(m.path) else 1, 2
            )
        files = selected | "Spread" >> beam.Reshuffle() | "Open" >> fileio.ReadMatches()
        return files, ignored


def clear_outputs(folder: str, patterns: list[str]) -> None:
    """Delete earlier outputs of a stage (shard counts change between runs; stale shards would
    otherwise be globbed together with the new ones)."""
    folder = folder.rstrip("/")
    stale = [
        m.path
        for pattern in patterns
        for result in FileSystems.match([f"{folder}/{pattern}"])
        for m in result.metadata_list
    ]
    if stale:
        FileSystems.delete(stale)


def exists(pattern: str) -> bool:
    """True when a glob matches at least one file."""
    return any(result.metadata_list for result in FileSystems.match([pattern]))


def make_dirs(folder: str) -> None:
    if "://" not in folder:  # object stores have no directories
        os.makedirs(folder, exist_ok=True)


def write_json(path: str, obj: object) -> None:
    with FileSystems.create(path, mime_type="application/json") as f:
        f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str) -> object:
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode())


class WriteJson(beam.PTransform):
    """Writes the single element of a PCollection (a JSON-able dict) to `path`."""

    def __init__(self, path: str):
        super().__init__()
        self._path = path

    def expand(self, pcoll):
        path = self._path
        return pcoll | "WriteJson" >> beam.Map(lambda obj: write_json(path, obj))
