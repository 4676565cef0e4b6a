"""A throw-away copy of this repository that runs the real DVC pipeline on a tiny profile.

`build_tiny_repo(dst, mlflow_uri)` copies the working tree (tracked files plus untracked,
non-ignored ones) into `dst`, builds a 12-tune corpus there, shrinks params.yaml to the `_tiny`
models, commits everything into a fresh git repository and returns a `DvcRepo` whose commands
run with this virtualenv's tools and the given MLflow store. Nothing outside `dst` and the store
is touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.multitrack import mma

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent

# The first 12 tunes of Aird's Airs and of the Essen collection (file order; one long Essen tune
# gives the 16-bar models a few batches). With eval and test fractions of 0.3,
# their hashes put 2-bar and 16-bar windows in every split (checked by the test, not assumed).
CORPUS_ARGS = [
    "--collections",
    "airdsAirs,essenFolksong",
    "--limit",
    "12",
    "--direct_num_workers=1",
]
SPLIT_FRACTIONS = {"eval_fraction": 0.3, "test_fraction": 0.3}
# Ten of MMA's groove files (96 grooves) as the multitrack stage's library: 5 s of `mma` instead
# of the whole library's, and drum windows in every split (541: 303 train, 106 eval, 99 test).
MMA_LIBRARY_FILES = tuple(
    f"{name}.mma"
    for name in ("folk", "50srock", "60srock", "8beat", "basicrock", "ballad", "bluegrass",
                 "swing", "jazzrock", "rhumba")
)  # fmt: skip

# The models of the tiny profile: `_tiny` configs (training/configs.py) -> their datasets.
TINY_MODELS = {
    "cat-mel_2bar_tiny": "mel_2bar",
    "cat-drums_2bar_tiny": "drums_2bar",
    "flat-mel_16bar_tiny": "mel_16bar",
    "hierdec-mel_16bar_tiny": "mel_16bar",
}
TINY_TRAIN = {"max_steps": 4, "checkpoint_every": 2, "log_every": 2, "eval_examples": 16}
TINY_LM = {
    "embed_size": 8,
    "hidden_size": 16,
    "batch_size": 8,
    "train_steps": 4,
    "max_test_examples": 16,
}
TINY_EVALUATE = {
    "max_examples": 8,
    "batch_size": 8,
    "n_resamples": 20,
    "interpolation_pairs": 2,
    "interpolation_steps": 3,
    "num_samples": 2,
    "num_reconstruction_plots": 1,
    "num_interpolation_plots": 1,
}

_RUNNING = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


def tool_env(mlflow_uri: str) -> dict[str, str]:
    """The environment `make repro` gives stage commands: this venv first on PATH, offline."""
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        MLFLOW_TRACKING_URI=mlflow_uri,
        MLFLOW_REGISTRY_URI=mlflow_uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        DVC_NO_ANALYTICS="1",
        PYTHONDONTWRITEBYTECODE="1",
        GIT_AUTHOR_NAME="e2e",
        GIT_AUTHOR_EMAIL="e2e@example.invalid",
        GIT_COMMITTER_NAME="e2e",
        GIT_COMMITTER_EMAIL="e2e@example.invalid",
    )
    for name in ("PYTHONPATH", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        env.pop(name, None)  # stage commands import the copy and choose their experiments
    return env


@dataclass
class DvcRepo:
    root: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True, with_stderr: bool = True) -> str:
        """Run a command in the repo; returns its stdout (and stderr, interleaved, unless
        `with_stderr` is false); raises with both on failure."""
        proc = subprocess.run(
            args,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if with_stderr else subprocess.PIPE,
            text=True,
            timeout=600,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr or ''}"
            )
        return proc.stdout

    def dvc(self, *args: str, check: bool = True, with_stderr: bool = True) -> str:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check, with_stderr=with_stderr)

    def repro(self) -> tuple[str, float]:
        """`dvc repro`: its output and wall time in seconds."""
        started = time.perf_counter()
        out = self.dvc("repro")
        return out, time.perf_counter() - started

    def start_repro(self, log: Path) -> subprocess.Popen:
        """`dvc repro` in its own process group (so that a test can kill the whole tree), its
        output going to `log` (a pipe nobody reads could fill up and stall it)."""
        with log.open("w") as handle:
            return subprocess.Popen(
                [str(VENV_BIN / "dvc"), "repro"],
                cwd=self.root,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def changed_stages(self) -> set[str]:
        """Stages that `dvc status` says must run, by name."""
        return set(json.loads(self.dvc("status", "--json", with_stderr=False)))

    def params(self) -> dict[str, Any]:
        return yaml.safe_load((self.root / "params.yaml").read_text())

    def edit_params(self, edit: Callable[[dict[str, Any]], None]) -> None:
        params = self.params()
        edit(params)
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(output: str) -> set[str]:
    """The stages a `dvc repro` output says it ran."""
    return set(_RUNNING.findall(output))


def copy_worktree(src: Path, dst: Path) -> None:
    """Tracked files and untracked, non-ignored ones (what a commit of the tree would hold)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=src,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = src / name
        if source.is_file():  # a tracked file deleted in the tree is left out
            target = dst / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def tiny_params(params: dict[str, Any]) -> dict[str, Any]:
    """The repo's params.yaml with the tiny models and budgets; every other knob kept."""
    params = dict(params)
    params["examples"] = {**params["examples"], **SPLIT_FRACTIONS}
    params["multitrack"] = {**params["multitrack"], "library": "mma-library"}
    params["models"] = {name: {"dataset": dataset} for name, dataset in TINY_MODELS.items()}
    params["lm_datasets"] = sorted(set(TINY_MODELS.values()))
    defaults = (params.get("train") or {}).get("defaults") or {}
    params["train"] = {"defaults": {**defaults, **TINY_TRAIN}, **{m: {} for m in TINY_MODELS}}
    params["lm"] = {**params["lm"], **TINY_LM}
    params["evaluate"] = {**params["evaluate"], **TINY_EVALUATE}
    return params


def build_tiny_repo(dst: Path, mlflow_uri: str, src: Path = REPO_ROOT) -> DvcRepo:
    """A committed git + DVC repo in `dst` with the tiny corpus added; nothing reproduced yet."""
    copy_worktree(src, dst)
    (dst / "dvc.lock").unlink(missing_ok=True)  # the real run's hashes: not ours
    repo = DvcRepo(dst, tool_env(mlflow_uri))
    repo.run(sys.executable, "-m", "pipelines.corpus", "--output", "data", *CORPUS_ARGS)
    (dst / "mma-library").mkdir()
    for name in MMA_LIBRARY_FILES:
        shutil.copy(Path(mma.DEFAULT_LIBRARY) / name, dst / "mma-library" / name)
    params = tiny_params(yaml.safe_load((src / "params.yaml").read_text()))
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repo.run("git", "init", "--quiet", "--initial-branch=main")
    repo.dvc("add", "data")
    repo.run("git", "add", "--all")
    repo.run("git", "commit", "--quiet", "--message", "tiny profile")
    return repo
