"""The MLflow Model Registry side of the project: one registered model per config.

A model trained from config ``<config>`` is registered as ``musicvae-<config>``. Each version
carries tags that say where it came from and how good it is:

- ``model_sha256``: sha256 of ``model.pt``, the idempotency key (the same weights never make a
  second version);
- ``metric.<name>``: every scalar of the evaluation metrics (e.g. ``metric.sampled_accuracy``);
- whatever provenance the caller adds (data version, git commit, config).

Two aliases tell users which version to load: ``champion`` (the best so far on the selection
metric) and ``challenger`` (the latest version that did not beat it). ``champion`` moves only
when a new version is strictly better.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"
KEY_TAG = "model_sha256"
METRIC_TAG_PREFIX = "metric."
MODEL_DESCRIPTION = (
    "MusicVAE (Roberts et al., ICML 2018) trained from one config. @champion: the best version on "
    "the selection metric; @challenger: the latest version that did not beat it. Load with "
    "mlflow.pyfunc.load_model('models:/<name>@champion'); see evaluation/registry/pyfunc_model.py."
)


@dataclass(frozen=True)
class ModelSource:
    """Where a version's files live: what `MlflowClient.create_model_version` needs."""

    uri: str
    run_id: str | None = None
    model_id: str | None = None


@dataclass(frozen=True)
class Registration:
    """Outcome of one registration, as written to ``registered.json``."""

    name: str
    version: str
    alias: str  # "champion" or "challenger": the alias this version holds
    created: bool  # False when the same weights were registered before
    champion_version: str
    metric: str
    value: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "created": self.created,
            "champion_version": self.champion_version,
            "metric": self.metric,
            "value": self.value,
        }


def registered_model_name(config: str) -> str:
    return f"musicvae-{config}"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metric_tags(metrics: Mapping[str, Any]) -> dict[str, str]:
    """``metric.<key>`` tags for every scalar metric; lists and dicts are left to the run."""
    tags = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        tags[METRIC_TAG_PREFIX + key] = str(value)
    return tags


def selection_value(metrics: Mapping[str, Any], metric: str) -> float:
    """The finite number that ranks versions; a clear error when the metrics lack it."""
    if metric not in metrics:
        known = ", ".join(sorted(metrics)) or "none"
        raise KeyError(f"metric {metric!r} not in the evaluation metrics (have: {known})")
    value = metrics[metric]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"metric {metric!r} must be a finite number, got {value!r}")
    return float(value)


def find_version(client: MlflowClient, name: str, key: str) -> ModelVersion | None:
    """The version of ``name`` registered from the weights with sha256 ``key``, if any."""
    if not _model_exists(client, name):
        return None
    found = client.search_model_versions(f"name = '{name}' and tags.{KEY_TAG} = '{key}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def register(
    client: MlflowClient,
    *,
    name: str,
    key: str,
    source: Callable[[], ModelSource],
    metrics: Mapping[str, Any],
    metric: str,
    greater_is_better: bool = True,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
) -> Registration:
    """Register the weights identified by ``key`` under ``name`` and place its alias.

    ``source`` is called only when no version of these weights exists yet, so that re-running
    logs and registers nothing new. On a re-run the metric tags are refreshed (``tags``, the
    provenance, are kept as first registered) and the alias decision is taken again, which
    repairs a run that stopped between registering and moving the alias.
    """
    value = selection_value(metrics, metric)
    version_tags = {**(tags or {}), **metric_tags(metrics), KEY_TAG: key}

    existing = find_version(client, name, key)
    if existing is None:
        if not _model_exists(client, name):
            client.create_registered_model(name, description=MODEL_DESCRIPTION)
        where = source()
        version = client.create_model_version(
            name,
            source=where.uri,
            run_id=where.run_id,
            tags=version_tags,
            description=description,
            model_id=where.model_id,
        ).version
    else:
        # Provenance stays as first registered; the metrics follow the latest evaluation.
        version = existing.version
        for tag, tag_value in metric_tags(metrics).items():
            if existing.tags.get(tag) != tag_value:
                client.set_model_version_tag(name, version, tag, tag_value)

    alias, champion = _place_alias(client, name, version, value, metric, greater_is_better)
    return Registration(
        name=name,
        version=str(version),
        alias=alias,
        created=existing is None,
        champion_version=str(champion),
        metric=metric,
        value=value,
    )


def is_better(new: float, old: float | None, greater_is_better: bool = True) -> bool:
    """Strictly better; a champion with no recorded value (registered by hand) always loses."""
    if old is None:
        return True
    return new > old if greater_is_better else new < old


def _place_alias(
    client: MlflowClient,
    name: str,
    version: str,
    value: float,
    metric: str,
    greater_is_better: bool,
) -> tuple[str, str]:
    aliases = client.get_registered_model(name).aliases
    champion = aliases.get(CHAMPION)
    if champion is not None and str(champion) == str(version):
        return CHAMPION, str(version)

    champion_value = None
    if champion is not None:
        champion_tags = client.get_model_version(name, str(champion)).tags
        champion_value = _as_float(champion_tags.get(METRIC_TAG_PREFIX + metric))

    if is_better(value, champion_value, greater_is_better):
        client.set_registered_model_alias(name, CHAMPION, version)
        if str(aliases.get(CHALLENGER)) == str(version):
            client.delete_registered_model_alias(name, CHALLENGER)
        return CHAMPION, str(version)
    client.set_registered_model_alias(name, CHALLENGER, version)
    return CHALLENGER, str(champion)


def _as_float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _model_exists(client: MlflowClient, name: str) -> bool:
    try:
        client.get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True
