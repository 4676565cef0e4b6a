"""The DAG's stages that do not need `mma`: `make repro` runs these where mma is missing.

    python -m pipelines.multitrack.without_mma [dvc.yaml] [params.yaml]   # one name per line

Left out: the multitrack corpus, its two Beam stages, and every per-model stage (`foreach:
${models}`) of a model trained on one of its datasets.
"""

from __future__ import annotations

import sys

import yaml

MULTITRACK_STAGES = ("multitrack", "notesequences_multitrack", "examples_multitrack")
MULTITRACK_DATASETS = ("drums_2bar", "trio_16bar")


def stages_without_mma(dvc_yaml: dict, params: dict) -> list[str]:
    models = params.get("models") or {}
    names = []
    for name, stage in dvc_yaml["stages"].items():
        if name in MULTITRACK_STAGES:
            continue
        if "foreach" not in stage:
            names.append(name)
            continue
        if stage["foreach"] != "${models}":
            raise ValueError(f"stage {name}: foreach over {stage['foreach']!r}, not ${{models}}")
        names += [
            f"{name}@{model}"
            for model, entry in models.items()
            if entry["dataset"] not in MULTITRACK_DATASETS
        ]
    return names


def main(argv: list[str]) -> None:
    dvc_path, params_path = (argv + ["dvc.yaml", "params.yaml"][len(argv) :])[:2]
    with open(dvc_path, encoding="utf-8") as handle:
        dvc_yaml = yaml.safe_load(handle)
    with open(params_path, encoding="utf-8") as handle:
        params = yaml.safe_load(handle)
    print("\n".join(stages_without_mma(dvc_yaml, params)))


if __name__ == "__main__":
    main(sys.argv[1:])
