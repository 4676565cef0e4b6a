"""DVC stage `register`: put an evaluated model in the MLflow Model Registry.

    python -m evaluation.registry.register --model hierdec-mel_16bar_cpu [--params params.yaml]

Reads ``models/<model>/model.pt`` and ``eval/<model>/metrics.json``, logs the pyfunc model
(evaluation.registry.pyfunc_model) into the model's training run, registers it as ``musicvae-<model>``
with its metrics, data version (the md5 in data.dvc) and git commit as version tags, and moves
the alias ``champion`` only when the new version beats the champion on ``--metric`` (otherwise
it becomes ``challenger``). Registering the same weights again creates nothing new. Writes
``eval/<model>/registered.json`` (name, version, alias, ...) for DVC.

Paths are relative to the working directory (the repo root under DVC). Problems with the inputs
end with one line on stderr and exit status 1, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.params import RegisterParams
from evaluation.registry.versions import (
    ModelSource,
    Registration,
    file_sha256,
    register,
    registered_model_name,
    selection_value,
)
from pipelines.params import read_params

DEFAULT_METRIC = RegisterParams().metric


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no evaluation metrics (run the evaluate stage first)")
    metrics = json.loads(path.read_text())
    if not isinstance(metrics, dict):
        raise ValueError(f"{path}: expected a JSON object of metrics")
    return metrics


def register_model(
    model: str,
    *,
    metric: str = DEFAULT_METRIC,
    greater_is_better: bool = True,
    models_dir: Path = Path("models"),
    eval_dir: Path = Path("eval"),
) -> Registration:
    """Register ``models_dir/<model>/model.pt``; see the module docstring."""
    weights = models_dir / model / "model.pt"
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: no trained model (run the train stage first)")
    metrics = read_metrics(eval_dir / model / "metrics.json")
    value = selection_value(metrics, metric)  # fail before touching the registry

    # Imported only now: bad inputs fail fast, and a re-run that finds the weights registered
    # never needs torch.
    from mlflow import MlflowClient

    from training import tracking

    commit, data = tracking.git_commit(), tracking.data_version()
    uri = tracking.configure()
    client = MlflowClient(uri, uri)

    def log_model() -> ModelSource:
        from evaluation.registry.pyfunc_model import log_pyfunc
        from training.checkpoint import read_model_file, training_run_id

        dataset = read_model_file(weights)["config"]["dataset"]
        run_id = _training_run(client, training_run_id(weights), dataset, model)
        info = log_pyfunc(weights, run_id=run_id)
        return ModelSource(uri=info.model_uri, run_id=run_id, model_id=info.model_id)

    return register(
        client,
        name=registered_model_name(model),
        key=file_sha256(weights),
        source=log_model,
        metrics=metrics,
        metric=metric,
        greater_is_better=greater_is_better,
        tags={"config": model, "data_version": data, "git_commit": commit},
        description=f"{model}: {metric} = {value:.4f}; data {data}; commit {commit}",
    )


def _training_run(client: Any, run_id: str, dataset: str, model: str) -> str:
    """The run that trained the model (``run_id``, from its train_metrics.json), or a new run
    when that run is not in this store (trained without MLflow, or against another store)."""
    from mlflow.exceptions import MlflowException

    from training import tracking

    if run_id:
        try:
            return client.get_run(run_id).info.run_id
        except MlflowException:
            print(f"register: run {run_id} of {model} is not in this store", file=sys.stderr)
    experiment_id = tracking.get_or_create_experiment(tracking.experiment_name(dataset))
    run = client.create_run(experiment_id, run_name=f"{model} (registered)")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model name (folder under models/)")
    parser.add_argument(
        "--params", type=Path, help="read the `register:` section of this params.yaml (the DAG's)"
    )
    parser.add_argument(
        "--metric",
        help="metric that ranks versions (default: the section's, see RegisterParams)",
    )
    parser.add_argument(
        "--lower-is-better", action="store_true", help="the metric is a loss, not a score"
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--eval-dir", type=Path, default=Path("eval"))
    parser.add_argument("--output", type=Path, help="default: <models-dir>/<model>/registered.json")
    args = parser.parse_args(argv)
    metric = args.metric or read_params(args.params, "register", RegisterParams).metric

    try:
        registration = register_model(
            args.model,
            metric=metric,
            greater_is_better=not args.lower_is_better,
            models_dir=args.models_dir,
            eval_dir=args.eval_dir,
        )
    except (FileNotFoundError, KeyError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"register: {message}", file=sys.stderr)
        return 1

    output = args.output or args.models_dir / args.model / "registered.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(registration.as_dict(), indent=2) + "\n")
    state = "registered" if registration.created else "already registered as"
    print(
        f"{state} {registration.name} version {registration.version} -> @{registration.alias} "
        f"({registration.metric} = {registration.value:.4f}; "
        f"champion: version {registration.champion_version})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
