"""MusicVAE packaged as an MLflow pyfunc model: what the Model Registry serves.

The logged model holds ``model.pt`` (weights + config, read with ``weights_only=True``) as its
only artifact, and the project's ``pipelines``, ``training`` and ``evaluation`` packages as code,
so that ``mlflow.pyfunc.load_model("models:/musicvae-<config>@champion")`` works in a fresh
process from any directory. MLflow 3 refuses pickled models by default, so this file is logged
as "model from code": MLflow runs it at load time and takes the instance given to `set_model`.
It always runs on the CPU.

How to call it: ``predict(frame, params={"op": ..., ...})``. The operation and its knobs are
params (one per call); the DataFrame holds one item per row (one column of the three):

    column   type                    meaning
    tokens   list[list[int]] [T][K]  a sequence of T = num_bars * 16 steps, K tracks in the
                                     order of pipelines.representation.TRACKS[kind]
    midi     bytes                   a standard MIDI file; its first window that the model can
                                     read is taken, as pipelines.extract.midi_input does for the CLI
    z        list[float] [Z]         a latent code

    op           input rows              output rows and columns
    encode       tokens or midi, >= 1    one per input: z (posterior sample), mu, sigma
    decode       z, >= 1                 one per input: tokens, midi
    sample       none (empty frame)      n: z, tokens, midi
    interpolate  tokens or midi, 2 (A,B) steps: alpha, z (slerp of mu_A, mu_B), tokens, midi

    param        default  meaning
    op           sample   one of the four operations above
    n            1        sample: how many sequences
    temperature  0.5      decoding temperature in [0, 100] (0 = greedy); magenta's default
    seed         -1       seed of every random draw; -1 draws a fresh one
    steps        11       interpolate: number of points, both ends included
    qpm          120.0    tempo of the MIDI files written, in (0, 1000]

Example::

    model = mlflow.pyfunc.load_model("models:/musicvae-cat-mel_2bar_cpu@champion")
    codes = model.predict(pd.DataFrame({"tokens": [seq_a, seq_b]}), params={"op": "encode"})
    back = model.predict(codes[["mu"]].rename(columns={"mu": "z"}),
                         params={"op": "decode", "temperature": 0.0})
    new = model.predict(pd.DataFrame(), params={"op": "sample", "n": 4, "seed": 7})
"""

from __future__ import annotations

import importlib.metadata
import math
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import DataType
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

from pipelines.extract.midi_input import extract_window
from pipelines.representation import (
    STEPS_PER_BAR,
    TRACKS,
    as_tracks,
    melody_pitch_token,
    midi_bytes_to_notesequence,
    tokens_to_midi_bytes,
)
from training.checkpoint import load_model
from training.generate import (
    checked_qpm,
    checked_temperature,
    decode,
    encode_posterior,
    interpolate,
    latent_size,
    sample,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CODE_PACKAGES = ("pipelines", "training", "evaluation")
WEIGHTS_ARTIFACT = "model.pt"  # key of the weights in the pyfunc's artifacts
OPS = ("encode", "decode", "sample", "interpolate")

TOKENS_TYPE = Array(Array(DataType.long))
INPUT_SCHEMA = Schema(
    [
        ColSpec(TOKENS_TYPE, "tokens", required=False),
        ColSpec(DataType.binary, "midi", required=False),
        ColSpec(Array(DataType.double), "z", required=False),
    ]
)
OUTPUT_SCHEMA = Schema(
    [
        ColSpec(DataType.double, "alpha", required=False),
        ColSpec(Array(DataType.double), "z", required=False),
        ColSpec(Array(DataType.double), "mu", required=False),
        ColSpec(Array(DataType.double), "sigma", required=False),
        ColSpec(TOKENS_TYPE, "tokens", required=False),
        ColSpec(DataType.binary, "midi", required=False),
    ]
)
PARAMS_SCHEMA = ParamSchema(
    [
        ParamSpec("op", DataType.string, "sample"),
        ParamSpec("n", DataType.long, 1),
        ParamSpec("temperature", DataType.double, 0.5),
        ParamSpec("seed", DataType.long, -1),
        ParamSpec("steps", DataType.long, 11),
        ParamSpec("qpm", DataType.double, 120.0),
    ]
)
SIGNATURE = ModelSignature(inputs=INPUT_SCHEMA, outputs=OUTPUT_SCHEMA, params=PARAMS_SCHEMA)
# What the model needs at load time; pinned to what it was logged with.
REQUIREMENTS = ("mlflow", "torch", "numpy", "pandas", "note-seq", "pretty_midi", "mido")


class MusicVAEPyfunc(mlflow.pyfunc.PythonModel):
    """Adapter from pyfunc's DataFrame + params to `training.generate`."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model, self.cfg = load_model(context.artifacts[WEIGHTS_ARTIFACT], device="cpu")

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        params = {**{spec.name: spec.default for spec in PARAMS_SCHEMA.params}, **(params or {})}
        op = params["op"]
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; expected one of {OPS}")
        # The CLI's checks: one model, one set of accepted inputs however it is called.
        temperature = checked_temperature(float(params["temperature"]))
        qpm = checked_qpm(float(params["qpm"]))
        seed = None if int(params["seed"]) < 0 else int(params["seed"])
        frame = model_input if model_input is not None else pd.DataFrame()

        if op == "encode":
            return self._encode(frame, seed)
        if op == "decode":
            tokens = decode(self.model, self._codes(frame), temperature=temperature, seed=seed)
            return self._with_music(pd.DataFrame(index=range(len(tokens))), tokens, qpm)
        if op == "sample":
            n = int(params["n"])
            self._check_no_input(frame, n)
            z, tokens = sample(self.model, n, temperature=temperature, seed=seed)
            return self._with_music(pd.DataFrame({"z": _rows(z)}), tokens, qpm)
        return self._interpolate(frame, int(params["steps"]), temperature, seed, qpm)

    def _encode(self, frame: pd.DataFrame, seed: int | None) -> pd.DataFrame:
        mu, sigma = encode_posterior(self.model, self._sequences(frame, "encode"))
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        z = mu + sigma * torch.randn(mu.shape, generator=generator)
        return pd.DataFrame({"z": _rows(z), "mu": _rows(mu), "sigma": _rows(sigma)})

    def _interpolate(
        self, frame: pd.DataFrame, steps: int, temperature: float, seed: int | None, qpm: float
    ) -> pd.DataFrame:
        ends = self._sequences(frame, "interpolate")
        if len(ends) != 2:
            raise ValueError(f"interpolate takes exactly 2 rows (A and B), got {len(ends)}")
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        codes, tokens = interpolate(
            self.model, ends[0], ends[1], steps, temperature=temperature, seed=seed
        )
        alphas = np.linspace(0.0, 1.0, steps).tolist()
        return self._with_music(pd.DataFrame({"alpha": alphas, "z": _rows(codes)}), tokens, qpm)

    # -- reading the input ----------------------------------------------------------------------

    def _sequences(self, frame: pd.DataFrame, op: str) -> np.ndarray:
        """Token sequences ``[N, T, K]`` from the ``tokens`` or ``midi`` cell of every row."""
        _check_columns(frame, {"tokens", "midi"}, op)
        sequences = []
        for row, record in enumerate(frame.to_dict("records")):
            if _present(record.get("tokens")):
                sequences.append(self._token_array(record["tokens"], row))
            elif _present(record.get("midi")):
                try:
                    notes = midi_bytes_to_notesequence(bytes(record["midi"]))
                except ValueError as error:
                    raise ValueError(f"row {row}: {error}") from error
                # InputError (a ValueError) says why no window fits, prefixed by "row N".
                sequences.append(
                    extract_window(notes, self.cfg.dataset, source=f"row {row}").tokens
                )
            else:
                raise ValueError(f"row {row}: needs 'tokens' or 'midi'")
        return np.stack(sequences).astype(np.int64)

    def _token_array(self, cell: Any, row: int) -> np.ndarray:
        """One ``tokens`` cell as ``[T, K]`` int64, in range for the model's kind."""
        shape = (self.cfg.max_seq_len, len(self.cfg.tracks))
        what = f"[{shape[0]}][{shape[1]}] ({self.cfg.num_bars} bars of {self.cfg.kind})"
        try:
            array = np.asarray([np.asarray(step) for step in cell])
        except ValueError:
            array = None  # ragged
        if array is None or array.shape != shape:
            got = "a ragged list" if array is None else list(array.shape)
            raise ValueError(f"row {row}: tokens must be {what}, got {got}")
        try:
            tracks = as_tracks(array, self.cfg.kind)
        except ValueError as error:
            raise ValueError(f"row {row}: {error}") from error
        return np.stack([tracks[spec.column] for spec in self.cfg.tracks], axis=1)

    def _codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Latent codes ``[N, Z]`` from the ``z`` cell of every row."""
        _check_columns(frame, {"z"}, "decode")
        size = latent_size(self.model)
        codes = []
        for row, cell in enumerate(frame["z"]):
            code = np.asarray(cell, dtype=np.float64) if _present(cell) else np.zeros(0)
            if code.shape != (size,) or not np.isfinite(code).all():
                raise ValueError(f"row {row}: z must be {size} finite numbers, got {code.shape}")
            codes.append(code)
        return np.stack(codes)

    @staticmethod
    def _check_no_input(frame: pd.DataFrame, n: int) -> None:
        if len(frame) or len(frame.columns):
            raise ValueError(
                f"sample takes no input rows (got {len(frame)} with columns {list(frame.columns)}):"
                " pass an empty DataFrame, or choose op 'encode', 'decode' or 'interpolate'"
            )
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")

    def _with_music(self, frame: pd.DataFrame, tokens: torch.Tensor, qpm: float) -> pd.DataFrame:
        """Add the ``tokens`` [T][K] and ``midi`` columns of decoded sequences ``[N, T, K]``."""
        arrays = tokens.cpu().numpy()
        frame["tokens"] = [sequence.tolist() for sequence in arrays]
        frame["midi"] = [tokens_to_midi_bytes(seq, self.cfg.kind, qpm=qpm) for seq in arrays]
        return frame


def _rows(values: torch.Tensor) -> list[list[float]]:
    return values.detach().cpu().double().numpy().tolist()


def _present(cell: Any) -> bool:
    """A filled cell: pandas puts None or NaN where a row has no value."""
    if cell is None:
        return False
    return not (isinstance(cell, float) and math.isnan(cell))


def _check_columns(frame: pd.DataFrame, allowed: set[str], op: str) -> None:
    unexpected = sorted(set(frame.columns) - allowed)
    if unexpected:
        raise ValueError(f"{op} reads columns {sorted(allowed)}; unexpected {unexpected}")
    if len(frame) == 0 or not set(frame.columns) & allowed:
        raise ValueError(f"{op} needs at least one row with a column of {sorted(allowed)}")


# ---------------------------------------------------------------------------------------------
# Logging


def example_tokens(kind: str, num_bars: int) -> list[list[int]]:
    """A valid sequence for the input example: a C major arpeggio (the bass an octave lower) and
    a kick, one event per beat."""
    arpeggio = (60, 64, 67, 72)
    sequence = []
    for step in range(num_bars * STEPS_PER_BAR):
        beat, on_beat = step // 4, step % 4 == 0
        row = []
        for spec in TRACKS[kind]:
            if not on_beat:
                row.append(0)  # hold / silence
            elif spec.track_type == "drums":
                row.append(1)  # bit 0: kick
            else:
                octave = -12 if spec.column == "bass" else 0
                row.append(melody_pitch_token(arpeggio[beat % 4] + octave))
        sequence.append(row)
    return sequence


def pip_requirements() -> list[str]:
    """Pins of what the model imports, as installed now (torch without its "+cpu")."""
    return [
        f"{package}=={importlib.metadata.version(package).split('+')[0]}"
        for package in REQUIREMENTS
    ]


def log_pyfunc(weights: str | Path, *, run_id: str, name: str = "musicvae") -> ModelInfo:
    """Log ``weights`` (a model.pt) as a pyfunc model of run ``run_id``, at the current tracking
    URI. MLflow links the run's step-0 metrics (the evaluation's) to the logged model."""
    _, cfg = load_model(weights)
    example = pd.DataFrame({"tokens": [example_tokens(cfg.kind, cfg.num_bars)]})
    with mlflow.start_run(run_id=run_id):
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).resolve()),
            artifacts={WEIGHTS_ARTIFACT: str(weights)},
            code_paths=[str(REPO_ROOT / package) for package in CODE_PACKAGES],
            signature=SIGNATURE,
            input_example=(example, {"op": "encode", "seed": 0}),
            pip_requirements=pip_requirements(),
            tags={"config": cfg.name, "kind": cfg.kind, "dataset": cfg.dataset},
        )


# MLflow runs this file to load the model ("models from code") and takes this instance.
mlflow.models.set_model(MusicVAEPyfunc())
