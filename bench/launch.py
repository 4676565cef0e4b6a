"""Training rate of whole runs by launch: processes, threads per process, fp32 or bf16 autocast.

    python bench/launch.py                                   # the default run's three models
    python bench/launch.py --configs hierdec-mel_16bar_cpu --steps 100
    python bench/launch.py --configs cat-mel_2bar_small --set batch_size=64 --steps 30

Each row is a real short run of `training.train` on the default datasets (torchrun with gloo DDP
for two processes), with MLflow off and no checkpoint before the last step. The figure is the
examples/s the run itself logs over its last `log_every` steps (global batches: every process's
examples), so start-up and the final evaluation are not in it. The ratio column is against the
first row of the same config, measured in the same invocation. bf16 rows run only where
training.precision says the CPU (or GPU) has native bf16; elsewhere they are listed as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from training.configs import get_config  # noqa: E402
from training.precision import cpu_has_native_bf16  # noqa: E402

DEFAULT_CONFIGS = ["cat-mel_2bar_cpu", "flat-mel_16bar_cpu", "hierdec-mel_16bar_cpu"]
# (processes, threads per process, precision); the first is each config's reference.
LAUNCHES = [(1, 1, "fp32"), (1, 2, "fp32"), (2, 1, "fp32"), (1, 1, "bf16"), (2, 1, "bf16")]


def run_rate(
    config: str,
    procs: int,
    threads: int,
    precision: str,
    steps: int,
    data: Path,
    extra_sets: list[str] | None = None,
) -> float:
    """examples/s over the last logged window of a `steps`-step run."""
    with tempfile.TemporaryDirectory() as out:
        launcher = (
            # torchrun's module form: works without the venv's bin/ on PATH.
            [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            + [f"--nproc_per_node={procs}", "-m"]
            if procs > 1
            else [sys.executable, "-m"]
        )
        sets = [f"precision={precision}", f"cpu_threads={threads}", "checkpoint_every=1000000"]
        sets += extra_sets or []
        command = [
            *launcher,
            "training.train",
            "--model",
            config,
            "--max-steps",
            str(steps),
            "--out",
            out,
            "--data",
            str(data / get_config(config).dataset),
            "--no-mlflow",
            "--no-progress",
            *[arg for kv in sets for arg in ("--set", kv)],
        ]
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        return float(json.loads((Path(out) / "train_metrics.json").read_text())["examples_per_s"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", default=DEFAULT_CONFIGS)
    parser.add_argument("--steps", type=int, default=100, help="steps per run (logged every 10)")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "datasets")
    parser.add_argument(
        "--launches",
        nargs="*",
        metavar="PxTxPREC",
        help="subset of the grid, e.g. 1x1xfp32 2x1xbf16 (the first is the reference)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every run, e.g. batch_size=64 (repeatable)",
    )
    args = parser.parse_args(argv)
    launches = LAUNCHES
    if args.launches:
        launches = [(int(p), int(t), prec) for p, t, prec in (s.split("x") for s in args.launches)]

    missing = [c for c in args.configs if not (args.data / get_config(c).dataset).is_dir()]
    if missing:
        raise SystemExit(f"no dataset for {', '.join(missing)} under {args.data}: run make repro")
    native = cpu_has_native_bf16()
    print(f"CPU native bf16: {native}; {args.steps} steps per run; os.cpu_count() {os.cpu_count()}")
    header = f"{'config':24} {'procs':>5} {'threads':>7} {'precision':>9} {'ex/s':>8} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for config in args.configs:
        reference = None
        for procs, threads, precision in launches:
            label = f"{config:24} {procs:>5} {threads:>7} {precision:>9}"
            if precision == "bf16" and not native:
                print(f"{label} {'skipped: no native bf16':>15}")
                continue
            rate = run_rate(config, procs, threads, precision, args.steps, args.data, args.set)
            reference = reference or rate
            print(f"{label} {rate:8.0f} {rate / reference:5.2f}x", flush=True)


if __name__ == "__main__":
    main()
