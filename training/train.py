"""Train a MusicVAE: `python -m training.train --model <config> [options]`.

    python -m training.train --model hierdec-mel_16bar_cpu --params params.yaml
    python -m training.train --model cat-mel_2bar_cpu --max-minutes 2 --resume
    torchrun --nproc_per_node=2 -m training.train --model hierdec-mel_16bar   # DDP

Hyperparameters: the named config (training/configs.py), then params.yaml's `train.defaults`,
then its `train.<model>` section, then `--set key=value`, then --max-steps / --max-minutes.

Outputs, in --out (default models/<model>):
- checkpoints/last.pt every `checkpoint_every` steps and at the end (resume state);
- checkpoints/best.pt: the checkpoint whose weights scored the lowest loss on the eval split;
- model.pt: those best weights (or, with `keep_best: false`, the last step's) + resolved config
  (training.checkpoint.load_model); its `step` says which step's weights they are; with
  `prior: fitted`, the Gaussian fitted to those weights' codes of training windows;
- train_metrics.json: final training metrics, the eval-split score (teacher forced, z = mu) of
  model.pt's weights and, as `last_step_eval_*`, of the last step's.

Every checkpoint scores the weights on `eval_examples` of the eval split (logged to MLflow as
eval_loss, eval_r_loss, eval_kl_bits, eval_accuracy): a run whose loss spikes late still hands
over the weights from before the spike, as one would pick them from the eval curve.

Budgets: `max_steps` counts optimiser steps over the whole run (a resumed run continues to the
same total), and so does `max_minutes` (training time, summed over resumed invocations: a killed
run that is resumed stops where the uninterrupted one would). `--resume` continues
from checkpoints/last.pt when there is one: model, optimiser, step, data position, and the MLflow
run; a checkpoint of another configuration (other than budgets) is set aside with a warning and
training starts from step 0, since `dvc repro` reruns the same command after a params change;
so is the checkpoint of a finished run (DVC reruns the stage when its code or data changed) unless
the budget grew.
Every source of randomness (data order, augmentation, z noise, scheduled sampling) is a pure
function of (seed, rank, step), so a resumed run reproduces an uninterrupted one bit for bit on
the same hardware.

A step whose loss or gradient norm is not finite (or whose norm exceeds
`grad_norm_clip_to_zero`, where magenta zeroes the gradient) changes no weights; it is counted
in `skipped_steps`. The step counter still advances (the batch is consumed).

MLflow (rank 0; training/tracking.py says where): params = the resolved config; metrics every
`log_every` steps; system metrics; tags git commit and data version; model.pt and
train_metrics.json as artifacts. --no-mlflow turns it off.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn.parallel import DistributedDataParallel

from training import checkpoint as ckpt
from training import latent_prior, tracking
from training.configs import Config, get_config, params_overrides, parse_set
from training.data import BatchStream, load_split
from training.distributed import (
    Runtime,
    any_across_ranks,
    barrier,
    gather_to_main,
    init_runtime,
    shutdown,
)
from training.model import MusicVAE
from training.objective import (
    ACTIVE_UNIT_THRESHOLD,
    learning_rate_at,
    sampling_probability_at,
    vae_loss,
)
from training.precision import use_bf16

# ---------------------------------------------------------------------------------------------
# Randomness


def step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0])


# ---------------------------------------------------------------------------------------------
# Evaluation on the eval split (teacher forced, z = mu)

EVAL_TERMS = ("loss", "r_loss", "kl_bits", "accuracy")  # of vae_loss, averaged over examples


@torch.no_grad()
def evaluate(
    model: MusicVAE,
    data: np.ndarray,
    cfg: Config,
    step: int,
    device: torch.device,
    rt: Runtime | None = None,
) -> dict[str, float]:
    """Scores of the weights on `data` (the eval split). Under DDP every process scores every
    world_size-th batch and rank 0 adds them up in batch order, so the scores do not depend on
    the number of processes; the other ranks get {}."""
    if len(data) == 0:
        return {}
    rank, world_size = (rt.rank, rt.world_size) if rt else (0, 1)
    model.eval()
    batches = []  # (start, values summed over the batch's examples, the batch's mu)
    starts = range(0, len(data), cfg.batch_size)
    for start in starts[rank::world_size]:
        x = torch.from_numpy(data[start : start + cfg.batch_size]).to(device)
        out = model(x, sample_z=False)
        terms = vae_loss(out, x, cfg, step)
        sums = {key: float(getattr(terms, key)) * len(x) for key in EVAL_TERMS}
        if start < cfg.eval_sampled_examples:
            # Greedy free-running decode from z = mu: what a user hears, unlike teacher forcing.
            sums["correct"] = float((model.decode(out.mu) == x).float().mean()) * len(x)
            sums["decoded"] = len(x)
        batches.append((start, sums, out.mu.float().cpu()))
    model.train()
    if rt is not None:
        gathered = gather_to_main(rt, batches)
        if gathered is None:
            return {}
        batches = sorted((b for part in gathered for b in part), key=lambda b: b[0])
    totals = dict.fromkeys((*EVAL_TERMS, "correct", "decoded"), 0.0)
    for _, sums, _ in batches:
        for key, value in sums.items():
            totals[key] += value
    mus = [mu for _, _, mu in batches]
    correct, decoded = totals.pop("correct"), totals.pop("decoded")
    scores = {f"eval_{k}": v / len(data) for k, v in totals.items()}
    scores["eval_nll_per_step"] = scores["eval_r_loss"] / cfg.max_seq_len  # comparable to the LM
    if decoded:
        scores["eval_sampled_accuracy"] = correct / decoded
    scores["eval_active_units"] = float((torch.cat(mus).var(dim=0) > ACTIVE_UNIT_THRESHOLD).sum())
    return scores


# ---------------------------------------------------------------------------------------------
# The training loop


@dataclass
class WindowStats:
    """Sums over the steps since the last log line."""

    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, float]) -> None:
        self.steps += 1
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def means(self) -> dict[str, float]:
        return {k: v / self.steps for k, v in self.sums.items()}


@dataclass
class StepResult:
    metrics: dict[str, float]  # loss, r_loss, kl_bits, accuracy, grad_norm
    skipped: bool  # non-finite loss or gradient (or norm above grad_norm_clip_to_zero)
    lr: float
    beta: float
    sampling_probability: float


def train_step(
    net: torch.nn.Module,
    model: MusicVAE,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    cfg: Config,
    step: int,
    generator: torch.Generator,
    rt: Runtime,
    bf16: bool = False,
    skip_above: float = math.inf,
) -> StepResult:
    """One optimiser step at global step `step` (net is `model`, or its DDP wrapper).

    The learning rate, β and the scheduled-sampling probability follow `step`; the generator is
    re-seeded from (seed, rank, step). A non-finite loss or gradient norm skips the update on
    every rank (the flags are OR-ed across ranks so that replicas never diverge).
    """
    lr = learning_rate_at(cfg, step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    probability = sampling_probability_at(cfg, step)
    generator.manual_seed(step_seed(cfg.seed, rt.rank, step))

    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )
    with autocast:
        out = net(x, sampling_probability=probability, generator=generator)
    terms = vae_loss(out, x, cfg, step)
    optimizer.zero_grad(set_to_none=True)
    terms.loss.backward()
    grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
    loss = float(terms.loss.detach())
    bad = not (math.isfinite(loss) and math.isfinite(grad_norm))
    bad = bad or grad_norm > min(cfg.grad_norm_clip_to_zero, skip_above)
    (bad,) = any_across_ranks(rt, bad)
    if bad:
        optimizer.zero_grad(set_to_none=True)
    else:
        optimizer.step()
    metrics = {
        "loss": loss,
        "r_loss": float(terms.r_loss.detach()),
        "kl_bits": float(terms.kl_bits.detach()),
        "accuracy": float(terms.accuracy),
        "grad_norm": grad_norm,
    }
    if cfg.bag_of_notes_weight > 0:
        metrics["bag_loss"] = float(terms.bag_loss.detach())
    return StepResult(metrics, bad, lr, terms.beta, probability)


def train(
    cfg: Config,
    *,
    out_dir: str | Path,
    dataset_dir: str | Path,
    resume: bool = False,
    restart_on_change: bool = False,
    track: bool = True,
    progress: bool = True,
    device: str = "auto",
    runtime: Runtime | None = None,
) -> dict[str, Any]:
    """Train `cfg` on `dataset_dir`, writing into `out_dir`; returns the final metrics.

    With `resume`, a checkpoint written under another configuration raises ValueError, or, with
    `restart_on_change`, is ignored (with a warning) and training starts from step 0.
    """
    rt = runtime or init_runtime(device)
    threads = torch.get_num_threads()
    if rt.device.type == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _train(
            cfg, Path(out_dir), str(dataset_dir), resume, restart_on_change, track, progress, rt
        )
    finally:
        torch.set_num_threads(threads)


def _train(
    cfg: Config,
    out_dir: Path,
    dataset_dir: str,
    resume: bool,
    restart_on_change: bool,
    track: bool,
    progress: bool,
    rt: Runtime,
) -> dict[str, Any]:
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = MusicVAE(cfg).to(rt.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate_at(cfg, 0))
    budget_s = cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
    run = ckpt.RunState()
    if resume:
        last = out_dir / "checkpoints" / "last.pt"
        run, note = ckpt.resume(last, model, optimizer, cfg, restart_on_change, budget_s)
        if rt.is_main:
            print(note, file=sys.stderr)

    stream = BatchStream(
        dataset_dir,
        cfg.tracks,
        cfg.num_bars,
        cfg.batch_size,
        seed=cfg.seed,
        buffer_size=cfg.shuffle_buffer_size,
        transpose_range=cfg.transpose_range,
        rank=rt.rank,
        world_size=rt.world_size,
        position=run.data_position,
    )
    net = DistributedDataParallel(model) if rt.distributed else model
    tracker = tracking.RunTracker(enabled=track and rt.is_main)
    tracker.start(cfg, dataset_dir, run.mlflow_run_id)
    run.mlflow_run_id = tracker.run_id
    generator = torch.Generator(device=rt.device)
    step_fn = functools.partial(
        train_step, net, model, optimizer, cfg=cfg, generator=generator, rt=rt
    )
    bf16 = use_bf16(cfg.precision, rt.device)
    eval_data = _eval_split(dataset_dir, cfg)
    bar = _progress_bar(cfg, run.step) if rt.is_main and progress else None

    clock = TrainingClock(run.elapsed_s)
    window = WindowStats()
    scores: dict[str, float] = {}  # the eval scores of the last checkpoint's weights
    out_of_time, status = run.elapsed_s >= budget_s, "FINISHED"
    started_at = run.step  # a resumed run's checkpoint step was scored before it was saved
    try:
        while True:
            done = run.step >= cfg.max_steps or out_of_time

            # Every checkpoint_every steps and at the end: all ranks evaluate, rank 0 checkpoints.
            due = done or (run.step > started_at and run.step % cfg.checkpoint_every == 0)
            if due:
                scores = evaluate(model, eval_data, cfg, run.step, rt.device, rt)
            if due and rt.is_main:
                tracker.log_metrics(scores, run.step)
                run.data_position, run.elapsed_s = stream.position, clock.elapsed()
                _save(out_dir, model, optimizer, cfg, run, scores, rt.world_size)
                on_schedule = run.step % cfg.checkpoint_every == 0
                if on_schedule and bar is None and run.train_metrics:  # `dvc repro` logs a line
                    line = _checkpoint_line(run.step, cfg.max_steps, run.train_metrics, scores)
                    print(line, flush=True)
                if window.steps == 0:
                    window.started = time.perf_counter()  # examples/s leaves the eval out
            if done:
                break

            # One optimiser step on the next batch.
            x = torch.from_numpy(next(stream)).to(rt.device, non_blocking=True)
            skip_above = _skip_threshold(cfg, run.step, run.grad_norm_ema)
            try:
                result = step_fn(x=x, step=run.step, bf16=bf16, skip_above=skip_above)
            except RuntimeError as err:
                if not _bf16_unsupported(err, bf16, cfg):
                    raise
                print(f"bf16 autocast failed ({err}); training in fp32", file=sys.stderr)
                bf16 = False
                result = step_fn(x=x, step=run.step, bf16=bf16, skip_above=skip_above)
            run.skipped += result.skipped
            run.grad_norm_ema = _updated_norm_ema(run, result.metrics["grad_norm"], skip_above)
            run.step += 1
            if budget_s < math.inf:
                (out_of_time,) = any_across_ranks(rt, clock.elapsed() >= budget_s)
            window.add(result.metrics)
            if bar is not None:
                bar.update(1)

            # Log the means since the last log line.
            if run.step % cfg.log_every == 0 or run.step == cfg.max_steps or out_of_time:
                run.train_metrics = _log_line(window, result, run.skipped, cfg, rt)
                tracker.log_metrics(run.train_metrics, run.step)
                _show(bar, run.train_metrics)
                window = WindowStats()
    except BaseException as err:
        status = "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
        raise
    finally:
        if bar is not None:
            bar.close()
        if status != "FINISHED":
            tracker.end(status)

    total_seconds = clock.elapsed()
    metrics: dict[str, Any] = {}
    if rt.is_main:
        metrics = _finish(
            model, cfg, run, scores, len(eval_data), out_dir, dataset_dir, tracker, total_seconds
        )
    barrier(rt)
    return metrics


class TrainingClock:
    """Training time summed over every invocation of a run (the budget counts them all)."""

    def __init__(self, before_s: float) -> None:
        self.before_s, self.started = before_s, time.perf_counter()

    def elapsed(self) -> float:
        return self.before_s + time.perf_counter() - self.started


def _save(
    out_dir: Path,
    model: MusicVAE,
    optimizer: torch.optim.Optimizer,
    cfg: Config,
    run: ckpt.RunState,
    scores: dict[str, float],
    world_size: int,
) -> None:
    """Record the checkpoint's eval scores, keep its weights in best.pt when no earlier one
    scored a lower eval loss, then write the resume state (rank 0)."""
    if scores:
        examples = run.step * cfg.batch_size * world_size
        run.history.append({"step": run.step, "examples": examples, **scores})
        _write_curve(out_dir / "eval_curve.csv", run.history)
        if cfg.keep_best and (not run.best or scores["eval_loss"] < run.best["eval_loss"]):
            best_path = out_dir / "checkpoints" / "best.pt"
            ckpt.save_model(best_path, model, cfg, step=run.step, metrics=_plain(scores))
            run.best = {"step": run.step, **scores}
    ckpt.save_checkpoint(out_dir / "checkpoints" / "last.pt", model, optimizer, cfg, run)


def _finish(
    model: MusicVAE,
    cfg: Config,
    run: ckpt.RunState,
    last_scores: dict[str, float],
    eval_examples: int,
    out_dir: Path,
    dataset_dir: str,
    tracker: tracking.RunTracker,
    train_seconds: float,
) -> dict[str, Any]:
    """Write model.pt (best.pt's weights unless keep_best is off, with its fitted prior where
    cfg.prior is "fitted") and train_metrics.json."""
    model_step, model_scores = run.step, last_scores
    best_path = out_dir / "checkpoints" / "best.pt"
    if cfg.keep_best and run.best and run.best["step"] != run.step:
        kept = ckpt.read_model_file(best_path) if best_path.exists() else {}
        # best.pt is written before last.pt: one newer than the record is not this run's.
        if kept.get("step") == run.best["step"]:
            model.load_state_dict(kept["state_dict"])
            model_step = run.best["step"]
            model_scores = {k: v for k, v in run.best.items() if k != "step"}
    prior: dict[str, float] = {}
    if cfg.prior == "fitted":
        fit = load_split(dataset_dir, "train", cfg.tracks, cfg.num_bars, cfg.prior_fit_examples)
        prior = latent_prior.fit_prior(model, fit)
    logged = run.train_metrics
    metrics: dict[str, Any] = {
        "step": run.step,
        "model_step": model_step,
        "skipped_steps": run.skipped,
        "train_minutes": round(train_seconds / 60, 3),
        **{f"train_{k}": v for k, v in logged.items() if k in _FINAL_KEYS},
        "examples_per_s": logged.get("examples_per_s"),
        "eval_examples": eval_examples,
        **model_scores,
        **{f"last_step_{k}": v for k, v in last_scores.items()},
        **prior,
    }
    tracker.log_metrics({"model_step": float(model_step)}, run.step)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.pt"
    # model.pt holds what defines the model, so that a rerun with the same weights writes
    # the same bytes (DVC then skips everything downstream); times and the run id go beside.
    defining = {k: v for k, v in metrics.items() if k not in _RUN_KEYS}
    ckpt.save_model(model_path, model, cfg, step=model_step, metrics=_plain(defining))
    metrics_path = out_dir / "train_metrics.json"
    record = {**_plain(metrics), "mlflow_run_id": tracker.run_id or ""}
    metrics_path.write_text(json.dumps(record, indent=2) + "\n")
    tracker.log_artifact(model_path, "model")
    tracker.log_artifact(metrics_path)
    tracker.end()
    return metrics


def _bf16_unsupported(err: RuntimeError, bf16: bool, cfg: Config) -> bool:
    """cuDNN's LSTM takes bf16 only from cuDNN 9.13 on: "auto" then falls back to fp32."""
    return bf16 and cfg.precision == "auto" and "bfloat16" in str(err).lower()


def _updated_norm_ema(run: ckpt.RunState, norm: float, skip_above: float) -> float:
    """The running mean of gradient norms after this step's (step 0 starts it)."""
    if not math.isfinite(norm):
        return run.grad_norm_ema
    # A skipped outlier moves the mean only up to the threshold, so a lasting rise in gradient
    # norms is followed within some steps instead of skipped forever.
    return norm if run.step == 0 else 0.99 * run.grad_norm_ema + 0.01 * min(norm, skip_above)


def _log_line(
    window: WindowStats, result: StepResult, skipped: int, cfg: Config, rt: Runtime
) -> dict[str, float]:
    seconds = time.perf_counter() - window.started
    return {
        **window.means(),
        "beta": result.beta,
        "lr": result.lr,
        "sampling_probability": result.sampling_probability,
        "examples_per_s": window.steps * cfg.batch_size * rt.world_size / seconds,
        "skipped_steps": float(skipped),
    }


def _progress_bar(cfg: Config, step: int):
    from tqdm import tqdm

    return tqdm(total=cfg.max_steps, initial=step, desc=cfg.name, dynamic_ncols=True)


def _show(bar, logged: dict[str, float]) -> None:
    if bar is not None:
        bar.set_postfix(
            loss=f"{logged['loss']:.3g}",
            acc=f"{logged['accuracy']:.3f}",
            kl_bits=f"{logged['kl_bits']:.3g}",
            ex_s=f"{logged['examples_per_s']:.0f}",
            refresh=False,
        )


def _checkpoint_line(step: int, max_steps: int, logged: dict, scores: dict) -> str:
    line = (
        f"step {step}/{max_steps} loss {logged['loss']:.4g} accuracy {logged['accuracy']:.3f} "
        f"kl_bits {logged['kl_bits']:.3g} examples/s {logged['examples_per_s']:.0f}"
    )
    if scores:
        line += f" | eval loss {scores['eval_loss']:.4g} accuracy {scores['eval_accuracy']:.3f}"
    return line


def _skip_threshold(cfg: Config, step: int, norm_ema: float) -> float:
    """The gradient norm above which step `step` is skipped (grad_skip_factor x the running
    mean, after 100 steps of warm-up; inf when off)."""
    if cfg.grad_skip_factor <= 0 or step < 100:
        return math.inf
    return cfg.grad_skip_factor * norm_ema


def _write_curve(path: Path, history: list[dict[str, float]]) -> None:
    """The eval split's learning curve, one row per checkpoint (a DVC plot)."""
    columns = list(history[-1])
    lines = [",".join(columns)]
    lines += [",".join(f"{row.get(c, float('nan')):.6g}" for c in columns) for row in history]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


_RUN_KEYS = ("train_minutes", "examples_per_s")  # of this run, not of the weights
_FINAL_KEYS = ("loss", "r_loss", "kl_bits", "accuracy")


def _plain(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }


def _eval_split(dataset_dir: str, cfg: Config) -> np.ndarray:
    try:
        return load_split(dataset_dir, "eval", cfg.tracks, cfg.num_bars, limit=cfg.eval_examples)
    except FileNotFoundError:
        return np.zeros((0, cfg.max_seq_len, len(cfg.tracks)), dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training.train", description="Train a MusicVAE model."
    )
    parser.add_argument("--model", required=True, help="config name (training/configs.py)")
    parser.add_argument("--params", help="params.yaml: uses train.defaults and train.<model>")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field (repeatable)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from checkpoints/last.pt (one of another configuration: start over)",
    )
    parser.add_argument("--max-steps", type=int, help="total optimiser steps of the run")
    parser.add_argument(
        "--max-minutes", type=float, help="training-time budget of the run (summed over resumes)"
    )
    parser.add_argument("--out", help="output folder (default models/<model>)")
    parser.add_argument("--data", help="dataset folder (default datasets/<config's dataset>)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        overrides = params_overrides(args.params, args.model)
        overrides.update(parse_set(args.set))
        if args.max_steps is not None:
            overrides["max_steps"] = args.max_steps
        if args.max_minutes is not None:
            overrides["max_minutes"] = args.max_minutes
        cfg = get_config(args.model, overrides)
    except (OSError, ValueError, yaml.YAMLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runtime = init_runtime(args.device)
    try:
        metrics = train(
            cfg,
            out_dir=args.out or f"models/{args.model}",
            dataset_dir=args.data or f"datasets/{cfg.dataset}",
            resume=args.resume,
            restart_on_change=True,
            track=not args.no_mlflow,
            progress=not args.no_progress,
            runtime=runtime,
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        shutdown(runtime)
    if runtime.is_main:
        print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
