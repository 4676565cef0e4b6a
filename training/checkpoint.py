"""Checkpoints (resume state) and the final model file.

- `models/<name>/checkpoints/last.pt`: model and optimiser state, step, skipped steps, data
  stream position, RNG states, elapsed time and the MLflow run id; written atomically (a
  temporary file in the same folder, then os.replace), so a run killed while saving keeps the
  previous checkpoint. It also records the step and eval scores of `checkpoints/best.pt`, the
  checkpoint of lowest eval loss, which is a model file like model.pt.
- `models/<name>/model.pt`: {"format": 1, "config": plain dict, "state_dict": weights, "step",
  "metrics"}: only what the weights determine (times and the MLflow run id are in
  train_metrics.json beside it, see `training_run_id`). Everything in both files is tensors, dicts, lists, numbers
  and strings, so `torch.load(path, weights_only=True)` reads them.

`load_model(path) -> (MusicVAE, Config)` is the public way to get a trained model;
`read_model_file(path)` returns the whole dict (metadata such as the MLflow run id).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.configs import Config
from training.model import MusicVAE

FORMAT = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"].cpu())
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])


@dataclass
class RunState:
    """What a resumed run continues from, beside the weights, the optimiser and the RNGs."""

    step: int = 0
    skipped: int = 0  # steps that changed no weights
    grad_norm_ema: float = 0.0  # running mean of gradient norms, for grad_skip_factor
    data_position: dict | None = None  # the batch stream's (training.data.BatchStream)
    elapsed_s: float = 0.0  # training time, summed over invocations
    mlflow_run_id: str | None = None
    train_metrics: dict[str, float] = field(default_factory=dict)  # the last log line
    best: dict[str, float] = field(default_factory=dict)  # step and eval scores of best.pt
    history: list[dict[str, float]] = field(default_factory=list)  # every checkpoint's scores


def save_checkpoint(
    path: str | os.PathLike,
    model: MusicVAE,
    optimizer: torch.optim.Optimizer,
    cfg: Config,
    run: RunState,
) -> None:
    atomic_save(
        {
            "format": FORMAT,
            "config": cfg.to_dict(),
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": run.step,
            "skipped_steps": run.skipped,
            "grad_norm_ema": run.grad_norm_ema,
            "data_position": dict(run.data_position or {}),
            "rng": rng_states(),
            "elapsed_s": run.elapsed_s,
            "mlflow_run_id": run.mlflow_run_id or "",
            "train_metrics": dict(run.train_metrics),
            "best": dict(run.best),
            "history": [dict(row) for row in run.history],
        },
        path,
    )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no checkpoint")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch.load raises many kinds on a damaged file
        raise ValueError(
            f"{path} is not a readable checkpoint ({err}); delete it or train without --resume"
        ) from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path}: not a MusicVAE checkpoint (format {FORMAT})")
    return checkpoint


def save_model(path: str | os.PathLike, model: MusicVAE, cfg: Config, **metadata: Any) -> None:
    """The final model: weights (on CPU) + resolved config + plain metadata."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_save(
        {"format": FORMAT, "config": cfg.to_dict(), "state_dict": weights, **metadata}, path
    )


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no model file (train the model first)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many kinds on a damaged file
        raise ValueError(f"{path} is not a readable model file ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT or "state_dict" not in data:
        raise ValueError(f"{path}: not a MusicVAE model file (format {FORMAT})")
    return data


def training_run_id(model_path: str | os.PathLike) -> str:
    """The MLflow run that trained model.pt: train_metrics.json beside it (older model files
    carry it themselves); "" when unknown."""
    record = Path(model_path).with_name("train_metrics.json")
    if record.is_file():
        run_id = json.loads(record.read_text()).get("mlflow_run_id")
        if run_id:
            return str(run_id)
    return str(read_model_file(model_path).get("mlflow_run_id") or "")


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[MusicVAE, Config]:
    """A trained MusicVAE (in eval mode, on `device`) and its config from model.pt or last.pt."""
    data = read_model_file(path)
    cfg = Config.from_dict(data["config"])
    model = MusicVAE(cfg)
    model.load_state_dict(data["state_dict"])
    return model.to(device).eval(), cfg


# ---------------------------------------------------------------------------------------------
# Resume policy


# Fields a resumed run may change; any other difference makes a different run.
RESUMABLE_CHANGES = {
    "keep_best",
    "max_steps",
    "max_minutes",
    "log_every",
    "checkpoint_every",
    "eval_examples",
    "eval_sampled_examples",
    "precision",
    "cpu_threads",
}


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def config_mismatch(saved: dict[str, Any], cfg: Config, path: Path) -> str:
    """What makes the checkpoint at `path` another run than `cfg` ("" when it can be resumed)."""
    current = cfg.to_dict()
    # A field added since the checkpoint was written reads as its default: the behaviour it had.
    defaults = {f.name: _default(f) for f in dataclasses.fields(Config)}
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    changed = sorted(
        k
        for k in set(saved) | set(current)
        if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
    )
    if not changed:
        return ""
    details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
    return f"{path} was written by a different configuration ({details})"


def resumable_state(
    path: Path, cfg: Config, restart_on_change: bool, budget_s: float
) -> tuple[dict[str, Any] | None, str]:
    """(the checkpoint at `path` to resume `cfg` from, or None; a line for the log).

    A checkpoint of another configuration raises ValueError, or with `restart_on_change` is set
    aside (training starts from step 0 and overwrites it at its first checkpoint); so is the
    checkpoint of a finished run, since DVC reruns a stage whose code or data changed and
    resuming would train 0 steps and pass the old weights off as new.
    """
    if not path.exists():
        return None, f"no checkpoint at {path}: starting from step 0"
    state = load_checkpoint(path)
    mismatch = config_mismatch(state["config"], cfg, path)
    if mismatch and not restart_on_change:
        raise ValueError(f"{mismatch}; train without --resume, or delete the checkpoint")
    finished = state["step"] >= cfg.max_steps or state["elapsed_s"] >= budget_s
    if not mismatch and finished and restart_on_change:
        mismatch = f"{path} holds a finished run (step {state['step']})"
    if mismatch:
        return None, f"warning: {mismatch}: starting from step 0"
    return state, f"resuming {cfg.name} from step {state['step']} ({path})"


def resume(
    path: Path,
    model: MusicVAE,
    optimizer: torch.optim.Optimizer,
    cfg: Config,
    restart_on_change: bool,
    budget_s: float,
) -> tuple[RunState, str]:
    """Load the checkpoint at `path` into `model`, `optimizer` and the RNGs when `cfg` may
    resume from it (resumable_state); (its RunState, or a fresh one; a line for the log)."""
    state, note = resumable_state(path, cfg, restart_on_change, budget_s)
    if state is None:
        return RunState(), note
    model.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    restore_rng_states(state["rng"])
    run = RunState(
        step=state["step"],
        skipped=state["skipped_steps"],
        grad_norm_ema=float(state.get("grad_norm_ema", 0.0)),
        data_position=state["data_position"],
        elapsed_s=state["elapsed_s"],
        mlflow_run_id=state["mlflow_run_id"] or None,
        train_metrics=dict(state.get("train_metrics", {})),
        best=dict(state.get("best", {})),
        history=[dict(row) for row in state.get("history", [])],
    )
    return run, note
