"""dvc.yaml's code dependencies cannot fall behind the imports.

For every stage, each project file that its command imports (transitively, lazy imports
included; see tests/stage_code.py) is a dep of the stage or lies in a folder that is. Then, in a
throw-away DVC repo whose dvc.lock is made by `dvc commit` over placeholder data (nothing runs),
editing such a file makes `dvc status` report exactly the stages that import it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from e2e_repo import VENV_BIN, copy_worktree, tool_env  # noqa: E402
from stage_code import (  # noqa: E402
    PACKAGES,
    REPO_ROOT,
    covered,
    declared_deps,
    import_closure,
    module_file,
    stage_code,
    stage_modules,
)

STAGES = sorted(yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"])


def test_every_stage_runs_a_project_module():
    assert set(stage_modules()) == set(STAGES)
    for stage, module in stage_modules().items():
        assert import_closure(module), (stage, module)


def test_closure_follows_lazy_and_transitive_imports():
    evaluate = {p.relative_to(REPO_ROOT).as_posix() for p in import_closure("evaluation.evaluate")}
    # evaluate -> testset -> training.configs -> pipelines.representation; lm.py is imported
    # inside a function of lm.py's caller, params.py at module level; __init__ files run.
    assert {
        "pipelines/representation.py",
        "training/configs.py",
        "training/generate.py",
        "evaluation/params.py",
        "pipelines/__init__.py",
    } <= evaluate
    corpus = {p.relative_to(REPO_ROOT).as_posix() for p in import_closure("pipelines.corpus")}
    assert "pipelines/corpus/__main__.py" in corpus and "pipelines/corpus/midi.py" in corpus
    notesequences = import_closure("pipelines.notesequences")
    assert not any(p.is_relative_to(REPO_ROOT / "training") for p in notesequences)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_deps_cover_every_file_it_imports(stage):
    deps = declared_deps(stage)
    missing = sorted(
        p.relative_to(REPO_ROOT).as_posix() for p in stage_code(stage) if not covered(p, deps)
    )
    assert missing == [], f"add to dvc.yaml's {stage} deps (`python tests/stage_code.py`)"


@pytest.mark.parametrize("stage", STAGES)
def test_stage_code_deps_exist(stage):
    code = [d for d in declared_deps(stage) if d.split("/")[0] in PACKAGES]
    assert code and all((REPO_ROOT / d).exists() for d in code), code


def test_register_ships_and_depends_on_the_pyfunc_code_paths():
    from evaluation.registry.pyfunc_model import CODE_PACKAGES

    assert set(CODE_PACKAGES) <= set(declared_deps("register"))


# ---------------------------------------------------------------------------------------------
# dvc status in a copy


def _placeholder(path: Path) -> None:
    """A file for a path with a suffix (model.pt, metrics.json), else a folder holding one."""
    if path.exists():
        return
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("placeholder\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "placeholder").write_text("placeholder\n")


@pytest.fixture(scope="module")
def committed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the tree, every stage up to date over placeholder data."""
    from dvc.repo import Repo

    root = tmp_path_factory.mktemp("dag")
    copy_worktree(REPO_ROOT, root)
    (root / "dvc.lock").unlink(missing_ok=True)
    env = tool_env(f"sqlite:///{root / 'mlflow.db'}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            for item in (*stage.deps, *stage.outs):
                if not item.def_path.endswith(".yaml"):
                    _placeholder(root / item.def_path)
    dvc = [str(VENV_BIN / "dvc")]
    subprocess.run([*dvc, "commit", "--force", "-q"], cwd=root, check=True, env=env)
    return root, env


def _changed_groups(root: Path, env: dict[str, str]) -> set[str]:
    """Stage groups (`evaluate` for every `evaluate@<model>`) that `dvc status` reports."""
    out = subprocess.run(
        [str(VENV_BIN / "dvc"), "status", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {name.split(":")[-1].split("@")[0] for name in json.loads(out)}


def _probe(stage: str, closures: dict[str, set[Path]]) -> Path:
    """A file that `stage` imports (not its own module when it has others), shared by the
    fewest stages, so that each stage is probed by a file of its own where one exists."""
    main = module_file(stage_modules()[stage])
    candidates = sorted(closures[stage] - {main}) or [main]
    return min(candidates, key=lambda p: sum(p in c for c in closures.values()))


def test_editing_an_imported_file_makes_dvc_status_report_its_stages(committed):
    root, env = committed
    assert _changed_groups(root, env) == set(), "placeholders committed: all up to date"
    closures = {stage: stage_code(stage) for stage in STAGES}
    probes = {_probe(stage, closures) for stage in STAGES}
    for probe in sorted(probes):
        expected = {stage for stage, files in closures.items() if probe in files}
        target = root / probe.relative_to(REPO_ROOT)
        original = target.read_bytes()
        target.write_bytes(original + b"\n# edited\n")
        try:
            assert _changed_groups(root, env) == expected, probe.relative_to(REPO_ROOT)
        finally:
            target.write_bytes(original)
    assert _changed_groups(root, env) == set()
