"""Where MLflow runs go, and the provenance tags every run carries.

The project's store is `sqlite:///<repo>/mlflow/mlflow.db` with artifacts under
`<repo>/mlflow/artifacts`, unless MLFLOW_TRACKING_URI points elsewhere. For any SQLite URI the
artifacts go to an `artifacts/` folder next to the database file (so a test's store in a temporary
folder keeps its artifacts there too); for a tracking server the server decides.

One experiment per dataset ("musicvae-mel_16bar"), so that flat and hierarchical runs on the same
data sit side by side.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import yaml

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
