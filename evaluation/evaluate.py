"""Evaluate one trained model on the test split of its dataset (the DVC `evaluate` stage).

    python -m evaluation.evaluate --model hierdec-mel_16bar_cpu [--params params.yaml]
                                  [--out eval/<model>] [--models-dir models]
                                  [--datasets-root datasets] [--no-mlflow]

Reads ``models/<model>/model.pt`` and ``datasets/<dataset>/test-*.parquet`` and writes, in --out:

- ``metrics.json``: flat numbers for ``dvc metrics show`` (accuracies with 95 % bootstrap
  intervals and the majority-class floor, ELBO terms, posterior-collapse figures, interpolation
  smoothness and naturalness);
- ``interpolation.csv`` (one row per alpha, a column per method and quantity) and
  ``per_bar.csv`` (one row per bar): data for ``dvc plots``;
- ``per_example.csv`` (accuracies per test example, for paired comparisons),
  ``latent_dims.csv`` (KL and variance of E[z|x] per latent dimension), ``model_info.json``;
- ``figures/``: piano rolls of reconstructions, interpolations and prior samples, and the
  interpolation curves; ``midi/``: the same music as MIDI files; ``audio/``: WAV renders when
  FluidSynth is installed (``audio/STATUS.txt`` says why not otherwise).

Every number and file is also logged into the model's MLflow training run (its id is in
model.pt), metrics under ``test/``, files under the artifact folder ``evaluation/``.
Settings come from the ``evaluate`` section of params.yaml (`evaluation.params.EvaluateParams`).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from note_seq import sequences_lib

from evaluation import audio, pianoroll, scoring
from evaluation import interpolation as interp
from evaluation.lm import load_lm
from evaluation.params import EvaluateParams
from evaluation.testset import load_examples
from pipelines import representation as rep
from pipelines.params import read_params
from training import generate, tracking
from training.checkpoint import load_model, read_model_file, training_run_id

# Piano-roll titles of the interpolation methods (scoring.Interpolations).
_INTERPOLATION_TITLES = {
    "latent": "latent-space interpolation (greedy)",
    "sampled": "latent-space interpolation (sampled)",
    "data": "data-space interpolation",
}

# ---------------------------------------------------------------------------------------------
# Files


def write_csv(path: Path, columns: dict[str, Any], digits: int | None = 6) -> Path:
    """Columns of equal length -> CSV with a header; floats rounded to `digits` (None: exact)."""
    names = list(columns)
    rows = zip(*(np.asarray(columns[n]).tolist() for n in names), strict=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for row in rows:
            writer.writerow(
                [
                    round(v, digits) if isinstance(v, float) and digits is not None else v
                    for v in row
                ]
            )
    return path


def _write_midi(path: Path, sequence) -> Path:
    path.write_bytes(rep.notesequence_to_midi_bytes(sequence))
    return path


def write_music(
    out: Path,
    kind: str,
    tokens: np.ndarray,
    rec: scoring.Reconstructions,
    interpolations: scoring.Interpolations,
    samples: np.ndarray,
    settings: EvaluateParams,
    model_name: str,
) -> list[str]:
    """Piano rolls, MIDI and (when possible) WAV of what people look at and listen to.

    Returns notes on what was skipped.
    """
    figures, midi, wav = out / "figures", out / "midi", out / "audio"
    for folder in (figures, midi, wav):
        shutil.rmtree(folder, ignore_errors=True)  # no stale files from an earlier run
        folder.mkdir(parents=True)
    steps = tokens.shape[1]
    to_seq = functools.partial(rep.tokens_to_notesequence, kind=kind, qpm=settings.qpm)
    listen: list[tuple[str, Any]] = []

    n_rec = min(settings.num_reconstruction_plots, len(tokens))
    panels = []
    for i in range(n_rec):
        original, sampled = to_seq(tokens[i]), to_seq(rec.sampled[i])
        panels += [(f"example {i}: original", original), (f"example {i}: reconstruction", sampled)]
        _write_midi(midi / f"reconstruction_{i:02d}_original.mid", original)
        _write_midi(midi / f"reconstruction_{i:02d}_reconstruction.mid", sampled)
        listen.append(
            (f"reconstruction_{i:02d}", sequences_lib.concatenate_sequences([original, sampled]))
        )
    if panels:
        pianoroll.plot_sequences(
            panels,
            figures / "reconstructions.png",
            steps,
            title=f"{model_name}: test examples and their greedy reconstructions from z = mu",
        )

    n_interp = min(settings.num_interpolation_plots, len(interpolations.pairs))
    for p in range(n_interp):
        a_index, b_index = interpolations.pairs[p]
        for method in interpolations.methods:
            steps_tokens = getattr(interpolations, method)[p]
            sequences = [to_seq(t) for t in steps_tokens]
            rows = [("A (original)", to_seq(tokens[a_index]))]
            rows += [
                (f"alpha = {a:.1f}", s)
                for a, s in zip(interpolations.alphas, sequences, strict=True)
            ]
            rows += [("B (original)", to_seq(tokens[b_index]))]
            pianoroll.plot_sequences(
                rows,
                figures / f"interpolation_{p:02d}_{method}.png",
                steps,
                title=f"{model_name}: {_INTERPOLATION_TITLES[method]} A -> B",
            )
            joined = sequences_lib.concatenate_sequences(sequences)
            _write_midi(midi / f"interpolation_{p:02d}_{method}.mid", joined)
            listen.append((f"interpolation_{p:02d}_{method}", joined))

    sample_sequences = [to_seq(t) for t in samples]
    for i, sequence in enumerate(sample_sequences):
        _write_midi(midi / f"sample_{i:02d}.mid", sequence)
    if sample_sequences:
        pianoroll.plot_sequences(
            [(f"sample {i}", s) for i, s in enumerate(sample_sequences)],
            figures / "samples.png",
            steps,
            title=f"{model_name}: samples from the prior (temperature "
            f"{settings.sample_temperature})",
        )
        listen.append(("samples", sequences_lib.concatenate_sequences(sample_sequences)))

    available, why = audio.synthesizer_status()
    (wav / "STATUS.txt").write_text(
        ("WAV files rendered with " if available else "No WAV files: ") + why + "\n"
    )
    if available:
        for name, sequence in listen:
            audio.render_wav(sequence, wav / f"{name}.wav")
    return [] if available else [f"audio skipped: {why}"]


def plot_summaries(
    out: Path, curves: dict[str, np.ndarray], per_bar: dict, model_name: str
) -> None:
    figures = out / "figures"
    alphas = curves["alpha"]
    methods = [m for m in ("latent", "sampled", "data") if f"{m}_distance" in curves]
    pianoroll.plot_curves(
        alphas,
        {
            method: tuple(curves[f"{method}_distance{s}"] for s in ("", "_ci_low", "_ci_high"))
            for method in methods
        },
        figures / "interpolation_distance.png",
        ylabel="normalised Hamming distance to A",
        title=f"{model_name}: smoothness of interpolation",
    )
    if "latent_lm_loglik" in curves:
        pianoroll.plot_curves(
            alphas,
            {
                method: tuple(curves[f"{method}_lm_loglik{s}"] for s in ("", "_ci_low", "_ci_high"))
                for method in methods
            },
            figures / "interpolation_lm_loglik.png",
            ylabel="LM log-likelihood per step (nats)",
            title=f"{model_name}: naturalness of interpolants",
        )
    bars = per_bar["bar"]
    pianoroll.plot_curves(
        bars,
        {
            "sampled": (
                per_bar["sampled_accuracy"],
                per_bar["sampled_accuracy_ci_low"],
                per_bar["sampled_accuracy_ci_high"],
            ),
            "teacher-forced": (per_bar["tf_accuracy"],) * 3,
            "prior z (sampled)": (per_bar["prior_sampled_accuracy"],) * 3,
        },
        figures / "per_bar_accuracy.png",
        ylabel="reconstruction accuracy",
        title=f"{model_name}: accuracy per bar",
        xlabel="bar",
    )


# ---------------------------------------------------------------------------------------------
# MLflow


def log_to_mlflow(run_id: str, out: Path, metrics: dict[str, float]) -> str:
    """Log metrics and files into the training run; returns what happened (never raises)."""
    if not run_id:
        return "MLflow: model.pt names no training run (trained with --no-mlflow?); not logged"
    try:
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        uri = tracking.configure()
        client = MlflowClient(uri)
        try:
            client.get_run(run_id)
        except MlflowException:
            return f"MLflow: run {run_id} is not in {uri}; not logged"
        now = int(time.time() * 1000)
        entries = [Metric(f"test/{k}", v, now, 0) for k, v in metrics.items()]
        for start in range(0, len(entries), 500):  # MLflow's batch limit is 1000 metrics
            client.log_batch(run_id, metrics=entries[start : start + 500])
        client.log_artifacts(run_id, str(out), artifact_path="evaluation")
        return f"MLflow: logged {len(entries)} metrics and the files into run {run_id}"
    except Exception as error:  # tracking is a side channel: the stage's outputs stand
        return f"MLflow: logging failed ({type(error).__name__}: {error})"


# ---------------------------------------------------------------------------------------------
# The stage


def evaluate(
    model_name: str,
    *,
    settings: EvaluateParams,
    out: Path,
    models_dir: Path = Path("models"),
    datasets_root: Path = Path("datasets"),
    log_mlflow: bool = True,
) -> dict[str, float]:
    started = time.perf_counter()
    model_path = models_dir / model_name / "model.pt"
    if not model_path.is_file():
        raise FileNotFoundError(
            f"{model_path} not found: train it first (python -m training.train --model {model_name})"
        )
    if settings.num_threads:
        torch.set_num_threads(int(settings.num_threads))
    model_file = read_model_file(model_path)  # metadata: training step and MLflow run
    run_id = training_run_id(model_path)
    model, cfg = load_model(model_path)
    torch.manual_seed(settings.seed)
    seed, n_resamples = settings.seed, settings.n_resamples
    tracks = cfg.tracks
    examples = load_examples(
        datasets_root / cfg.dataset,
        "test",
        tracks,
        cfg.num_bars,
        settings.max_examples,
        seed,
    )
    tokens = examples.tokens
    print(f"{model_name}: {len(tokens)} of {examples.split_size} test examples", flush=True)

    rec = scoring.reconstruct(model, tokens, batch_size=settings.batch_size, seed=seed)
    metrics, per_example, tables = scoring.reconstruction_metrics(
        rec,
        tokens,
        [t.num_classes for t in tracks],
        [t.column for t in tracks],
        drum_tracks=[k for k, t in enumerate(tracks) if t.track_type == "drums"],
        melody_tracks=[k for k, t in enumerate(tracks) if t.track_type == "melody"],
        steps_per_bar=cfg.steps_per_bar,
        n_resamples=n_resamples,
        seed=seed,
    )
    metrics["test_split_size"] = examples.split_size

    notes = []
    lm_path = (
        Path(settings.lm.format(model=model_name, dataset=cfg.dataset)) if settings.lm else None
    )
    lm = load_lm(lm_path) if lm_path and lm_path.is_file() else None
    if lm is None:
        notes.append(f"naturalness skipped: no language model at {lm_path}")
    elif lm.cfg.num_classes != tuple(t.num_classes for t in tracks):
        raise ValueError(
            f"the language model {lm_path} reads tracks of {lm.cfg.num_classes} classes, "
            f"the model's dataset {cfg.dataset} has {[t.num_classes for t in tracks]}"
        )
    alphas = np.linspace(0.0, 1.0, settings.interpolation_steps)
    pairs = interp.pick_pairs(len(tokens), settings.interpolation_pairs, seed)
    interpolations = scoring.interpolate_pairs(
        model,
        tokens,
        rec.mu,
        pairs,
        alphas,
        seed=seed,
        batch_size=settings.batch_size,
        temperature=settings.sample_temperature,
    )
    interp_metrics, curves = scoring.interpolation_metrics(
        interpolations,
        tokens,
        lm,
        n_resamples=n_resamples,
        seed=seed,
        track_types=[t.track_type for t in cfg.tracks],
    )
    metrics.update(interp_metrics)
    # The same windows' greedy reconstructions from the reconstruction pass: what the endpoint
    # accuracies are to match (alpha 0 and 1 decode mu_A and mu_B), free of the pairs' draw.
    for side, column in (("a", 0), ("b", 1)):
        metrics[f"interp_endpoint_{side}_reference_accuracy"] = float(
            per_example["sampled_accuracy"][pairs[:, column]].mean()
        )
    _, samples = generate.sample(
        model, settings.num_samples, temperature=settings.sample_temperature, seed=seed
    )

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "interpolation.csv", curves)
    write_csv(out / "per_bar.csv", tables["per_bar"])
    write_csv(out / "latent_dims.csv", tables["latent_dims"])
    # Exact values: compare.py pairs and bootstraps them.
    write_csv(out / "per_example.csv", {"example_id": examples.ids, **per_example}, digits=None)
    notes += write_music(
        out, cfg.kind, tokens, rec, interpolations, samples.numpy(), settings, model_name
    )
    info = {
        "model": model_name,
        "config": cfg.name,
        "dataset": cfg.dataset,
        "kind": cfg.kind,
        "decoder": cfg.decoder,
        "hierarchical": cfg.decoder == "hierarchical",
        "num_bars": cfg.num_bars,
        "z_size": cfg.z_size,
        "training_step": int(model_file.get("step", 0)),
        "mlflow_run_id": run_id,
        "settings": dataclasses.asdict(settings),
        "notes": list(notes),  # a copy: the MLflow note below is printed, not written
    }
    plot_summaries(out, curves, tables["per_bar"], model_name)
    # Kept out of metrics.json, which stays a pure function of model, data and settings.
    info["eval_seconds"] = round(time.perf_counter() - started, 1)
    metrics = scoring.summary_for_logging(metrics)
    (out / "model_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if log_mlflow:
        notes.append(log_to_mlflow(run_id, out, metrics))
    for note in notes:
        print(note, flush=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--model", required=True, help="folder name under --models-dir")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, help="default: eval/<model>")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--datasets-root", type=Path, default=Path("datasets"))
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    args = parser.parse_args(argv)
    try:
        settings = read_params(args.params, "evaluate", EvaluateParams)
        metrics = evaluate(
            args.model,
            settings=settings,
            out=args.out or Path("eval") / args.model,
            models_dir=args.models_dir,
            datasets_root=args.datasets_root,
            log_mlflow=not args.no_mlflow,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
