"""Which project files a DVC stage's command runs: its module and everything it imports.

`stage_code(dvc_yaml_stage)` follows `python -m <module>` through every import statement of the
project's packages (module level or inside functions, read with `ast`, transitively), adds the
`__init__.py` of each package on the way (Python runs them) and, for `register`, the packages
that the registered pyfunc model ships (`CODE_PACKAGES`). `python tests/stage_code.py` prints
each stage's list, to paste into dvc.yaml when a test says one is missing.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "training", "evaluation")
_MODULE = re.compile(r"(?:^|\s)-m\s+([\w.]+)")


def module_file(module: str, root: Path = REPO_ROOT) -> Path | None:
    """The project file that `import module` runs, or None outside the project."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(module: str, root: Path) -> set[Path]:
    parts = module.split(".")
    inits = (root.joinpath(*parts[:i], "__init__.py") for i in range(1, len(parts) + 1))
    return {p for p in inits if p.is_file()}


def _imported_modules(path: Path, module: str) -> set[str]:
    """Every module an import statement of `path` may name, submodules of `from X import Y` too."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_closure(module: str, root: Path = REPO_ROOT) -> set[Path]:
    """The project files that running `python -m module` imports, itself included."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = module_file(name, root)
        if path is None:
            continue
        files = {path} | _package_inits(name, root)
        for file in files - seen:
            seen.add(file)
            rel = file.relative_to(root).with_suffix("")
            file_module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            todo.extend(_imported_modules(file, file_module))
        main = path.parent / "__main__.py" if path.name == "__init__.py" else None
        if main is not None and main.is_file() and name == module and main not in seen:
            todo.append(f"{name}.__main__")
    return seen


def shipped_code(root: Path = REPO_ROOT) -> set[Path]:
    """The files of the packages that the registered pyfunc model carries (its code_paths)."""
    from evaluation.registry.pyfunc_model import CODE_PACKAGES

    return {p for package in CODE_PACKAGES for p in (root / package).rglob("*.py")}


def stage_modules(dvc_yaml: Path = REPO_ROOT / "dvc.yaml") -> dict[str, str]:
    """Stage name (as written in dvc.yaml, before foreach) -> the module its command runs."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    modules = {}
    for name, stage in stages.items():
        match = _MODULE.search(_definition(stage)["cmd"])
        if match:
            modules[name] = match.group(1)
    return modules


def stage_code(name: str, root: Path = REPO_ROOT) -> set[Path]:
    """The project code that stage `name` runs (see the module docstring)."""
    code = import_closure(stage_modules(root / "dvc.yaml")[name], root)
    if name == "register":
        code |= shipped_code(root)
    return code


def declared_deps(name: str, root: Path = REPO_ROOT) -> list[str]:
    """The deps of stage `name` as dvc.yaml writes them (foreach templates unresolved)."""
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][name]
    return [d if isinstance(d, str) else next(iter(d)) for d in _definition(stage)["deps"]]


def covered(path: Path, deps: list[str], root: Path = REPO_ROOT) -> bool:
    """Whether a dep names `path` or a folder above it."""
    rel = path.relative_to(root)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


def _definition(stage: dict[str, Any]) -> dict[str, Any]:
    return stage.get("do", stage)


if __name__ == "__main__":
    for stage in stage_modules():
        print(f"{stage}:")
        for path in sorted(stage_code(stage)):
            print(f"  - {path.relative_to(REPO_ROOT)}")
    sys.exit(0)
