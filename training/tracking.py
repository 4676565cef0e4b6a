"""Where MLflow runs go, the provenance tags every run carries, and `RunTracker`, the MLflow
side of a training run.

The project's store is `sqlite:///<repo>/mlflow/mlflow.db` with artifacts under
`<repo>/mlflow/artifacts`, unless MLFLOW_TRACKING_URI points elsewhere. For any SQLite URI the
artifacts go to an `artifacts/` folder next to the database file (so a test's store in a temporary
folder keeps its artifacts there too); for a tracking server the server decides.

One experiment per dataset ("musicvae-mel_16bar"), so that flat and hierarchical runs on the same
data sit side by side.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from training.configs import Config

REPO_ROOT = Path(__file__).resolve().parents[1]


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{REPO_ROOT / 'mlflow' / 'mlflow.db'}"


def artifact_location(uri: str | None = None) -> str | None:
    """The artifact root for a SQLite store (next to the database), None otherwise."""
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        return None
    database = Path(uri[len("sqlite:///") :])
    if not database.is_absolute():
        database = Path.cwd() / database
    return (database.parent / "artifacts").as_uri()


def configure() -> str:
    """Point MLflow at the project's store (creating its folder) and return the URI."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_name(dataset: str) -> str:
    return f"musicvae-{dataset}"


def get_or_create_experiment(name: str) -> str:
    """The id of experiment `name`, created with the store's artifact location if new."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location())


def git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD's commit, with "-dirty" when tracked files differ from it; "unknown" outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def data_version(root: Path = REPO_ROOT) -> str:
    """The md5 DVC recorded for data/ in data.dvc, "unknown" when there is none."""
    try:
        outs = yaml.safe_load((root / "data.dvc").read_text())["outs"]
        return str(outs[0]["md5"])
    except (OSError, KeyError, IndexError, TypeError, yaml.YAMLError):
        return "unknown"


def dataset_fingerprint(dataset_dir: str) -> str:
    """A short hash of a dataset folder: its stats.json and the names and sizes of its shards."""
    digest = hashlib.sha256()
    folder = Path(dataset_dir)
    for path in sorted(folder.glob("*")):
        if path.suffix == ".parquet":
            digest.update(f"{path.name}:{path.stat().st_size}\n".encode())
        elif path.name == "stats.json":
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def provenance_tags(dataset_dir: str) -> dict[str, str]:
    commit = git_commit()
    return {
        "mlflow.source.git.commit": commit.removesuffix("-dirty"),
        "git_commit": commit,
        "data_version": data_version(),
        "dataset_fingerprint": dataset_fingerprint(dataset_dir),
    }


# ---------------------------------------------------------------------------------------------
# A training run in MLflow (rank 0 only)


class RunTracker:
    """The MLflow side of a training run; every method is a no-op when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.run_id: str | None = None

    def start(self, cfg: Config, dataset_dir: str, run_id: str | None) -> None:
        if not self.enabled:
            return
        import mlflow
        from mlflow.exceptions import MlflowException

        configure()
        experiment_id = get_or_create_experiment(experiment_name(cfg.dataset))
        if run_id:
            try:
                mlflow.get_run(run_id)
            except MlflowException:
                run_id = None  # a checkpoint from another store: start a new run
        run = mlflow.start_run(
            run_id=run_id or None,
            experiment_id=None if run_id else experiment_id,
            run_name=None if run_id else cfg.name,
            log_system_metrics=True,
        )
        self.run_id = run.info.run_id
        logged = mlflow.get_run(self.run_id).data.params
        params = {k: str(v) for k, v in cfg.to_dict().items()}
        # Params are immutable in MLflow: a resumed run only adds the ones not logged yet.
        new = {k: v for k, v in params.items() if k not in logged}
        if new:
            mlflow.log_params(new)
        changed = {f"resumed.{k}": v for k, v in params.items() if k in logged and logged[k] != v}
        mlflow.set_tags({**provenance_tags(dataset_dir), **changed})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.enabled:
            import mlflow

            finite = {k: v for k, v in metrics.items() if v is not None and math.isfinite(v)}
            mlflow.log_metrics(finite, step=step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if self.enabled:
            import mlflow

            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        if self.enabled and self.run_id:
            import mlflow

            mlflow.end_run(status=status)
