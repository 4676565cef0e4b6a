"""Named MusicVAE configurations, with magenta's hyperparameter names.

A `Config` is one flat dataclass that holds everything a training run needs: which dataset it
reads, the model's sizes, the loss and its schedules, the optimiser, and the training loop's
budgets. `get_config(name, overrides)` returns a named config with any field replaced, which is
how params.yaml reaches every knob.

Three families of configs:

- the paper's configs (magenta's `configs.py`): cat-mel_2bar_small, cat-mel_2bar_big,
  flat-mel_16bar, hierdec-mel_16bar, cat-drums_2bar_small, flat-trio_16bar, hierdec-trio_16bar;
  these are what a GPU user trains.
- `<family>_cpu` variants sized so that a 2-core CPU learns something real in 5-10 minutes
  (the default `dvc repro`);
- `<family>_tiny` variants for tests (seconds per step on one core).

Field notes (magenta semantics):
- `enc_rnn_size` is per direction of the bidirectional encoder; `dec_rnn_size` is the decoder
  stack, which for a hierarchical decoder is also the conductor's stack unless
  `conductor_rnn_size` says otherwise (magenta uses `dec_rnn_size` for both).
- `free_bits` is in bits per example (not per dimension), `beta_rate` anneals β as
  `(1 - beta_rate**step) * max_beta` (0 gives β = max_beta from step 1).
- `sampling_schedule` is "constant" (probability `sampling_rate`) or "inverse_sigmoid"
  (probability `1 - k / (k + exp(step / k))`, k = `sampling_rate`) or "exponential"
  (`1 - rate**step`).
- `split_tracks` (hierdec-trio): one bottom decoder per track, each seeing only its own track
  (magenta's SplitMultiOutLstmDecoder); otherwise one decoder reads and predicts all tracks.
- `transpose_range`: training windows of melody tracks are transposed by a uniform shift in
  ±`transpose_range` semitones (see training/data.py).
- `shuffle_buffer` 0 means magenta's 10 × batch_size.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipelines.params import read_section
from pipelines.representation import STEPS_PER_BAR, TRACKS, TrackSpec

SAMPLING_SCHEDULES = ("constant", "inverse_sigmoid", "exponential")
DECODERS = ("flat", "hierarchical")
CONDUCTOR_INPUTS = ("zeros", "z")
PRIORS = ("standard", "fitted")


@dataclass
class Config:
    name: str
    # Data: which token streams and which dataset folder (datasets/<dataset>/).
    kind: str = "melody"  # a key of pipelines.representation.TRACKS
    dataset: str = "mel_2bar"
    num_bars: int = 2
    # Model.
    decoder: str = "flat"  # "flat" or "hierarchical"
    enc_rnn_size: list[int] = field(default_factory=lambda: [512])
    # Empty: one bidirectional LSTM over the whole sequence. [16, 16]: magenta's
    # HierarchicalLstmEncoder (each bar encoded alone, then the 16 bar embeddings).
    enc_level_lengths: list[int] = field(default_factory=list)
    dec_rnn_size: list[int] = field(default_factory=lambda: [256, 256])
    conductor_rnn_size: list[int] = field(default_factory=list)  # empty: same as dec_rnn_size
    # What the conductor reads at each bar: "zeros" (magenta: z only sets its initial state) or
    # "z" (z at every bar too, so late bars need not carry it through the conductor's state).
    conductor_input: str = "zeros"
    z_size: int = 256
    split_tracks: bool = False
    # Loss.
    free_bits: float = 0.0
    max_beta: float = 1.0
    beta_rate: float = 0.0
    # Where new codes come from: "standard" N(0, I) (magenta) or "fitted", a full-covariance
    # Gaussian fitted to the codes of `prior_fit_examples` training windows once training ends:
    # with a small β the codes leave N(0, I), and its draws land where the decoder never was.
    prior: str = "standard"
    prior_fit_examples: int = 4096
    # Optimisation (magenta's defaults).
    batch_size: int = 512
    learning_rate: float = 1e-3
    decay_rate: float = 0.9999
    min_learning_rate: float = 1e-5
    warmup_steps: int = 0  # >0: the rate rises linearly over these first steps (not magenta's)
    grad_clip: float = 1.0
    grad_norm_clip_to_zero: float = 10000.0  # a larger global norm skips the step
    grad_skip_factor: float = 0.0  # >0: skip a step whose norm exceeds this x the running mean
    dec_input_dropout: float = 0.0  # word dropout of the decoder's previous tokens (not magenta's)
    # >0: each bar's code (c_u, or z for a flat decoder) also predicts that bar's bag of tokens,
    # so z must carry the notes (Zhao et al. 2017's bag-of-words loss; not magenta's).
    bag_of_notes_weight: float = 0.0
    sampling_schedule: str = "constant"
    sampling_rate: float = 0.0
    # Data stream.
    transpose_range: int = 0
    shuffle_buffer: int = 0
    # Training loop.
    max_steps: int = 50_000
    max_minutes: float = 0.0  # 0: no time budget
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 500
    eval_examples: int = 2048  # examples of the eval split scored at every checkpoint
    eval_sampled_examples: int = 256  # of those, decoded greedily from mu (sampled accuracy)
    keep_best: bool = True  # model.pt: the checkpoint of lowest eval loss (False: the last step)
    precision: str = "auto"  # "auto": bf16 autocast where native (training/precision.py)
    cpu_threads: int = 0  # torch threads when training on CPU; 0 keeps torch's default

    @property
    def steps_per_bar(self) -> int:
        return STEPS_PER_BAR

    @property
    def max_seq_len(self) -> int:
        return self.num_bars * STEPS_PER_BAR

    @property
    def tracks(self) -> list[TrackSpec]:
        return TRACKS[self.kind]

    @property
    def conductor_sizes(self) -> list[int]:
        return list(self.conductor_rnn_size or self.dec_rnn_size)

    @property
    def shuffle_buffer_size(self) -> int:
        return self.shuffle_buffer or 10 * self.batch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings): safe for torch.load(weights_only=True) and YAML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Config:
        return _validated(cls(**_coerced(values)))


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError
    return int(value)


def _as_int_list(value: Any) -> list[int]:
    return [_as_int(v) for v in ([value] if isinstance(value, (int, float)) else value)]


# One coercion per field type; the resolved types, not the annotation strings, are the keys.
_COERCIONS = {bool: _as_bool, int: _as_int, float: float, str: str, list[int]: _as_int_list}
FIELD_TYPES: dict[str, Any] = typing.get_type_hints(Config)


def _coerced(values: dict[str, Any]) -> dict[str, Any]:
    """Check names and coerce YAML/JSON values to the field types."""
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; valid keys: {sorted(FIELD_TYPES)}")
    out = {}
    for key, value in values.items():
        kind = FIELD_TYPES[key]
        try:
            out[key] = _COERCIONS[kind](value)
        except (TypeError, ValueError):
            name = getattr(kind, "__name__", str(kind)) if kind != list[int] else "list[int]"
            raise ValueError(f"config key {key!r}: expected {name}, got {value!r}") from None
    return out


def _validated(cfg: Config) -> Config:
    if cfg.kind not in TRACKS:
        raise ValueError(f"kind {cfg.kind!r} is not one of {sorted(TRACKS)}")
    if cfg.decoder not in DECODERS:
        raise ValueError(f"decoder {cfg.decoder!r} is not one of {DECODERS}")
    if cfg.sampling_schedule not in SAMPLING_SCHEDULES:
        raise ValueError(f"sampling_schedule {cfg.sampling_schedule!r} not in {SAMPLING_SCHEDULES}")
    if cfg.sampling_schedule == "inverse_sigmoid" and cfg.sampling_rate < 1:
        raise ValueError("inverse_sigmoid sampling_rate must be at least 1")
    if cfg.sampling_schedule == "constant" and not 0 <= cfg.sampling_rate <= 1:
        raise ValueError("constant sampling_rate must be in [0, 1]")
    if cfg.sampling_schedule == "exponential" and not 0 < cfg.sampling_rate < 1:
        raise ValueError("exponential sampling_rate must be in (0, 1)")
    sizes = cfg.enc_rnn_size + cfg.dec_rnn_size + cfg.conductor_rnn_size
    if not cfg.enc_rnn_size or not cfg.dec_rnn_size or min(sizes) < 1:
        raise ValueError("rnn sizes must be non-empty lists of positive integers")
    for key in ("num_bars", "z_size", "batch_size", "max_steps", "log_every", "checkpoint_every"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"{key} must be positive, got {getattr(cfg, key)}")
    if cfg.enc_level_lengths and (
        min(cfg.enc_level_lengths) < 1 or math.prod(cfg.enc_level_lengths) != cfg.max_seq_len
    ):
        raise ValueError(
            f"enc_level_lengths {cfg.enc_level_lengths} must be positive and multiply to "
            f"max_seq_len {cfg.max_seq_len}"
        )
    if cfg.conductor_input not in CONDUCTOR_INPUTS:
        raise ValueError(f"conductor_input {cfg.conductor_input!r} not in {CONDUCTOR_INPUTS}")
    if cfg.conductor_input != "zeros" and cfg.decoder != "hierarchical":
        raise ValueError("conductor_input is only defined for the hierarchical decoder")
    if cfg.split_tracks and cfg.decoder != "hierarchical":
        raise ValueError("split_tracks is only defined for the hierarchical decoder")
    if not 0 <= cfg.dec_input_dropout < 1:
        raise ValueError("dec_input_dropout must be in [0, 1)")
    if cfg.bag_of_notes_weight < 0:
        raise ValueError("bag_of_notes_weight must be >= 0")
    if cfg.prior not in PRIORS:
        raise ValueError(f"prior {cfg.prior!r} not in {PRIORS}")
    if cfg.prior_fit_examples < 2:
        raise ValueError("prior_fit_examples must be at least 2")
    if cfg.precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision {cfg.precision!r} not in ('auto', 'bf16', 'fp32')")
    return cfg


# ---------------------------------------------------------------------------------------------
# The named configs.

_MEL_2BAR = dict(kind="melody", dataset="mel_2bar", num_bars=2)
_MEL_16BAR = dict(kind="melody", dataset="mel_16bar", num_bars=16)
_DRUMS_2BAR = dict(kind="drums", dataset="drums_2bar", num_bars=2)
_TRIO_16BAR = dict(kind="trio", dataset="trio_16bar", num_bars=16)
_SCHEDULED_SAMPLING = dict(sampling_schedule="inverse_sigmoid", sampling_rate=1000.0)

_PAPER: dict[str, dict[str, Any]] = {
    "cat-mel_2bar_small": dict(
        **_MEL_2BAR,
        **_SCHEDULED_SAMPLING,
        enc_rnn_size=[512],
        dec_rnn_size=[256, 256],
        z_size=256,
        free_bits=0,
        max_beta=0.2,
        beta_rate=0.99999,
        transpose_range=5,
    ),
    "cat-mel_2bar_big": dict(
        **_MEL_2BAR,
        **_SCHEDULED_SAMPLING,
        enc_rnn_size=[2048],
        dec_rnn_size=[2048, 2048, 2048],
        z_size=512,
        free_bits=0,
        max_beta=0.5,
        beta_rate=0.99999,
        transpose_range=5,
    ),
    "flat-mel_16bar": dict(
        **_MEL_16BAR,
        enc_rnn_size=[2048, 2048],
        dec_rnn_size=[2048, 2048, 2048],
        z_size=512,
        free_bits=256,
        max_beta=0.2,
    ),
    "hierdec-mel_16bar": dict(
        **_MEL_16BAR,
        decoder="hierarchical",
        enc_rnn_size=[2048, 2048],
        dec_rnn_size=[1024, 1024],
        z_size=512,
        free_bits=256,
        max_beta=0.2,
    ),
    "cat-drums_2bar_small": dict(
        **_DRUMS_2BAR,
        **_SCHEDULED_SAMPLING,
        enc_rnn_size=[512],
        dec_rnn_size=[256, 256],
        z_size=256,
        free_bits=48,
        max_beta=0.2,
    ),
    "flat-trio_16bar": dict(
        **_TRIO_16BAR,
        enc_rnn_size=[2048, 2048],
        dec_rnn_size=[2048, 2048, 2048],
        z_size=512,
        batch_size=256,
    ),
    "hierdec-trio_16bar": dict(
        **_TRIO_16BAR,
        decoder="hierarchical",
        split_tracks=True,
        enc_rnn_size=[2048, 2048],
        dec_rnn_size=[1024, 1024],
        z_size=512,
        free_bits=256,
        max_beta=0.2,
        batch_size=256,
    ),
}

# CPU variants: magenta's structure, losses and schedules with small LSTMs and batches, sized for
# minutes on 2 cores (params.yaml gives the budgets; docs/experiments.md has the measurements).
# One thread per process: two DDP processes, one per core, beat one process on two threads.
# The 16-bar variants keep magenta's half a free bit per z dimension and its learning-rate decay
# (0.9999; decaying 5x over the default run's 4,000 steps cost 0.04-0.05 nats per step), and
# skip the rare step whose gradient explodes through the encoder (it starts the hierarchical
# model's spikes). The hierarchical one also drops half its decoder's inputs so that it must read
# z (the flat one reconstructs better without it), and warms its learning rate up over 800
# steps, which keeps its early loss spike away.
# Both encode each bar on its own and then the 16 bars, as magenta's hier-* configs do.
# The 2-bar variants train teacher-forced (no scheduled sampling): at equal minutes they decode
# better greedily, since stepping through time made each step 1.7x slower (experiments, 20).
_CPU_2BAR = dict(
    enc_rnn_size=[128],
    dec_rnn_size=[128, 128],
    z_size=64,
    batch_size=64,
    learning_rate=3e-3,
    sampling_schedule="constant",
    sampling_rate=0.0,
)
_CPU_16BAR = dict(
    enc_rnn_size=[96],
    enc_level_lengths=[16, 16],
    dec_rnn_size=[96],
    z_size=64,
    batch_size=32,
    learning_rate=2e-3,
    free_bits=32,
    grad_skip_factor=10.0,
)
# A small constant β without free bits lets the 16-bar melody codes carry 100-250 bits (lower
# NLL); the fitted prior keeps samples where those codes lie (experiments, 22).
_CPU_16BAR_KL = dict(free_bits=0, max_beta=0.02, prior="fitted")
_CPU: dict[str, tuple[str, dict[str, Any]]] = {
    # its codes spread over 0.45 of N(0, I): 72 % of N(0, I)'s samples were leaps (experiments, 22)
    "cat-mel_2bar_cpu": ("cat-mel_2bar_small", dict(_CPU_2BAR, prior="fitted")),
    "cat-drums_2bar_cpu": ("cat-drums_2bar_small", dict(_CPU_2BAR)),
    "flat-mel_16bar_cpu": ("flat-mel_16bar", dict(_CPU_16BAR, **_CPU_16BAR_KL)),
    "hierdec-mel_16bar_cpu": (
        "hierdec-mel_16bar",
        # bag of notes and z into the conductor: each ahead of the same run without it at every
        # checkpoint (experiments, 17 and 18)
        dict(
            _CPU_16BAR,
            **_CPU_16BAR_KL,
            conductor_rnn_size=[96],
            dec_input_dropout=0.5,
            warmup_steps=800,
            bag_of_notes_weight=1.0,
            conductor_input="z",
        ),
    ),
    "flat-trio_16bar_cpu": ("flat-trio_16bar", dict(_CPU_16BAR, free_bits=0)),
    "hierdec-trio_16bar_cpu": (
        "hierdec-trio_16bar",
        dict(_CPU_16BAR, conductor_rnn_size=[96], dec_input_dropout=0.5, warmup_steps=800),
    ),
}
for _cpu in _CPU.values():
    _cpu[1].update(
        max_steps=100_000,
        max_minutes=8.0,
        checkpoint_every=200,
        eval_examples=1024,
        cpu_threads=1,
    )

_TINY_SIZES = dict(
    enc_rnn_size=[32],
    dec_rnn_size=[32],
    z_size=16,
    batch_size=16,
    max_steps=20,
    log_every=5,
    checkpoint_every=10,
    eval_examples=64,
    cpu_threads=1,
)
_TINY: dict[str, tuple[str, dict[str, Any]]] = {
    f"{family}_tiny": (paper, dict(_TINY_SIZES))
    for family, paper in (
        ("cat-mel_2bar", "cat-mel_2bar_small"),
        ("cat-drums_2bar", "cat-drums_2bar_small"),
        ("flat-mel_16bar", "flat-mel_16bar"),
        ("hierdec-mel_16bar", "hierdec-mel_16bar"),
        ("flat-trio_16bar", "flat-trio_16bar"),
        ("hierdec-trio_16bar", "hierdec-trio_16bar"),
    )
}
for _name in ("flat-mel_16bar_tiny", "hierdec-mel_16bar_tiny", "hierdec-trio_16bar_tiny"):
    _TINY[_name][1]["free_bits"] = 8


def _named() -> dict[str, dict[str, Any]]:
    named = {name: dict(values, name=name) for name, values in _PAPER.items()}
    for variants in (_CPU, _TINY):
        for name, (base, changes) in variants.items():
            named[name] = dict(_PAPER[base], **changes, name=name)
    return named


CONFIGS: dict[str, dict[str, Any]] = _named()
PAPER_CONFIGS: list[str] = list(_PAPER)  # magenta's configs, in the paper's order


def config_names() -> list[str]:
    return sorted(CONFIGS)


def get_config(name: str, overrides: dict[str, Any] | None = None) -> Config:
    """The named config with `overrides` (field -> value, e.g. from params.yaml) applied.

    Raises ValueError on an unknown name, an unknown key or a value of the wrong type.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; known configs: {config_names()}")
    values = dict(CONFIGS[name])
    values.update(overrides or {})
    if values["name"] != name:
        raise ValueError("the config name cannot be overridden")
    return Config.from_dict(values)


# ---------------------------------------------------------------------------------------------
# Where overrides come from: params.yaml's train sections and --set


def params_overrides(params_path: str | None, model: str) -> dict[str, Any]:
    """`train.defaults` merged with `train.<model>` from a params.yaml (both optional), read the
    way every stage reads its section (pipelines.params.read_section)."""
    if not params_path:
        return {}
    section = read_section(params_path, "train")
    overrides = {}
    for name in ("defaults", model):
        values = section.get(name) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{params_path}: train.{name} must be a mapping")
        overrides.update(values)
    return overrides


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """--set key=value pairs, values parsed as YAML (numbers, lists, booleans)."""
    out = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out
