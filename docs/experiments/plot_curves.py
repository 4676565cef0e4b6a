"""Learning curves of study runs: plot_curves.py [--minutes] OUT.png RUN_DIR[:LABEL] ...

One panel per quantity (eval NLL per step, teacher-forced and sampled accuracy, KL bits, active
units), one line per run (its eval_curve.csv), against training examples seen. --minutes plots
against training minutes instead, from each run's train_metrics.json (steps spread evenly over
its train_minutes): runs whose steps cost different times compared at equal time.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = (
    ("eval_nll_per_step", "eval NLL / step (nats)"),
    ("eval_accuracy", "teacher-forced accuracy"),
    ("eval_sampled_accuracy", "sampled accuracy (greedy from mu)"),
    ("eval_kl_bits", "KL (bits)"),
    ("eval_active_units", "active units"),
)


def read(run: Path) -> dict[str, list[float]]:
    with open(run / "eval_curve.csv") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]}


def minutes_per_step(run: Path) -> float:
    metrics = json.loads((run / "train_metrics.json").read_text())
    return metrics["train_minutes"] / metrics["step"]


def main(argv: list[str]) -> None:
    by_minutes = argv[:1] == ["--minutes"]
    argv = argv[1:] if by_minutes else argv
    out, specs = Path(argv[0]), argv[1:]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
    for spec in specs:
        path, _, label = spec.partition(":")
        cols = read(Path(path))
        if by_minutes:
            scale = minutes_per_step(Path(path))
            xs, xlabel = [s * scale for s in cols["step"]], "training minutes"
        else:
            xs, xlabel = [n / 1000 for n in cols["examples"]], "training examples (thousands)"
        for ax, (key, title) in zip(axes, PANELS, strict=True):
            if key in cols:
                ax.plot(xs, cols[key], marker=".", label=label or Path(path).name)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(xlabel, fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1:])
