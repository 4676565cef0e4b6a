"""Pipeline options shared by every Beam pipeline of the project.

The DirectRunner defaults to one in-memory worker; locally we want every core, so unless the user
chose a runner or running mode, run the DirectRunner in multi-processing mode with one worker per
core. Any other runner (Dataflow, Flink, Spark) gets its options straight from the command line.
"""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)


def _has_flag(argv: list[str], name: str) -> bool:
    return any(arg == f"--{name}" or arg.startswith(f"--{name}=") for arg in argv)


def _usable_cores() -> int:
    """Cores this process may run on (a container's CPU set, not the host's CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def pipeline_options(
    beam_args: list[str], *, default_workers: int | None = None
) -> PipelineOptions:
    """Build PipelineOptions from the arguments argparse did not consume.

    `default_workers` caps the DirectRunner's process count (defaults to all cores).
    """
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        standard.runner = "DirectRunner"
    if standard.runner in ("DirectRunner", "direct"):
        direct = options.view_as(DirectOptions)
        if not _has_flag(beam_args, "direct_running_mode"):
            direct.direct_running_mode = "multi_processing"
        if direct.direct_running_mode != "in_memory" and not _has_flag(
            beam_args, "direct_num_workers"
        ):
            direct.direct_num_workers = default_workers or _usable_cores()
        if not _has_flag(beam_args, "default_sdk_harness_log_level"):
            # Local workers otherwise log a dozen INFO lines each about their gRPC channels.
            options.view_as(WorkerOptions).default_sdk_harness_log_level = "WARNING"
    else:
        # Remote workers need the project's code: ship it as a package unless told otherwise.
        setup = options.view_as(SetupOptions)
        if setup.setup_file is None and not _has_flag(beam_args, "sdk_container_image"):
            repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            setup.setup_file = os.path.join(repo_root, "setup.py")
        setup.save_main_session = False
    return options
