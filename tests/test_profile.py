"""Profiles in params.yaml: `python -m training.profile` switches the DAG to another set of models,
and DVC renders the switched dvc.yaml into one train/evaluate/register stage per model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo

from pipelines.extract.windows import DATASET_SPECS
from training.configs import get_config
from training.profile import main as profile_main
from training.profile import model_datasets

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """dvc.yaml and params.yaml in a fresh DVC project (no data: enough to render the DAG)."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    Repo.init(str(tmp_path), no_scm=True).close()
    return tmp_path


def stage_commands(project: Path) -> dict[str, str]:
    """Each stage of the rendered dvc.yaml (foreach expanded) -> its command."""
    with Repo(str(project)) as repo:
        return {stage.name: stage.cmd for stage in repo.index.stages}


def test_every_profile_names_known_configs_on_their_datasets():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    profiles = {"default": params, **params["profiles"]}
    for name, profile in profiles.items():
        train = profile["train"]
        for model, entry in profile["models"].items():
            overrides = {**train["defaults"], **(train.get(model) or {})}
            cfg = get_config(model, overrides)  # raises on an unknown name or key
            assert cfg.dataset == entry["dataset"], (name, model)
            assert entry["dataset"] in DATASET_SPECS
    # One interpolation LM per dataset the models read, none for a dataset they don't.
    assert params["lm_datasets"] == model_datasets(params["models"])


def test_gpu_profile_switches_models_and_keeps_the_rest(project: Path):
    before = yaml.safe_load((project / "params.yaml").read_text())
    assert profile_main(["gpu", "--params", str(project / "params.yaml"), "--gpus", "4"]) == 0

    text = (project / "params.yaml").read_text()
    after = yaml.safe_load(text)
    gpu = before["profiles"]["gpu"]
    assert after["models"] == gpu["models"]
    assert after["lm_datasets"] == ["mel_2bar", "mel_16bar", "drums_2bar", "trio_16bar"]
    assert after["train"] == gpu["train"]
    assert after["train_launcher"] == "torchrun --standalone --nproc_per_node=4"
    # Merged, not replaced: the profile's evaluate keys over the default ones.
    assert after["evaluate"] == {**before["evaluate"], **gpu["evaluate"]}
    for untouched in ("notesequences", "examples", "lm", "register", "profiles"):
        assert after[untouched] == before[untouched]
    assert "# Every knob of the DAG" in text  # comments survive the round trip
    assert "&id" not in text and "*id" not in text  # no YAML anchors: each section written out

    commands = stage_commands(project)
    assert {f"lm@{dataset}" for dataset in after["lm_datasets"]} <= set(commands)
    for model in gpu["models"]:
        assert {f"train@{model}", f"evaluate@{model}", f"register@{model}"} <= set(commands)
        assert commands[f"train@{model}"].startswith(
            f"torchrun --standalone --nproc_per_node=4 -m training.train --model {model} "
        )
    assert not any(name.endswith("_cpu") for name in commands)


def test_default_profile_renders_and_unknown_profile_is_a_clear_error(project: Path, capsys):
    commands = stage_commands(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    for model in params["models"]:
        assert commands[f"train@{model}"].startswith(
            f"{params['train_launcher']} -m training.train --model {model} "
        )
    original = (project / "params.yaml").read_text()
    assert profile_main(["nope", "--params", str(project / "params.yaml")]) == 1
    assert "no profile 'nope'" in capsys.readouterr().err
    assert (project / "params.yaml").read_text() == original
