"""Musical attributes of a token sequence, and the paper's attribute vectors.

MusicVAE §5.3 (Roberts et al., 2018) edits music by latent arithmetic: for an attribute a, the
*attribute vector* is the mean latent code of the training sequences in the top quartile of a minus
the mean latent code of those in the bottom quartile; adding it to a sequence's code should raise a
in the decoded sequence, subtracting it should lower it. The paper uses five attributes; each is
measured here on the note onsets of one track (the melody track of melody and trio models, the
drum track of drum models), on the 16-steps-per-bar grid of the representation:

- ``note_density``: note onsets per time step (onsets / number of steps, so 1.0 means a new note
  on every 16th note).
- ``average_interval``: mean absolute pitch interval, in semitones, between consecutive onsets.
- ``syncopation_16th``: fraction of onsets that fall on an odd 16th-note step, i.e. between two
  8th-note positions.
- ``syncopation_8th``: fraction of onsets that fall on the off-beat 8th note of a beat (step 2 of
  the 4 steps of a quarter note).
- ``c_diatonic``: fraction of onsets whose pitch class is in the C major scale (C D E F G A B).

A value is NaN where the attribute is undefined: no onsets at all (every fraction), fewer than two
onsets (interval), or a drum track (interval and C-diatonicity have no pitch to read).

Where the vectors live: for a checkpoint, in ``attribute_vectors.npz`` next to its ``model.pt``;
for a registered model, in the same file logged as an artifact of the model version's training
run (see ``evaluation.cli.main``), so that everyone sharing the tracking server shares the vectors.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipelines.representation import TRACKS, drum_hits, melody_notes
from training import generate

ATTRIBUTES: tuple[str, ...] = (
    "note_density",
    "average_interval",
    "syncopation_16th",
    "syncopation_8th",
    "c_diatonic",
)
LABELS = {  # short names for tables
    "note_density": "density",
    "average_interval": "interval",
    "syncopation_16th": "sync 16th",
    "syncopation_8th": "sync 8th",
    "c_diatonic": "C diatonic",
}
STEPS_PER_QUARTER = 4
C_MAJOR_PITCH_CLASSES = frozenset({0, 2, 4, 5, 7, 9, 11})
VECTORS_FILENAME = "attribute_vectors.npz"


def onsets(tokens: np.ndarray, track_type: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Steps of the note onsets of one track, and their MIDI pitches (None for drums).

    A melody onset is a note-on token; a drum onset is a step where at least one drum is hit.
    """
    if track_type == "drums":
        return np.unique([step for step, _ in drum_hits(tokens)]).astype(np.int64), None
    notes = melody_notes(tokens)
    steps = np.array([start for _, start, _ in notes], dtype=np.int64)
    pitches = np.array([pitch for pitch, _, _ in notes], dtype=np.int64)
    return steps, pitches


def measure(tokens: np.ndarray, track_type: str = "melody") -> dict[str, float]:
    """The five attributes of one track's tokens ``[T]`` (see the module docstring)."""
    steps, pitches = onsets(tokens, track_type)
    num_steps = len(tokens)
    n = len(steps)
    values = dict.fromkeys(ATTRIBUTES, float("nan"))
    values["note_density"] = n / num_steps if num_steps else float("nan")
    if n == 0:
        return values
    values["syncopation_16th"] = float(np.mean(steps % 2 == 1))
    values["syncopation_8th"] = float(np.mean(steps % STEPS_PER_QUARTER == STEPS_PER_QUARTER // 2))
    if pitches is not None:
        if n >= 2:
            values["average_interval"] = float(np.mean(np.abs(np.diff(pitches))))
        values["c_diatonic"] = float(np.mean([p % 12 in C_MAJOR_PITCH_CLASSES for p in pitches]))
    return values


def lead_track(kind: str) -> tuple[int, str]:
    """Index and type of the track attributes are measured on: the first of ``TRACKS[kind]``."""
    return 0, TRACKS[kind][0].track_type


def measure_batch(tokens: np.ndarray | torch.Tensor, kind: str) -> np.ndarray:
    """Attributes of a batch ``[B, T, K]`` of sequences of a dataset kind: ``[B, len(ATTRIBUTES)]``."""
    tokens = np.asarray(tokens.cpu() if isinstance(tokens, torch.Tensor) else tokens)
    index, track_type = lead_track(kind)
    rows = [measure(sequence[:, index], track_type) for sequence in tokens]
    return np.array([[row[name] for name in ATTRIBUTES] for row in rows], dtype=np.float64)


@dataclass
class AttributeVectors:
    """One latent direction per attribute, with what they were computed from."""

    names: list[str]
    vectors: np.ndarray  # [A, Z]
    low_threshold: np.ndarray  # [A]: attribute value at the bottom quartile's upper edge
    high_threshold: np.ndarray  # [A]: attribute value at the top quartile's lower edge
    quartile_size: np.ndarray  # [A]: sequences averaged on each side
    metadata: dict = field(default_factory=dict)

    @property
    def defined_names(self) -> list[str]:
        """Attributes with a vector: defined on enough sequences (a drum track has no pitches)."""
        return [n for n, size in zip(self.names, self.quartile_size, strict=True) if size > 0]

    def vector(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(f"no attribute vector {name!r}; available: {', '.join(self.names)}")
        return self.vectors[self.names.index(name)]

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with path.open("wb") as f:
            np.savez(
                f,
                names=np.array(self.names),
                vectors=self.vectors,
                low_threshold=self.low_threshold,
                high_threshold=self.high_threshold,
                quartile_size=self.quartile_size,
                metadata=np.array(json.dumps(self.metadata)),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> AttributeVectors:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                names=[str(n) for n in data["names"]],
                vectors=data["vectors"],
                low_threshold=data["low_threshold"],
                high_threshold=data["high_threshold"],
                quartile_size=data["quartile_size"],
                metadata=json.loads(str(data["metadata"])),
            )


def quartile_difference(latents: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mean latent of the top quartile minus mean latent of the bottom quartile of each attribute.

    latents ``[N, Z]``, values ``[N, A]`` (NaN = undefined, left out of that attribute). Quartiles
    are taken by rank, so ties at the edge (e.g. many sequences with no syncopation) still give
    quartiles of a quarter of the defined values each. Returns (vectors, low, high, sizes).
    """
    num_attributes = values.shape[1]
    vectors = np.zeros((num_attributes, latents.shape[1]))
    low = np.full(num_attributes, np.nan)
    high = np.full(num_attributes, np.nan)
    sizes = np.zeros(num_attributes, dtype=np.int64)
    for a in range(num_attributes):
        defined = np.flatnonzero(~np.isnan(values[:, a]))
        quarter = len(defined) // 4
        if quarter == 0:
            continue  # too few sequences where the attribute is defined: leave a zero vector
        order = defined[np.argsort(values[defined, a], kind="stable")]
        bottom, top = order[:quarter], order[-quarter:]
        vectors[a] = latents[top].mean(axis=0) - latents[bottom].mean(axis=0)
        low[a], high[a], sizes[a] = values[bottom[-1], a], values[top[0], a], quarter
    return vectors, low, high, sizes


def compute_attribute_vectors(
    model: torch.nn.Module,
    tokens: np.ndarray | torch.Tensor,
    kind: str,
    *,
    batch_size: int = 256,
    metadata: dict | None = None,
) -> AttributeVectors:
    """Attribute vectors of a model from sequences ``[N, T, K]`` (the paper uses its training set).

    Each sequence contributes its posterior mean μ; attributes are measured on the data itself.
    """
    latents = generate.encode(model, tokens, batch_size=batch_size).numpy()
    values = measure_batch(tokens, kind)
    vectors, low, high, sizes = quartile_difference(latents, values)
    metadata = dict(metadata or {}, num_sequences=len(latents), kind=kind)
    return AttributeVectors(list(ATTRIBUTES), vectors, low, high, sizes, metadata)


@dataclass
class AttributeEffects:
    """How decoding ``z + strength · v_i`` changes each attribute j, against decoding ``z``."""

    vector_names: list[str]  # rows: the vector added
    measured_names: list[str]  # columns: the attribute measured
    strength: float
    mean_change: np.ndarray  # [A_vector, A_measured]: mean over inputs of (shifted - base)
    percent_change: np.ndarray  # [A_vector, A_measured]: mean_change / mean base value · 100
    base_mean: np.ndarray  # [A_measured]
    num_inputs: int

    def to_dict(self) -> dict:
        def table(matrix: np.ndarray) -> dict:
            return {
                vec: {
                    meas: _finite_or_none(matrix[i, j])
                    for j, meas in enumerate(self.measured_names)
                }
                for i, vec in enumerate(self.vector_names)
            }

        return {
            "strength": self.strength,
            "num_inputs": self.num_inputs,
            "base_mean": {
                n: _finite_or_none(v)
                for n, v in zip(self.measured_names, self.base_mean, strict=True)
            },
            "mean_change": table(self.mean_change),
            "percent_change": table(self.percent_change),
        }


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def attribute_effects(
    model: torch.nn.Module,
    tokens: np.ndarray | torch.Tensor,
    kind: str,
    vectors: AttributeVectors,
    *,
    strength: float = 1.0,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 256,
    names: Sequence[str] | None = None,
) -> AttributeEffects:
    """Mean change of every attribute when each attribute vector is added to test inputs' codes.

    Both the shifted and the unshifted code are decoded the same way (greedy by default), so the
    change measures the vector and not the model's reconstruction error. The diagonal says whether
    each vector moves its own attribute; the rest shows how entangled the attributes are (the
    paper's Figure 4 reports the same matrix in percent). By default every defined vector is a
    row (a drum model has no interval or C-diatonic vector).
    """
    names = list(names or vectors.defined_names)
    latents = generate.encode(model, tokens, batch_size=batch_size)
    base = measure_batch(
        generate.decode(model, latents, temperature=temperature, seed=seed, batch_size=batch_size),
        kind,
    )
    with warnings.catch_warnings():  # an attribute undefined everywhere gives NaN, said once
        warnings.simplefilter("ignore", RuntimeWarning)
        base_mean = np.nanmean(base, axis=0)
    mean_change = np.full((len(names), len(ATTRIBUTES)), np.nan)
    for i, name in enumerate(names):
        shift = torch.as_tensor(vectors.vector(name), dtype=latents.dtype)
        shifted = measure_batch(
            generate.decode(
                model,
                latents + strength * shift,
                temperature=temperature,
                seed=seed,
                batch_size=batch_size,
            ),
            kind,
        )
        diff = shifted - base
        for j in range(len(ATTRIBUTES)):
            defined = diff[:, j][~np.isnan(diff[:, j])]
            if len(defined):
                mean_change[i, j] = defined.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        percent = 100.0 * mean_change / base_mean[None, :]
    return AttributeEffects(
        names, list(ATTRIBUTES), strength, mean_change, percent, base_mean, len(base)
    )
