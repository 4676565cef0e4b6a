"""Switch params.yaml to a named training profile.

params.yaml's top-level `models`, `lm_datasets`, `train` and `train_launcher` are what
`dvc repro` runs (the default CPU profile). `profiles.<name>` holds another profile's values for
`models`, `train` and `train_launcher`, plus optional overrides of other sections (e.g.
`evaluate`). This command writes them over the top-level keys, keeping the file's comments, and
sets `lm_datasets` to the datasets of the profile's models, so that the next `dvc repro` (or
`dvc exp run`) trains that profile:

    python -m training.profile gpu                # paper-size models, batch 512, one GPU
    python -m training.profile gpu --gpus 8       # the same, each run under torchrun on 8 GPUs
    git checkout params.yaml                      # back to the default CPU profile

`models` and `train` are replaced as a whole (a profile names its own models and budgets);
any other mapping is merged key by key into the section of the same name.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

REPLACED = ("models", "train", "train_launcher")


def model_datasets(models: dict[str, Any]) -> list[str]:
    """The datasets of `models` (params.yaml's mapping), each once, in the order first used."""
    return list(dict.fromkeys(entry["dataset"] for entry in models.values()))


def torchrun_launcher(gpus: int) -> str:
    """The `train_launcher` that runs each training stage on `gpus` local GPUs (DDP)."""
    return f"torchrun --standalone --nproc_per_node={gpus}"


def apply_profile(params: dict[str, Any], name: str, gpus: int = 0) -> dict[str, Any]:
    """Writes profile `name` over `params` in place (and returns it)."""
    profiles = params.get("profiles") or {}
    if name not in profiles:
        raise ValueError(f"no profile {name!r} in params.yaml; profiles: {sorted(profiles)}")
    profile = profiles[name]
    for key, value in profile.items():
        if key in REPLACED or key not in params or not isinstance(value, dict):
            # A copy: one object in two places would be written as a YAML anchor and alias.
            params[key] = copy.deepcopy(value)
        else:
            for inner_key, inner_value in value.items():
                params[key][inner_key] = inner_value
    params["lm_datasets"] = model_datasets(params["models"])  # dvc.yaml's lm@<dataset> stages
    if gpus > 1:
        params["train_launcher"] = torchrun_launcher(gpus)
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.profile", description=__doc__)
    parser.add_argument("name", help="a key of params.yaml's `profiles`")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gpus", type=int, default=0, help="> 1: launch training with torchrun")
    args = parser.parse_args(argv)
    yaml = YAML()  # round-trip: comments and key order survive
    path = Path(args.params)
    params = yaml.load(path.read_text())
    try:
        apply_profile(params, args.name, args.gpus)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    with path.open("w") as f:
        yaml.dump(params, f)
    print(f"{path}: profile {args.name!r} ({', '.join(params['models'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
