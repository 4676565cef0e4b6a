"""A corpus folder is built beside its final place and renamed there only once it is complete, so
a killed build never leaves a half-written corpus under the real name."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable


def check_output(output: str, overwrite: bool) -> None:
    """SystemExit unless `output` can be (re)built: a local folder, empty unless `overwrite`."""
    if "://" in output:
        raise SystemExit("--output must be a local folder (the build renames it into place)")
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise SystemExit(f"{output} exists and is not empty; pass --overwrite to replace it")
    if os.path.exists(output) and not os.path.isdir(output):
        raise SystemExit(f"{output} exists and is not a folder")


def move_into_place(staging: str, output: str) -> None:
    """Rename the finished `staging` folder to `output`, replacing what was there."""
    if os.path.exists(output):
        retired = f"{output}.old"
        shutil.rmtree(retired, ignore_errors=True)
        os.rename(output, retired)
        os.rename(staging, output)
        shutil.rmtree(retired)
    else:
        os.rename(staging, output)


def build_then_move(output: str, build: Callable[[str], None], report_name: str) -> dict:
    """Run `build(staging)` into `<output>.partial`, then rename it to `output`; returns the
    JSON report the build wrote there. A failed build leaves neither folder half-written."""
    staging = f"{output}.partial"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed build left behind
    os.makedirs(staging)
    try:
        build(staging)
        with open(os.path.join(staging, report_name), encoding="utf-8") as handle:
            report = json.load(handle)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    move_into_place(staging, output)
    return report
