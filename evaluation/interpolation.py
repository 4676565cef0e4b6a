"""Interpolation between pairs of sequences (paper section 5) and how smooth it is.

Two ways from sequence A to sequence B in ``len(alphas)`` steps:

- latent: decode slerp(mu_A, mu_B, alpha) (the model decides what lies in between);
- data: every time step copied from B with probability alpha, else from A (the naive baseline).

Smoothness is read from the normalised Hamming distance of each interpolant to A as alpha goes
from 0 to 1: ideally it rises monotonically and in a straight line from 0 to d(A, B).
"""

from __future__ import annotations

import numpy as np

from pipelines.representation import MELODY_FIRST_PITCH_TOKEN

DEFAULT_ALPHAS = np.linspace(0.0, 1.0, 11)


def data_space_interpolation(
    a: np.ndarray, b: np.ndarray, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Take every time step (all tracks at once) from ``b`` with probability ``alpha``.

    ``a`` and ``b`` are ``[..., T, K]`` token arrays; returns an array of the same shape.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"a {a.shape} and b {b.shape} differ in shape")
    from_b = rng.random(a.shape[:-1]) < alpha
    return np.where(from_b[..., None], b, a)


def normalized_hamming(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fraction of tokens that differ between ``x`` and ``y`` (``[..., T, K]``), per sequence."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} differ in shape")
    return (x != y).mean(axis=(-2, -1))


def pick_pairs(num_examples: int, num_pairs: int, seed: int) -> np.ndarray:
    """A fixed, seeded set of ``num_pairs`` (A, B) index pairs, ``[num_pairs, 2]``, A != B.

    Pairs use distinct examples while there are enough of them, so that no example dominates.
    """
    if num_examples < 2:
        raise ValueError("need at least two examples to make a pair")
    rng = np.random.default_rng(seed)
    if 2 * num_pairs <= num_examples:
        return rng.permutation(num_examples)[: 2 * num_pairs].reshape(num_pairs, 2)
    first = rng.integers(0, num_examples, size=num_pairs)
    # An offset in 1..N-1 guarantees B != A.
    second = (first + rng.integers(1, num_examples, size=num_pairs)) % num_examples
    return np.stack([first, second], axis=1)


def relative_distances(interpolants: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of every interpolant to A divided by d(A, B): ``[P, num_alphas]``.

    ``interpolants`` is ``[P, num_alphas, T, K]``, ``a`` and ``b`` are ``[P, T, K]``. Pairs with
    A == B have no scale and are rows of NaN.
    """
    interpolants, a = np.asarray(interpolants), np.asarray(a)
    to_a = normalized_hamming(interpolants, np.broadcast_to(a[:, None], interpolants.shape))
    a_to_b = normalized_hamming(a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(a_to_b[:, None] > 0, to_a / a_to_b[:, None], np.nan)


def monotonicity_violation(relative: np.ndarray) -> float:
    """Mean over pairs of the total amount by which the distance to A *falls* along alpha.

    0 for a curve that never moves back towards A; in units of d(A, B).
    """
    relative = _valid_rows(relative)
    drops = np.clip(-np.diff(relative, axis=1), 0.0, None)
    return float(drops.sum(axis=1).mean())


def linearity_deviation(relative: np.ndarray, alphas: np.ndarray) -> float:
    """Mean absolute gap between the relative distance to A and the straight line ``alpha``."""
    relative = _valid_rows(relative)
    alphas = np.asarray(alphas, dtype=float)
    if relative.shape[1] != alphas.size:
        raise ValueError(f"{relative.shape[1]} distances per pair for {alphas.size} alphas")
    return float(np.abs(relative - alphas[None]).mean())


def _valid_rows(relative: np.ndarray) -> np.ndarray:
    relative = np.asarray(relative, dtype=float)
    if relative.ndim != 2:
        raise ValueError(f"expected [pairs, alphas], got {relative.shape}")
    relative = relative[~np.isnan(relative).any(axis=1)]
    if relative.shape[0] == 0:
        raise ValueError("no pair with A != B")
    return relative


def note_onsets(tokens: np.ndarray, track_types: list[str]) -> np.ndarray:
    """Note onsets of each sequence ``[..., T, K] -> [...]``, summed over tracks: melody tokens
    from MELODY_FIRST_PITCH_TOKEN on start a note, a non-zero drum token is a hit."""
    tokens = np.asarray(tokens)
    counts = np.zeros(tokens.shape[:-2], dtype=np.int64)
    for k, kind in enumerate(track_types):
        counts += _starts_note(tokens[..., k], kind).sum(axis=-1)
    return counts


def _starts_note(track: np.ndarray, kind: str) -> np.ndarray:
    """Which tokens of one track start a note (melody, bass) or hit a drum."""
    return track != 0 if kind == "drums" else track >= MELODY_FIRST_PITCH_TOKEN


def distinct_onsets(tokens: np.ndarray, track_types: list[str]) -> np.ndarray:
    """Distinct onset tokens of each sequence ``[..., T, K] -> [...]``, summed over tracks: the
    pitches a melody strikes (drum sets a drum track hits), however often each is struck."""
    tokens = np.asarray(tokens)
    flat = tokens.reshape(-1, *tokens.shape[-2:])
    counts = np.zeros(len(flat), dtype=np.int64)
    for k, kind in enumerate(track_types):
        for i, track in enumerate(flat[..., k]):
            counts[i] += len(np.unique(track[_starts_note(track, kind)]))
    return counts.reshape(tokens.shape[:-2])


def monotone_fraction(sequences: np.ndarray, track_types: list[str], max_pitches: int = 2) -> float:
    """Share of sequences ``[..., T, K]`` that strike at most ``max_pitches`` distinct pitches:
    one note re-struck every bar passes degenerate_fraction's onset count but is no melody."""
    return float((distinct_onsets(sequences, track_types) <= max_pitches).mean())


def degenerate_fraction(
    sequences: np.ndarray, track_types: list[str], max_onsets: int = 2
) -> float:
    """Share of sequences ``[..., T, K]`` with at most ``max_onsets`` note onsets: held notes or
    silence, which a decoder that ignores z produces."""
    return float((note_onsets(sequences, track_types) <= max_onsets).mean())
