"""Real MLflow stores for tests, cheap to get.

A fresh SQLite store runs MLflow's schema migrations (several seconds), so the session migrates
one template database and every test works on its own copy of the file: a real store, isolated,
in milliseconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient


@dataclass(frozen=True)
class MlflowStore:
    """A test's own tracking + registry store: ``<root>/mlflow.db`` and ``<root>/artifacts``."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def artifact_root(self) -> Path:
        return self.root / "artifacts"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri, self.uri)

    def create_experiment(self, name: str) -> str:
        """An experiment whose artifacts stay under this store's root."""
        return self.client().create_experiment(
            name, artifact_location=str(self.artifact_root / name)
        )


@pytest.fixture(scope="session")
def migrated_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite tracking database with every migration applied, made once per session."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    root = tmp_path_factory.mktemp("mlflow-template")
    db_path = root / "mlflow.db"
    store = SqlAlchemyStore(f"sqlite:///{db_path}", str(root / "artifacts"))
    store.engine.dispose()  # every write is committed; close the file before it is copied
    return db_path


def copy_store(template: Path, root: Path) -> MlflowStore:
    """A new store at ``root`` holding a copy of the ``template`` database."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, root / "mlflow.db")
    (root / "artifacts").mkdir(exist_ok=True)
    return MlflowStore(root)


@pytest.fixture
def mlflow_store(
    migrated_mlflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MlflowStore]:
    """This test's own store, set as the tracking and registry URI (environment and MLflow's
    globals, which code under test may have set: they win over the environment), and unset
    afterwards so that no later test writes into it."""
    store = copy_store(migrated_mlflow_db, tmp_path / "mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.uri)
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    yield store
    mlflow.set_tracking_uri(None)  # also unsets the variable; monkeypatch then restores it
    mlflow.set_registry_uri(None)
