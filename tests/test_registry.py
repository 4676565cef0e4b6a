"""Registry logic (evaluation.registry.versions) against a real SQLite MLflow store.

Each "model" is a real run with a real artifact; the registry sees only its source URI, so these
tests need no torch model. The pyfunc end to end is in test_pyfunc.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow_fixtures import MlflowStore

from evaluation.registry.register import main as register_stage
from evaluation.registry.versions import (
    CHALLENGER,
    CHAMPION,
    KEY_TAG,
    ModelSource,
    Registration,
    file_sha256,
    find_version,
    register,
    registered_model_name,
)

NAME = registered_model_name("cat-mel_2bar_tiny")


class Trainer:
    """Makes "trained models": a run holding a weights file, like the train stage leaves."""

    def __init__(self, store: MlflowStore, tmp_path: Path) -> None:
        self.store = store
        self.client = store.client()
        self.experiment_id = store.create_experiment("training")
        self.tmp_path = tmp_path
        self.sources_made = 0

    def train(self, content: str) -> tuple[str, Callable[[], ModelSource]]:
        """(key, source) of a new model whose weights file holds ``content``."""
        run = self.client.create_run(self.experiment_id)
        weights = self.tmp_path / f"weights-{run.info.run_id}.pt"
        weights.write_text(content)
        self.client.log_artifact(run.info.run_id, str(weights), "model")

        def source() -> ModelSource:
            self.sources_made += 1
            uri = f"{self.client.get_run(run.info.run_id).info.artifact_uri}/model"
            return ModelSource(uri=uri, run_id=run.info.run_id)

        return file_sha256(weights), source


@pytest.fixture
def trainer(mlflow_store: MlflowStore, tmp_path: Path) -> Trainer:
    return Trainer(mlflow_store, tmp_path)


def register_metrics(
    trainer: Trainer, key: str, source: Callable[[], ModelSource], accuracy: float, **kwargs
) -> Registration:
    metrics = {"sampled_accuracy": accuracy, "tf_accuracy": accuracy + 0.1, "n": 64}
    return register(
        trainer.client,
        name=NAME,
        key=key,
        source=source,
        metrics=metrics,
        metric="sampled_accuracy",
        **kwargs,
    )


def aliases(trainer: Trainer) -> dict[str, str]:
    return {a: str(v) for a, v in trainer.client.get_registered_model(NAME).aliases.items()}


def test_first_model_becomes_champion_with_its_tags(trainer: Trainer) -> None:
    key, source = trainer.train("model one")
    result = register_metrics(trainer, key, source, 0.5, tags={"git_commit": "abc123"})

    assert (result.version, result.alias, result.created) == ("1", CHAMPION, True)
    assert aliases(trainer) == {CHAMPION: "1"}
    version = trainer.client.get_model_version(NAME, "1")
    assert version.tags[KEY_TAG] == key
    assert float(version.tags["metric.sampled_accuracy"]) == 0.5
    assert float(version.tags["metric.tf_accuracy"]) == pytest.approx(0.6)
    assert version.tags["git_commit"] == "abc123"
    assert version.run_id == source().run_id
    # The champion resolves through the alias, as users load it.
    assert str(trainer.client.get_model_version_by_alias(NAME, CHAMPION).version) == "1"


def test_worse_model_becomes_challenger_and_champion_stays(trainer: Trainer) -> None:
    register_metrics(trainer, *trainer.train("good"), 0.7)
    result = register_metrics(trainer, *trainer.train("worse"), 0.6)

    assert (result.version, result.alias, result.champion_version) == ("2", CHALLENGER, "1")
    assert aliases(trainer) == {CHAMPION: "1", CHALLENGER: "2"}


def test_a_tie_does_not_take_the_champion(trainer: Trainer) -> None:
    register_metrics(trainer, *trainer.train("first"), 0.7)
    result = register_metrics(trainer, *trainer.train("same score"), 0.7)

    assert result.alias == CHALLENGER
    assert aliases(trainer)[CHAMPION] == "1"


def test_better_model_takes_the_champion(trainer: Trainer) -> None:
    register_metrics(trainer, *trainer.train("v1"), 0.5)
    register_metrics(trainer, *trainer.train("v2 worse"), 0.4)
    result = register_metrics(trainer, *trainer.train("v3 better"), 0.8)

    assert (result.version, result.alias, result.champion_version) == ("3", CHAMPION, "3")
    # The last loser keeps the challenger alias; the old champion has no alias left.
    assert aliases(trainer) == {CHAMPION: "3", CHALLENGER: "2"}


def test_lower_is_better_metric(trainer: Trainer) -> None:
    register_metrics(trainer, *trainer.train("a"), 0.5, greater_is_better=False)
    result = register_metrics(trainer, *trainer.train("b"), 0.4, greater_is_better=False)

    assert result.alias == CHAMPION
    assert aliases(trainer) == {CHAMPION: "2"}


def test_registering_the_same_weights_again_creates_nothing(trainer: Trainer) -> None:
    key, source = trainer.train("the model")
    first = register_metrics(trainer, key, source, 0.5, tags={"git_commit": "first"})
    assert trainer.sources_made == 1

    again = register_metrics(trainer, key, source, 0.5, tags={"git_commit": "later"})

    assert trainer.sources_made == 1  # nothing logged a second time
    assert (again.version, again.alias, again.created) == (first.version, CHAMPION, False)
    # The version keeps the provenance of its first registration.
    assert trainer.client.get_model_version(NAME, "1").tags["git_commit"] == "first"
    versions = trainer.client.search_model_versions(f"name = '{NAME}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert str(find_version(trainer.client, NAME, key).version) == "1"


def test_rerun_finishes_a_registration_that_stopped_before_the_alias(trainer: Trainer) -> None:
    register_metrics(trainer, *trainer.train("old champion"), 0.5)
    key, source = trainer.train("new and better")
    # As if the stage died between creating the version and moving the alias.
    trainer.client.create_model_version(
        NAME, source().uri, run_id=source().run_id, tags={KEY_TAG: key}
    )
    assert aliases(trainer) == {CHAMPION: "1"}

    result = register_metrics(trainer, key, source, 0.9)

    assert (result.version, result.alias, result.created) == ("2", CHAMPION, False)
    assert aliases(trainer) == {CHAMPION: "2"}
    assert float(trainer.client.get_model_version(NAME, "2").tags["metric.sampled_accuracy"]) == 0.9


def test_champion_without_a_recorded_metric_is_replaced(trainer: Trainer) -> None:
    key, source = trainer.train("registered by hand")
    trainer.client.create_registered_model(NAME)
    version = trainer.client.create_model_version(NAME, source().uri, run_id=source().run_id)
    trainer.client.set_registered_model_alias(NAME, CHAMPION, version.version)

    result = register_metrics(trainer, *trainer.train("measured"), 0.3)

    assert result.alias == CHAMPION
    assert aliases(trainer) == {CHAMPION: "2"}


@pytest.mark.parametrize(
    ("metrics", "error"),
    [
        ({"tf_accuracy": 0.9}, KeyError),
        ({"sampled_accuracy": float("nan")}, ValueError),
        ({"sampled_accuracy": "0.9"}, ValueError),
    ],
)
def test_bad_metrics_are_refused_before_anything_is_registered(
    trainer: Trainer, metrics: dict, error: type
) -> None:
    key, source = trainer.train("model")
    with pytest.raises(error, match="sampled_accuracy"):
        register(
            trainer.client,
            name=NAME,
            key=key,
            source=source,
            metrics=metrics,
            metric="sampled_accuracy",
        )
    assert trainer.sources_made == 0
    assert trainer.client.search_registered_models() == []


def test_register_stage_refuses_missing_inputs_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "models" / "m").mkdir(parents=True)
    (tmp_path / "models" / "m" / "model.pt").write_bytes(b"weights")
    (tmp_path / "eval" / "m").mkdir(parents=True)
    (tmp_path / "eval" / "m" / "metrics.json").write_text(json.dumps({"accuracy_tf": 0.5}))
    monkeypatch.chdir(tmp_path)

    assert register_stage(["--model", "other"]) == 1
    assert "models/other/model.pt: no trained model" in capsys.readouterr().err

    assert register_stage(["--model", "m"]) == 1
    error = capsys.readouterr().err
    assert "'sampled_accuracy' not in the evaluation metrics (have: accuracy_tf)" in error
    # The metric comes from params.yaml's `register:` section, as dvc.yaml runs it.
    (tmp_path / "params.yaml").write_text("register: {metric: kl}\nlm: {metric: ignored}\n")
    assert register_stage(["--model", "m", "--params", "params.yaml"]) == 1
    assert "'kl' not in the evaluation metrics" in capsys.readouterr().err
    assert not (tmp_path / "models" / "m" / "registered.json").exists()
    assert not (tmp_path / "mlflow").exists()
