"""The DAG's stages that do not need `mma`: `make repro` runs these where mma is missing.

    python -m pipelines.multitrack.without_mma [dvc.yaml] [params.yaml]   # one name per line

Left out: the multitrack corpus, its two Beam stages, every per-model stage (`foreach:
${models}`) of a model trained on one of its datasets, and every per-dataset stage (`foreach:
${lm_datasets}`) of one of its datasets.
"""

from __future__ import annotations

import sys

import yaml

MULTITRACK_STAGES = ("multitrack", "notesequences_multitrack", "examples_multitrack")
MULTITRACK_DATASETS = ("drums_2bar", "trio_16bar")


def stages_without_mma(dvc_yaml: dict, params: dict) -> list[str]:
    # Each foreach's keys -> their datasets.
    datasets_of = {
        "${models}": {m: e["dataset"] for m, e in (params.get("models") or {}).items()},
        "${lm_datasets}": {d: d for d in params.get("lm_datasets") or []},
    }
    names = []
    for name, stage in dvc_yaml["stages"].items():
        if name in MULTITRACK_STAGES:
            continue
        if "foreach" not in stage:
            names.append(name)
            continue
        if stage["foreach"] not in datasets_of:
            raise ValueError(
                f"stage {name}: foreach over {stage['foreach']!r}, not one of {sorted(datasets_of)}"
            )
        names += [
            f"{name}@{key}"
            for key, dataset in datasets_of[stage["foreach"]].items()
            if dataset not in MULTITRACK_DATASETS
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
