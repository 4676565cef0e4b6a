"""One way every stage reads params.yaml: its own section, as a typed dataclass.

``python -m <stage> --params params.yaml`` -> `read_params(path, SECTION, Params)`, where the
dataclass defaults are the default profile's values (a test holds params.yaml to them), so that a
stage run by hand without params.yaml behaves as the DAG's.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

P = TypeVar("P")


def read_section(path: str | Path, section: str) -> dict[str, Any]:
    """``params[section]``; an absent file or section gives {} so that defaults apply."""
    path = Path(path)
    if not path.exists():
        return {}
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    value = params.get(section) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: section {section!r} must be a mapping")
    return dict(value)


def _allowed(hint: Any) -> tuple[type, ...]:
    return typing.get_args(hint) or (hint,)  # int | None -> (int, NoneType)


def from_mapping(cls: type[P], section: str, values: Mapping[str, Any]) -> P:
    """`cls` with `values` over its defaults; an unknown key or a value of the wrong type raises."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ValueError(f"unknown {section} parameters {unknown}; valid: {sorted(hints)}")
    for name, value in values.items():
        allowed = _allowed(hints[name])
        if float in allowed:
            allowed += (int,)  # YAML writes 3 for 3.0
        if isinstance(value, bool) and bool not in allowed or not isinstance(value, allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ValueError(f"{section}.{name} = {value!r}: expected {names}")
    # 10 from YAML and 10.0 from a flag must give the same stage outputs (stats.json included)
    values = {
        k: float(v) if float in _allowed(hints[k]) and type(v) is int else v
        for k, v in values.items()
    }
    return cls(**values)


def read_params(path: str | Path | None, section: str, cls: type[P]) -> P:
    """Section `section` of the params file at `path` as `cls` (its defaults without a file)."""
    return from_mapping(cls, section, read_section(path, section) if path else {})
