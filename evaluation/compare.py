"""One table across the models of a run: ours beside the paper's Table 1, and hierarchical - flat.

``python -m evaluation.compare [--eval-dir eval] [--models A B ...] [--out eval/comparison]``
reads what ``evaluation.evaluate`` wrote for every model (``metrics.json``, ``model_info.json``,
``per_example.csv``) and writes ``comparison.md`` (for people) and ``comparison.json`` (for
``dvc metrics show`` and scripts).

The paper's central claim is that a hierarchical decoder reconstructs 16-bar sequences much
better than a flat one, above all when sampling. For every dataset with both kinds of model the
difference hierarchical - flat gets a 95 % bootstrap interval: paired over the test examples both
models scored (the same evaluation subset gives the same examples), unpaired when they share none.
A claim "holds" here only when its interval excludes zero.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import metrics as m
from evaluation.params import CompareParams
from pipelines.params import read_params, read_section

# Roberts et al. (ICML 2018), Table 1: reconstruction accuracy on the Lakh MIDI test set,
# (teacher-forced, sampled), keyed by (our dataset name, decoder). The paper's 16-bar drum
# models have no dataset of ours.
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("mel_2bar", "flat"): (0.986, 0.951),
    ("drums_2bar", "flat"): (0.979, 0.917),
    ("mel_16bar", "flat"): (0.883, 0.620),
    ("mel_16bar", "hierarchical"): (0.919, 0.812),
    ("trio_16bar", "flat"): (0.796, 0.579),
    ("trio_16bar", "hierarchical"): (0.848, 0.753),
}
COMPARED = (
    "tf_accuracy",
    "sampled_accuracy",
    "magenta_sampled_accuracy",
)  # per-example columns whose difference we test


@dataclass
class ModelResult:
    name: str
    info: dict[str, Any]
    metrics: dict[str, Any]
    per_example: dict[str, np.ndarray]  # column -> values, aligned with ids
    ids: np.ndarray

    @property
    def decoder(self) -> str:
        return "hierarchical" if self.info.get("hierarchical") else "flat"

    @property
    def dataset(self) -> str:
        return str(self.info.get("dataset", "?"))


def read_per_example(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path} has no rows")
    ids = np.array([row["example_id"] for row in rows])
    columns = {
        key: np.array([float(row[key]) for row in rows]) for key in rows[0] if key != "example_id"
    }
    return ids, columns


# What the comparison reads of each model's evaluation (eval/<model>/).
INPUT_FILES = ("metrics.json", "model_info.json", "per_example.csv")


def collect(model_dir: Path, into: Path) -> None:
    """Copy one model's INPUT_FILES from `model_dir` to the folder `into`."""
    into.mkdir(parents=True, exist_ok=True)
    for name in INPUT_FILES:
        if not (model_dir / name).is_file():
            raise FileNotFoundError(
                f"missing {model_dir / name}: run `python -m evaluation.evaluate --model "
                f"{model_dir.name}` first"
            )
        shutil.copyfile(model_dir / name, into / name)


def load_result(model_dir: Path) -> ModelResult:
    """What evaluate.py wrote for one model; a clear error names the missing file."""
    needed = [model_dir / f for f in INPUT_FILES]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing {', '.join(missing)}: run `python -m evaluation.evaluate --model "
            f"{model_dir.name}` first"
        )
    ids, per_example = read_per_example(needed[2])
    return ModelResult(
        name=model_dir.name,
        info=json.loads(needed[1].read_text()),
        metrics=json.loads(needed[0].read_text()),
        per_example=per_example,
        ids=ids,
    )


def difference(
    hier: ModelResult, flat: ModelResult, column: str, n_resamples: int, seed: int
) -> tuple[m.Interval, str, int]:
    """(interval of hier - flat, pairing used, examples compared) for one per-example column."""
    shared, hier_index, flat_index = np.intersect1d(hier.ids, flat.ids, return_indices=True)
    if len(shared) >= 2:
        interval = m.paired_bootstrap_difference(
            hier.per_example[column][hier_index],
            flat.per_example[column][flat_index],
            n_resamples=n_resamples,
            seed=seed,
        )
        return interval, "paired", len(shared)
    interval = m.unpaired_bootstrap_difference(
        hier.per_example[column], flat.per_example[column], n_resamples=n_resamples, seed=seed
    )
    return interval, "unpaired", min(len(hier.ids), len(flat.ids))


def compare(results: list[ModelResult], n_resamples: int = 2000, seed: int = 0) -> dict:
    """The comparison as a JSON-able dict: one entry per model, one per hierarchical-flat pair."""
    models = {}
    for r in results:
        paper = PAPER_TABLE1.get((r.dataset, r.decoder))
        models[r.name] = {
            "dataset": r.dataset,
            "decoder": r.decoder,
            **{k: v for k, v in r.metrics.items() if isinstance(v, int | float)},
            "paper_tf_accuracy": paper[0] if paper else None,
            "paper_sampled_accuracy": paper[1] if paper else None,
        }
    differences = {}
    for hier in (r for r in results if r.decoder == "hierarchical"):
        for flat in (r for r in results if r.decoder == "flat"):
            if hier.dataset != flat.dataset:
                continue
            entry: dict[str, Any] = {"hierarchical": hier.name, "flat": flat.name}
            for column in COMPARED:
                if column not in hier.per_example or column not in flat.per_example:
                    continue  # an evaluation from before that column existed
                interval, pairing, count = difference(hier, flat, column, n_resamples, seed)
                entry.update(interval.as_dict(f"{column}_diff"))
                entry[f"{column}_diff_holds"] = interval.excludes_zero and interval.mean > 0
                entry["pairing"], entry["examples"] = pairing, count
            paper_h = PAPER_TABLE1.get((hier.dataset, "hierarchical"))
            paper_f = PAPER_TABLE1.get((flat.dataset, "flat"))
            if paper_h and paper_f:
                entry["paper_tf_accuracy_diff"] = round(paper_h[0] - paper_f[0], 3)
                entry["paper_sampled_accuracy_diff"] = round(paper_h[1] - paper_f[1], 3)
            differences[f"{hier.name}_minus_{flat.name}"] = entry
    return {"models": models, "hierarchical_minus_flat": differences}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _with_ci(row: dict, key: str) -> str:
    if key not in row:
        return "–"
    return f"{_fmt(row[key])} [{_fmt(row.get(key + '_ci_low'))}, {_fmt(row.get(key + '_ci_high'))}]"


def _onsets(row: dict) -> str:
    """The first melody-coded track's onset accuracy (pitch and timing) / onset recall."""
    for suffix in ("", "_melody"):
        if f"sampled_onset_accuracy{suffix}" in row:
            return (
                f"{_fmt(row[f'sampled_onset_accuracy{suffix}'])} / "
                f"{_fmt(row.get(f'sampled_onset_recall{suffix}'))}"
            )
    return "–"


def to_markdown(comparison: dict) -> str:
    lines = [
        "# Model comparison",
        "",
        "Reconstruction accuracy on the test split (95 % bootstrap interval over test examples).",
        "*floor*: always predicting the most frequent class. *prior z*: sampled accuracy when the",
        "decoder gets a random z instead of the input's; a large gap means the decoder uses z.",
        "*paper*: Roberts et al. 2018, Table 1 (Lakh MIDI, full-size models) — for orientation,",
        "not a like-for-like comparison (other corpus, other model sizes).",
        "*LM log-lik*: mean log-likelihood per step (nats) under an LSTM language model of the",
        "train split; read it against the real sequences' own value: degenerate output (long",
        "held notes, silence) can score *above* real music.",
        "*sampled*: ours, greedy from z = mu. *magenta sampled*: magenta's protocol, the one the",
        "paper's sampled column uses: z drawn from q(z|x), the decoder's temperature-1 samples fed",
        "back.",
        "*degenerate / monotone interp.*: share of latent interpolants with at most 2 note",
        "onsets / at most 2 distinct pitches (data-space interpolants in brackets).",
        "*monotone, sampled*: the same for the latent interpolants decoded at the sampling",
        "temperature (`evaluate.sample_temperature`), as `musicvae interpolate` does by default.",
        "*note onsets*: at the steps where the input starts a note (a trio: its melody), the share",
        "the greedy decode gets right (pitch and timing) / the share where it starts any note.",
        "",
        "| model | dataset | decoder | n | teacher-forced | sampled | magenta sampled | floor "
        "| paper TF / sampled "
        "| prior z | per-class (sampled) | note onsets (sampled): pitch / rhythm "
        "| KL bits | active units | interp. monotonicity "
        "violation latent / data | interp. LM log-lik latent / data / real A, B "
        "| degenerate / monotone interp. | monotone, sampled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in comparison["models"].items():
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    row["dataset"],
                    row["decoder"],
                    _fmt(row.get("test_examples")),
                    _with_ci(row, "tf_accuracy"),
                    _with_ci(row, "sampled_accuracy"),
                    _with_ci(row, "magenta_sampled_accuracy"),
                    _fmt(row.get("majority_floor")),
                    f"{_fmt(row['paper_tf_accuracy'])} / {_fmt(row['paper_sampled_accuracy'])}",
                    _fmt(row.get("prior_sampled_accuracy")),
                    _fmt(row.get("sampled_mean_per_class_accuracy")),
                    _onsets(row),
                    _fmt(row.get("kl_bits"), 1),
                    f"{_fmt(row.get('active_units'))} / {_fmt(row.get('latent_size'))}",
                    f"{_fmt(row.get('interp_latent_monotonicity_violation'))} / "
                    f"{_fmt(row.get('interp_data_monotonicity_violation'))}",
                    f"{_fmt(row.get('interp_latent_lm_loglik'))} / "
                    f"{_fmt(row.get('interp_data_lm_loglik'))} / "
                    f"{_fmt(row.get('interp_endpoints_lm_loglik'))}",
                    f"{_fmt(row.get('interp_latent_degenerate_fraction'), 2)} "
                    f"({_fmt(row.get('interp_data_degenerate_fraction'), 2)}) / "
                    f"{_fmt(row.get('interp_latent_monotone_fraction'), 2)} "
                    f"({_fmt(row.get('interp_data_monotone_fraction'), 2)})",
                    _fmt(row.get("interp_sampled_monotone_fraction"), 2),
                ]
            )
            + " |"
        )
    differences = comparison["hierarchical_minus_flat"]
    lines += ["", "## Hierarchical minus flat", ""]
    if not differences:
        lines.append("No dataset has both a hierarchical and a flat model in this run.")
    else:
        lines += [
            "| hierarchical | flat | pairing (examples) | Δ teacher-forced | Δ sampled "
            "| Δ magenta sampled | paper Δ TF / sampled | holds (interval > 0) TF / sampled |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for entry in differences.values():
            yes = {True: "yes", False: "no"}
            lines.append(
                f"| {entry['hierarchical']} | {entry['flat']} | {entry['pairing']} "
                f"({entry['examples']}) | {_with_ci(entry, 'tf_accuracy_diff')} "
                f"| {_with_ci(entry, 'sampled_accuracy_diff')} "
                f"| {_with_ci(entry, 'magenta_sampled_accuracy_diff')} "
                f"| {_fmt(entry.get('paper_tf_accuracy_diff'))} / "
                f"{_fmt(entry.get('paper_sampled_accuracy_diff'))} "
                f"| {yes[entry['tf_accuracy_diff_holds']]} / "
                f"{yes[entry['sampled_accuracy_diff_holds']]} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Compare the evaluated models of a run.")
    parser.add_argument("--eval-dir", type=Path, default=Path("eval"))
    parser.add_argument("--models", nargs="*", help="default: every evaluated model in --eval-dir")
    parser.add_argument(
        "--params",
        type=Path,
        help="params.yaml: the models of its `models:` (the DAG's), the bootstrap of `compare:`",
    )
    parser.add_argument("--out", type=Path, help="default: <eval-dir>/comparison")
    parser.add_argument(
        "--collect",
        metavar="MODEL",
        help="only copy MODEL's inputs of the comparison from --eval-dir to <out>/MODEL",
    )
    parser.add_argument("--n-resamples", type=int, help="default: compare.n_resamples")
    parser.add_argument("--seed", type=int, help="default: compare.seed")
    args = parser.parse_args(argv)
    settings = read_params(args.params, "compare", CompareParams)
    n_resamples = settings.n_resamples if args.n_resamples is None else args.n_resamples
    seed = settings.seed if args.seed is None else args.seed

    if args.collect:
        collect(args.eval_dir / args.collect, (args.out or args.eval_dir) / args.collect)
        return
    if args.params:
        args.models = list(read_section(args.params, "models"))
    if args.models:
        dirs = [args.eval_dir / name for name in args.models]
    else:
        dirs = sorted(p.parent for p in args.eval_dir.glob("*/model_info.json"))
    if not dirs:
        raise SystemExit(f"no evaluated models under {args.eval_dir}")
    comparison = compare([load_result(d) for d in dirs], n_resamples, seed)
    out = args.out or args.eval_dir / "comparison"
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(json.dumps(comparison, indent=2) + "\n")
    markdown = to_markdown(comparison)
    (out / "comparison.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
