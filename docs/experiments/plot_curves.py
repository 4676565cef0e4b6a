"""Learning curves of study runs: plot_curves.py OUT.png RUN_DIR[:LABEL] ... (eval_curve.csv each).

One panel per quantity (eval NLL per step, teacher-forced and sampled accuracy, KL bits, active
units), one line per run, against training examples seen.
"""

from __future__ import annotations

import csv
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


def main(argv: list[str]) -> None:
    out, specs = Path(argv[0]), argv[1:]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.4))
    for spec in specs:
        path, _, label = spec.partition(":")
        cols = read(Path(path))
        examples = [n / 1000 for n in cols["examples"]]
        for ax, (key, title) in zip(axes, PANELS, strict=True):
            if key in cols:
                ax.plot(examples, cols[key], marker=".", label=label or Path(path).name)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("training examples (thousands)", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1:])
