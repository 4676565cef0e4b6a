"""Read one section of params.yaml (the DVC parameters file) as a plain dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_section(path: str | Path, section: str) -> dict[str, Any]:
    """``params[section]``; an absent file or section gives {} so that defaults apply."""
    path = Path(path)
    if not path.exists():
        return {}
    params = yaml.safe_load(path.read_text()) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    value = params.get(section) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{path}: section {section!r} must be a mapping")
    return value
