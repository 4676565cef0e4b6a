"""`musicvae`: make music with a trained MusicVAE from the command line.

    musicvae sample -n 4 --temperature 0.5 --seed 1 -o samples/
    musicvae interpolate a.mid b.mid --steps 7 -o morph/
    musicvae encode a.mid b.mid -o codes.npy
    musicvae decode codes.npy -o decoded/
    musicvae attribute compute
    musicvae attribute apply tune.mid --attribute note_density --strength 1.5 -o denser.mid
    musicvae attribute effects --json effects.json

`--model` is a registered model (``models:/<name>@<alias>`` or ``models:/<name>/<version>``, from
the tracking server of `training.tracking`: the repo's ``mlflow/mlflow.db`` unless
MLFLOW_TRACKING_URI says otherwise) or a ``model.pt`` checkpoint (a file, or its folder). It
defaults to ``$MUSICVAE_MODEL``, else to the champion of ``musicvae-hierdec-mel_16bar_cpu``.

Attribute vectors (`evaluation.cli.attributes`) are kept with the model they belong to: next to a
checkpoint as ``attribute_vectors.npz``; for a registered model, as the artifact
``attribute_vectors/attribute_vectors.npz`` of the run the version was registered from, so
everyone using the tracking server shares them. They record the sha256 of the weights they were
computed with, and a model whose weights changed refuses stale vectors.

Mistakes in what the user typed or gave (a missing file, not a MIDI file, no 4/4 section, an
output that exists without --force, ...) end with one line on stderr and exit status 1;
argparse's usage errors exit with 2. Nothing is written unless every output can be written.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL_NAME = "musicvae-hierdec-mel_16bar_cpu"
MODEL_ENV = "MUSICVAE_MODEL"
EXIT_USER_ERROR = 1
VECTORS_ARTIFACT_DIR = "attribute_vectors"
DEFAULT_ATTRIBUTE_LIMIT = 20_000  # sequences encoded for `attribute compute` (0: all)


class UserError(Exception):
    """A mistake the user can fix; printed as one line, never as a traceback."""


def default_model() -> str:
    return os.environ.get(MODEL_ENV) or f"models:/{DEFAULT_MODEL_NAME}@champion"


# ---------------------------------------------------------------------------------------------
# Outputs: every path is checked before anything is written


class Outputs:
    """The files one command writes; refused up front when one exists and --force is not set."""

    def __init__(self, force: bool) -> None:
        self.force = force
        self.paths: list[Path] = []

    def add(self, path: str | Path) -> Path:
        path = Path(path)
        if path.is_dir():
            raise UserError(f"{path}: is a directory, expected a file name")
        self.paths.append(path)
        return path

    def check(self) -> None:
        existing = [str(p) for p in self.paths if p.exists()]
        if existing and not self.force:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            verb = "exists" if len(existing) == 1 else "exist"
            raise UserError(
                f"{', '.join(existing[:3])}{more} already {verb}; use --force to overwrite"
            )
        for path in self.paths:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise UserError(
                    f"{path.parent}: cannot create the folder ({error.strerror})"
                ) from error


def write_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file, so that a failure never leaves half a file behind."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


# ---------------------------------------------------------------------------------------------
# The model


@dataclass
class LoadedModel:
    """A model ready to use, and where it came from."""

    model: object  # training.model.MusicVAE, in eval mode on the CPU
    cfg: object  # training.configs.Config
    source: str  # the --model argument
    weights_sha256: str  # identifies the weights (attribute vectors are tied to them)
    checkpoint: Path | None = None  # the model.pt file of a checkpoint
    run_id: str | None = None  # the run a registered version came from

    @property
    def kind(self) -> str:
        return self.cfg.kind

    @property
    def num_steps(self) -> int:
        return self.cfg.max_seq_len


_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


def load_model(source: str) -> LoadedModel:
    """Load `--model`: a registered model URI or a checkpoint path."""
    if source.startswith("models:/"):
        return _load_registered(source)
    path = Path(source)
    if path.is_dir():
        path = path / "model.pt"
    if not path.exists():
        raise UserError(
            f"{path}: no such model file (pass a model.pt checkpoint, its folder, or "
            "models:/<name>@<alias>)"
        )
    from evaluation.registry.versions import file_sha256
    from training.checkpoint import load_model as load_checkpoint

    try:
        model, cfg = load_checkpoint(path)
    except Exception as error:  # any unreadable file: the user pointed at the wrong thing
        raise UserError(f"{path}: not a MusicVAE model file ({type(error).__name__})") from error
    return LoadedModel(model, cfg, source, file_sha256(path), checkpoint=path)


def _load_registered(uri: str) -> LoadedModel:
    match = _MODEL_URI.match(uri)
    if not match:
        raise UserError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from evaluation.registry.versions import KEY_TAG
    from training import tracking

    logging.getLogger("mlflow").setLevel(logging.ERROR)  # requirement-mismatch chatter
    tracking_uri = tracking.configure()
    client = MlflowClient()
    name = match["name"]
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"])
        else:
            version = client.get_model_version(name, match["version"])
    except MlflowException as error:
        raise UserError(
            f"{uri}: not in the model registry at {tracking_uri} ({error.message.splitlines()[0]}); "
            "register a model first (dvc repro) or pass --model path/to/model.pt"
        ) from error
    # Loading puts the model's copy of the project's code first on sys.path; the CLI goes on
    # with the installed code, so that both never mix in one process.
    path = list(sys.path)
    try:
        wrapper = mlflow.pyfunc.load_model(
            f"models:/{name}/{version.version}"
        ).unwrap_python_model()
    finally:
        sys.path[:] = path
    key = version.tags.get(KEY_TAG) or f"{name}/{version.version}"
    return LoadedModel(wrapper.model, wrapper.cfg, uri, key, run_id=version.run_id)


# ---------------------------------------------------------------------------------------------
# Attribute vectors beside their model


def _vectors_path(loaded: LoadedModel) -> Path:
    from evaluation.cli.attributes import VECTORS_FILENAME

    return loaded.checkpoint.parent / VECTORS_FILENAME


def check_vectors_target(loaded: LoadedModel, force: bool) -> None:
    """Refuse (before the long computation) to replace existing vectors without --force."""
    from evaluation.cli.attributes import VECTORS_FILENAME

    if loaded.checkpoint is not None:
        outputs = Outputs(force)
        outputs.add(_vectors_path(loaded))
        outputs.check()
        return
    if not loaded.run_id:
        raise UserError(f"{loaded.source}: the version has no run to keep attribute vectors in")
    from mlflow import MlflowClient

    target = f"{VECTORS_ARTIFACT_DIR}/{VECTORS_FILENAME}"
    existing = [a.path for a in MlflowClient().list_artifacts(loaded.run_id, VECTORS_ARTIFACT_DIR)]
    if target in existing and not force:
        raise UserError(
            f"{loaded.source} already has attribute vectors (run {loaded.run_id}, {target}); "
            "use --force to overwrite"
        )


def save_vectors(loaded: LoadedModel, vectors) -> str:
    """Store attribute vectors with their model (see the module docstring); returns where."""
    from evaluation.cli.attributes import VECTORS_FILENAME

    if loaded.checkpoint is not None:
        return str(vectors.save(_vectors_path(loaded)))
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as folder:
        local = vectors.save(Path(folder) / VECTORS_FILENAME)
        MlflowClient().log_artifact(loaded.run_id, str(local), VECTORS_ARTIFACT_DIR)
    return f"runs:/{loaded.run_id}/{VECTORS_ARTIFACT_DIR}/{VECTORS_FILENAME}"


def load_vectors(loaded: LoadedModel):
    """The model's attribute vectors; UserError when there are none or they are stale."""
    from evaluation.cli.attributes import VECTORS_FILENAME, AttributeVectors

    hint = f"compute them first: musicvae attribute compute --model {loaded.source}"
    if loaded.checkpoint is not None:
        path = _vectors_path(loaded)
        if not path.exists():
            raise UserError(f"{path}: no attribute vectors for this model; {hint}")
        vectors = AttributeVectors.load(path)
    else:
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=loaded.run_id, artifact_path=f"{VECTORS_ARTIFACT_DIR}/{VECTORS_FILENAME}"
            )
        except (MlflowException, OSError) as error:
            raise UserError(
                f"{loaded.source}: no attribute vectors for this model; {hint}"
            ) from error
        vectors = AttributeVectors.load(path)
    if vectors.metadata.get("weights_sha256") != loaded.weights_sha256:
        raise UserError(
            f"the attribute vectors of {loaded.source} were computed with other weights; "
            f"{hint} --force"
        )
    return vectors


# ---------------------------------------------------------------------------------------------
# Shared steps of the commands


def _seed(args: argparse.Namespace) -> int:
    """The seed given, or a fresh one, printed (when decoding samples) for reproducing."""
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
        if args.temperature > 0:
            print(f"seed {args.seed} (pass --seed {args.seed} to reproduce)", file=sys.stderr)
    return args.seed


def _read_inputs(paths: Sequence[str]) -> list:
    """Parse the input MIDI files before the model is loaded: a bad file fails fast."""
    from pipelines.extract.midi_input import InputError, read_notesequence

    try:
        return [(path, read_notesequence(path)) for path in paths]
    except InputError as error:
        raise UserError(str(error)) from error


def _windows(loaded: LoadedModel, inputs: Sequence, args: argparse.Namespace) -> list:
    """The window of each parsed input that the model reads (see pipelines.extract.midi_input)."""
    from pipelines.extract.midi_input import InputError, extract_window

    windows = []
    for path, notes in inputs:
        try:
            window = extract_window(
                notes,
                loaded.cfg.dataset,
                track=args.track,
                start_bar=args.start_bar,
                source=str(path),
            )
        except InputError as error:
            raise UserError(str(error)) from error
        print(f"input {window.describe()}", file=sys.stderr)
        windows.append(window)
    return windows


def _write_music(
    loaded: LoadedModel,
    tokens: np.ndarray,
    midi_paths: Sequence[Path],
    png_paths: Sequence[Path] | None,
    captions: Sequence[str],
    qpm: float,
) -> None:
    """One MIDI file (and one piano-roll PNG) per sequence of ``tokens`` ``[N, T, K]``."""
    from evaluation.pianoroll import plot_sequences
    from pipelines.representation import tokens_to_midi_bytes, tokens_to_notesequence

    for i, sequence in enumerate(np.asarray(tokens)):
        write_bytes(midi_paths[i], tokens_to_midi_bytes(sequence, loaded.kind, qpm=qpm))
        if png_paths is not None:
            notes = tokens_to_notesequence(sequence, loaded.kind, qpm=qpm)
            plot_sequences([(captions[i], notes)], png_paths[i], num_steps=len(sequence))


def _qpm(args: argparse.Namespace, windows: Sequence = ()) -> float:
    from training.generate import checked_qpm

    qpm = args.qpm if args.qpm is not None else (windows[0].qpm if windows else 120.0)
    try:
        return checked_qpm(qpm)
    except ValueError as error:
        raise UserError(f"--{error}") from None


def _temperature(args: argparse.Namespace) -> float:
    from training.generate import checked_temperature

    try:
        return checked_temperature(args.temperature)
    except ValueError as error:
        raise UserError(f"--{error}") from None


def _report(paths: Sequence[Path]) -> None:
    for path in paths:
        print(path)


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_sample(args: argparse.Namespace) -> None:
    from training import generate

    if args.num < 1:
        raise UserError(f"-n must be >= 1, got {args.num}")
    temperature, qpm = _temperature(args), _qpm(args)
    out = Path(args.output_dir)
    outputs = Outputs(args.force)
    midis = [outputs.add(out / f"{args.prefix}-{i:03d}.mid") for i in range(args.num)]
    pngs = None if args.no_png else [outputs.add(p.with_suffix(".png")) for p in midis]
    outputs.check()
    loaded = load_model(args.model)
    seed = _seed(args)
    _, tokens = generate.sample(loaded.model, args.num, temperature=temperature, seed=seed)
    captions = [f"sample {i} (seed {seed}, temperature {temperature:g})" for i in range(args.num)]
    _write_music(loaded, tokens.numpy(), midis, pngs, captions, qpm)
    _report(outputs.paths)


def cmd_interpolate(args: argparse.Namespace) -> None:
    from evaluation.pianoroll import plot_sequences
    from pipelines.representation import tokens_to_midi_bytes, tokens_to_notesequence
    from training import generate

    if args.steps < 2:
        raise UserError(f"--steps must be >= 2, got {args.steps}")
    temperature = _temperature(args)
    out = Path(args.output_dir)
    outputs = Outputs(args.force)
    midis = [outputs.add(out / f"{args.prefix}-{i:02d}.mid") for i in range(args.steps)]
    joined = outputs.add(out / f"{args.prefix}.mid")
    strip = None if args.no_png else outputs.add(out / f"{args.prefix}.png")
    outputs.check()
    inputs = _read_inputs([args.a, args.b])
    loaded = load_model(args.model)
    a, b = _windows(loaded, inputs, args)
    qpm = _qpm(args, [a])
    seed = _seed(args)
    _, tokens = generate.interpolate(
        loaded.model, a.tokens, b.tokens, args.steps, temperature=temperature, seed=seed
    )
    tokens = tokens.numpy()
    alphas = np.linspace(0.0, 1.0, args.steps)
    _write_music(loaded, tokens, midis, None, [], qpm)
    write_bytes(joined, tokens_to_midi_bytes(np.concatenate(list(tokens)), loaded.kind, qpm=qpm))
    # The endpoints decode A's and B's codes: how well they match says whether the model
    # reconstructs at all, which a user should know before judging the path between.
    for name, window, decoded in (("A", a, tokens[0]), ("B", b, tokens[-1])):
        accuracy = float((decoded == np.asarray(window.tokens)).mean())
        print(
            f"reconstruction of {name} (alpha {0 if name == 'A' else 1}): accuracy {accuracy:.3f}",
            file=sys.stderr,
        )
    if strip is not None:
        panels = [
            (
                f"input A: {Path(args.a).name}",
                tokens_to_notesequence(np.asarray(a.tokens), loaded.kind, qpm=qpm),
            )
        ]
        panels += [
            (f"alpha {alpha:.2f}", tokens_to_notesequence(seq, loaded.kind, qpm=qpm))
            for alpha, seq in zip(alphas, tokens, strict=True)
        ]
        panels.append(
            (
                f"input B: {Path(args.b).name}",
                tokens_to_notesequence(np.asarray(b.tokens), loaded.kind, qpm=qpm),
            )
        )
        title = f"{Path(args.a).name} -> {Path(args.b).name} (slerp, temperature {temperature:g})"
        plot_sequences(panels, strip, num_steps=tokens.shape[1], title=title)
    _report(outputs.paths)


def cmd_encode(args: argparse.Namespace) -> None:
    from training import generate

    outputs = Outputs(args.force)
    path = outputs.add(args.output)
    if path.suffix != ".npy":
        raise UserError(f"{path}: the output of encode is a .npy file")
    outputs.check()
    inputs = _read_inputs(args.inputs)
    loaded = load_model(args.model)
    windows = _windows(loaded, inputs, args)
    mu = generate.encode(loaded.model, np.stack([w.tokens for w in windows])).numpy()
    with path.open("wb") as f:
        np.save(f, mu.astype(np.float32))
    print(f"{path}: {mu.shape[0]} latent code{'s' if len(mu) > 1 else ''} of size {mu.shape[1]}")


def _read_codes(path: str, size: int) -> np.ndarray:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such file")
    try:
        codes = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{path}: not a .npy array file ({error})") from error
    if codes.ndim == 1:
        codes = codes[None]
    if codes.ndim != 2 or codes.shape[1] != size or not np.issubdtype(codes.dtype, np.number):
        raise UserError(
            f"{path}: expected latent codes of shape [N, {size}] or [{size}], got {codes.shape}"
        )
    if len(codes) == 0 or not np.isfinite(codes).all():
        raise UserError(f"{path}: latent codes must be finite and at least one")
    return codes.astype(np.float32)


def cmd_decode(args: argparse.Namespace) -> None:
    from training import generate

    temperature, qpm = _temperature(args), _qpm(args)
    loaded = load_model(args.model)
    codes = _read_codes(args.codes, generate.latent_size(loaded.model))
    out = Path(args.output_dir)
    outputs = Outputs(args.force)
    midis = [outputs.add(out / f"{args.prefix}-{i:03d}.mid") for i in range(len(codes))]
    pngs = None if args.no_png else [outputs.add(p.with_suffix(".png")) for p in midis]
    outputs.check()
    seed = _seed(args)
    tokens = generate.decode(loaded.model, codes, temperature=temperature, seed=seed).numpy()
    captions = [f"code {i} of {Path(args.codes).name}" for i in range(len(codes))]
    _write_music(loaded, tokens, midis, pngs, captions, qpm)
    _report(outputs.paths)


def _dataset_tokens(loaded: LoadedModel, args: argparse.Namespace, split: str) -> np.ndarray:
    from training.data import load_split

    folder = args.data or os.path.join("datasets", loaded.cfg.dataset)
    try:
        tokens = load_split(folder, split, loaded.cfg.tracks, loaded.cfg.num_bars)
    except (FileNotFoundError, ValueError) as error:
        raise UserError(str(error)) from error
    if args.limit and len(tokens) > args.limit:
        # A seeded random subset: shards are in file order, so their head would be biased.
        rows = np.random.default_rng(0).choice(len(tokens), args.limit, replace=False)
        tokens = tokens[np.sort(rows)]
    print(f"{len(tokens)} sequences of the {split} split of {folder}", file=sys.stderr)
    return tokens


def cmd_attribute_compute(args: argparse.Namespace) -> None:
    from evaluation.cli.attributes import compute_attribute_vectors

    loaded = load_model(args.model)
    check_vectors_target(loaded, args.force)
    tokens = _dataset_tokens(loaded, args, args.split)
    if len(tokens) < 4:
        raise UserError(f"{len(tokens)} sequences are too few for quartiles (need at least 4)")
    metadata = {
        "weights_sha256": loaded.weights_sha256,
        "model": loaded.source,
        "config": loaded.cfg.name,
        "split": args.split,
    }
    vectors = compute_attribute_vectors(loaded.model, tokens, loaded.kind, metadata=metadata)
    where = save_vectors(loaded, vectors)
    for name, low, high, size, vector in zip(
        vectors.names,
        vectors.low_threshold,
        vectors.high_threshold,
        vectors.quartile_size,
        vectors.vectors,
        strict=True,
    ):
        if size == 0:
            print(f"{name:18s} undefined on these sequences: no vector", file=sys.stderr)
            continue
        print(
            f"{name:18s} bottom quartile <= {low:.3f}, top >= {high:.3f} ({size} each); "
            f"|vector| = {np.linalg.norm(vector):.3f}",
            file=sys.stderr,
        )
    print(where)


def cmd_attribute_apply(args: argparse.Namespace) -> None:
    import torch

    from evaluation.cli.attributes import ATTRIBUTES
    from training import generate

    if args.attribute not in ATTRIBUTES:
        raise UserError(
            f"unknown attribute {args.attribute!r}; choose from {', '.join(ATTRIBUTES)}"
        )
    temperature = _temperature(args)
    outputs = Outputs(args.force)
    midi = outputs.add(args.output)
    png = None if args.no_png else outputs.add(midi.with_suffix(".png"))
    outputs.check()
    inputs = _read_inputs([args.input])
    loaded = load_model(args.model)
    vectors = load_vectors(loaded)
    if args.attribute not in vectors.defined_names:
        raise UserError(
            f"no {args.attribute} vector for this model: the attribute is undefined on its "
            f"sequences (defined: {', '.join(vectors.defined_names)})"
        )
    (window,) = _windows(loaded, inputs, args)
    qpm = _qpm(args, [window])
    seed = _seed(args)
    mu = generate.encode(loaded.model, window.tokens[None])
    shift = torch.as_tensor(vectors.vector(args.attribute), dtype=mu.dtype)
    tokens = generate.decode(
        loaded.model, mu + args.strength * shift, temperature=temperature, seed=seed
    ).numpy()
    caption = f"{Path(args.input).name} {args.strength:+g} x {args.attribute}"
    _write_music(loaded, tokens, [midi], None if png is None else [png], [caption], qpm)
    _report(outputs.paths)


def cmd_attribute_effects(args: argparse.Namespace) -> None:
    from evaluation.cli.attributes import attribute_effects

    outputs = Outputs(args.force)
    path = outputs.add(args.json) if args.json else None
    outputs.check()
    loaded = load_model(args.model)
    vectors = load_vectors(loaded)
    tokens = _dataset_tokens(loaded, args, args.split)
    effects = attribute_effects(
        loaded.model,
        tokens,
        loaded.kind,
        vectors,
        strength=args.strength,
        temperature=_temperature(args),
        seed=args.seed if args.seed is not None else 0,
    )
    print(format_effects(effects))
    if path is not None:
        result = dict(effects.to_dict(), model=loaded.source, split=args.split)
        write_bytes(path, (json.dumps(result, indent=2) + "\n").encode())
        print(path)


def format_effects(effects) -> str:
    """The percent-change matrix as a table: rows = vector added, columns = attribute measured."""
    from evaluation.cli.attributes import LABELS

    width = max(len(LABELS[n]) for n in effects.vector_names) + 2
    lines = [
        f"percent change of each attribute (columns) when adding {effects.strength:g} x a vector "
        f"(rows), {effects.num_inputs} inputs, against decoding the unchanged code:",
        " " * width + "".join(f"{LABELS[n]:>12s}" for n in effects.measured_names),
    ]
    for name, row in zip(effects.vector_names, effects.percent_change, strict=True):
        cells = "".join(f"{v:>+11.1f}%" if np.isfinite(v) else f"{'-':>12s}" for v in row)
        lines.append(f"{LABELS[name]:<{width}s}{cells}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line


# Option groups shared by the commands, as argparse parents.


def _options() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def _model_options() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument(
        "--model",
        default=default_model(),
        help="models:/<name>@<alias>, models:/<name>/<version> or a model.pt path "
        f"(default: ${MODEL_ENV} or models:/{DEFAULT_MODEL_NAME}@champion)",
    )
    return p


def _decoding_options(temperature: float) -> argparse.ArgumentParser:
    p = _options()
    p.add_argument(
        "-t",
        "--temperature",
        type=float,
        default=temperature,
        help=f"sampling temperature, 0 = greedy (default {temperature:g})",
    )
    p.add_argument("--seed", type=int, help="random seed (default: a fresh one, printed)")
    return p


def _input_options() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("--track", type=int, help="MIDI track to read (default: the first usable)")
    p.add_argument("--start-bar", type=int, help="first bar of the window (default: earliest)")
    return p


def _output_options(prefix: str) -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("-o", "--output-dir", default=".", help="folder of the files (default .)")
    p.add_argument("--prefix", default=prefix, help=f"file name prefix (default {prefix})")
    p.add_argument("--no-png", action="store_true", help="skip the piano-roll PNGs")
    return p


def _qpm_options() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument(
        "--qpm", type=float, help="tempo of the MIDI written (default 120 or the input's)"
    )
    return p


def _common_options() -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    return p


def _data_options(split: str, limit: int) -> argparse.ArgumentParser:
    p = _options()
    p.add_argument("--data", help="dataset folder (default datasets/<the model's dataset>)")
    p.add_argument("--split", default=split, help=f"split to read (default {split})")
    p.add_argument(
        "--limit", type=int, default=limit, help=f"random subset, 0 = all (default {limit})"
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicvae",
        description="Sample, interpolate, encode, decode and edit music with a trained MusicVAE.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    model, inputs, qpm, common = (
        _model_options(),
        _input_options(),
        _qpm_options(),
        _common_options(),
    )
    greedy = _decoding_options(0.0)

    p = commands.add_parser(
        "sample",
        help="new sequences from the prior",
        parents=[model, _decoding_options(0.5), _output_options("sample"), qpm, common],
    )
    p.add_argument("-n", "--num", type=int, default=4, help="how many (default 4)")
    p.set_defaults(run=cmd_sample)

    p = commands.add_parser(
        "interpolate",
        help="slerp between the latent codes of two MIDI files",
        # Sampled at 0.5 as magenta's music_vae_generate: greedy decoding holds notes.
        parents=[
            model,
            _decoding_options(0.5),
            inputs,
            _output_options("interpolation"),
            qpm,
            common,
        ],
    )
    p.add_argument("a", help="MIDI file A (alpha = 0)")
    p.add_argument("b", help="MIDI file B (alpha = 1)")
    p.add_argument("--steps", type=int, default=7, help="points, both ends included (default 7)")
    p.set_defaults(run=cmd_interpolate)

    p = commands.add_parser(
        "encode",
        help="MIDI files -> latent codes (posterior means), .npy",
        parents=[model, inputs, common],
    )
    p.add_argument("inputs", nargs="+", help="MIDI files")
    p.add_argument("-o", "--output", required=True, help="the .npy file: [N, Z] float32")
    p.set_defaults(run=cmd_encode)

    p = commands.add_parser(
        "decode",
        help="latent codes (.npy, [N, Z] or [Z]) -> MIDI files",
        parents=[model, greedy, _output_options("decoded"), qpm, common],
    )
    p.add_argument("codes", help=".npy file of latent codes")
    p.set_defaults(run=cmd_decode)

    p = commands.add_parser("attribute", help="attribute vectors (note density, intervals, ...)")
    attribute = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = attribute.add_parser(
        "compute",
        help="vectors from the training set: mean z of top minus bottom quartile",
        parents=[model, _data_options("train", DEFAULT_ATTRIBUTE_LIMIT), common],
    )
    p.set_defaults(run=cmd_attribute_compute)

    p = attribute.add_parser(
        "apply",
        help="add (or subtract) an attribute vector to a MIDI file",
        parents=[model, greedy, inputs, qpm, common],
    )
    p.add_argument("input", help="MIDI file")
    p.add_argument(
        "--attribute",
        required=True,
        help="note_density, average_interval, syncopation_16th, syncopation_8th or c_diatonic",
    )
    p.add_argument(
        "--strength", type=float, default=1.0, help="multiple of the vector; < 0 subtracts"
    )
    p.add_argument("-o", "--output", required=True, help="the MIDI file to write")
    p.add_argument("--no-png", action="store_true", help="skip the piano-roll PNG")
    p.set_defaults(run=cmd_attribute_apply)

    p = attribute.add_parser(
        "effects",
        help="how much each vector changes each attribute, on held-out data",
        parents=[model, greedy, _data_options("test", 256), common],
    )
    p.add_argument("--strength", type=float, default=1.0, help="multiple of the vectors added")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.set_defaults(run=cmd_attribute_effects)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # note_seq's audio module looks for ffmpeg at import; nothing here plays audio.
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as error:
        print(f"musicvae: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("musicvae: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
