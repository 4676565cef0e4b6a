"""Near-copies of windows: the normalised Hamming distance between two windows, in the same key
and under the best transposition, and block keys that find every pair within a distance without
comparing all pairs.

A window is compared as one int16 vector over its tracks (`comparable`): melody-type tracks keep
their tokens (pitch tokens are >= MELODY_FIRST_PITCH_TOKEN, the only ones a transposition moves),
drum tracks are stored as negative numbers so that they never count as pitches. A trio is
compared by its melody alone: its bass and drums follow the style (the same groove plays under
many tunes), so they would link unrelated songs and fill the block buckets.

Block keys (`block_keys`) are an exact locality-sensitive hash for the Hamming distance: cut a
vector of n positions into k + 1 contiguous blocks, where k is the number of mismatches a
threshold allows; two windows within k mismatches agree exactly on at least one block (the
pigeonhole principle). Pitches in a block are written relative to the block's first pitch, so a
transposed copy has the same key. Grouping windows by block key and verifying the pairs inside
each group finds every pair within the threshold, in the same key or transposed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from pipelines.representation import MELODY_FIRST_PITCH_TOKEN, TRACKS

COMPARED_COLUMNS = {"trio": ("melody",)}  # other kinds: every track
MAX_TRANSPOSITION = 12  # semitones either way, as a key change between two copies of a tune
# A relative pitch in a block key: far from the non-pitch values (0, 1 and negative drum tokens).
_RELATIVE_PITCH_BASE = 1000


def comparable(tracks: Sequence[bytes | Sequence[int] | np.ndarray], kind: str) -> np.ndarray:
    """The tokens of one window, per track in `TRACKS[kind]` order (little-endian int16 bytes,
    lists or arrays), as the int16 vector the distances compare (a trio: its melody)."""
    parts = []
    for spec, data in zip(TRACKS[kind], tracks, strict=True):
        if spec.column not in COMPARED_COLUMNS.get(kind, (spec.column,)):
            continue
        array = (
            np.frombuffer(data, dtype="<i2") if isinstance(data, bytes) else np.asarray(data)
        ).astype(np.int16)
        parts.append(array if spec.track_type == "melody" else -1 - array)
    return np.concatenate(parts)


def pack(window: np.ndarray) -> bytes:
    """A window as the bytes a shuffle carries: a block bucket holds a copy of every window with
    that block, and zlib cuts a 16-bar melody's 512 bytes to about 120."""
    return zlib.compress(window.astype("<i2").tobytes(), 1)


def unpack(data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype="<i2").astype(np.int16)


def max_mismatches(length: int, fraction: float) -> int:
    """Mismatches that keep two windows of `length` positions within `fraction` of each other."""
    return int(np.floor(fraction * length + 1e-9))


def block_keys(window: np.ndarray, fraction: float) -> list[bytes]:
    """Keys of the blocks of `window`: any window within `fraction` of it, in the same key or
    transposed, shares at least one key with it."""
    blocks = np.array_split(window, max_mismatches(len(window), fraction) + 1)
    keys = []
    for i, block in enumerate(blocks):
        pitched = block >= MELODY_FIRST_PITCH_TOKEN
        if pitched.any():
            anchor = block[pitched][0]
            block = np.where(pitched, block - anchor + _RELATIVE_PITCH_BASE, block)
        keys.append(i.to_bytes(2, "big") + block.astype("<i2").tobytes())
    return keys


def mismatches(window: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mismatched positions between `window` [n] and each row of `others` [m, n]: (in the same
    key, under the best transposition of at most MAX_TRANSPOSITION semitones), each [m].

    Non-pitch positions match or not whatever the transposition; two pitches match under shift s
    exactly where they differ by s, so the best shift is the commonest difference.
    """
    others = np.atleast_2d(others)
    same_key = (others != window).sum(axis=1)
    both = (others >= MELODY_FIRST_PITCH_TOKEN) & (window >= MELODY_FIRST_PITCH_TOKEN)
    equal_elsewhere = ((others == window) & ~both).sum(axis=1)
    shift = np.where(both, window.astype(np.int32) - others + MAX_TRANSPOSITION, -1)
    width = 2 * MAX_TRANSPOSITION + 1
    shift = np.where((shift >= 0) & (shift < width), shift, width)  # width: no shift matches
    rows = np.arange(len(others))[:, None] * (width + 1)
    counts = np.bincount((rows + shift).ravel(), minlength=len(others) * (width + 1))
    best = counts.reshape(len(others), width + 1)[:, :width].max(axis=1)
    return same_key, window.shape[0] - equal_elsewhere - best


def min_distances(sample: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Smallest normalised distance from each row of `sample` [s, n] to any row of `others`
    [m, n]: [s, 2], in the same key and transposed (1.0 when `others` is empty)."""
    result = np.ones((len(sample), 2))
    if len(others):
        for i, window in enumerate(sample):
            same_key, transposed = mismatches(window, others)
            result[i] = same_key.min() / len(window), transposed.min() / len(window)
    return result
