"""Reconstruction and latent-space metrics on token arrays, with bootstrap intervals.

Token arrays have the shape of the model's batches, ``[N, T, K]`` (examples, steps, tracks), so
the same functions score melodies, drum patterns and trios. Accuracies are returned per example:
every sequence of a dataset has the same length, so the mean of the per-example accuracies is the
pooled per-step accuracy of the paper's Table 1, and the per-example values are what the bootstrap
resamples (test examples, not steps, are the independent units).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.representation import MELODY_FIRST_PITCH_TOKEN

NATS_PER_BIT = math.log(2.0)


def _as_tokens(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{name} must have shape [N, T, K], got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer tokens, got dtype {array.dtype}")
    return array


def _check_pair(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, target = _as_tokens(pred, "pred"), _as_tokens(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    if pred.shape[0] == 0:
        raise ValueError("no examples to score")
    return pred, target


def per_example_accuracy(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fraction of tokens (over steps and tracks) predicted right, per example: ``[N]``."""
    pred, target = _check_pair(pred, target)
    return (pred == target).mean(axis=(1, 2))


def per_track_accuracy(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Accuracy per example and track: ``[N, K]`` (trio: melody, bass, drums)."""
    pred, target = _check_pair(pred, target)
    return (pred == target).mean(axis=1)


def drum_class_accuracy(pred: np.ndarray, target: np.ndarray, num_classes: int = 9) -> np.ndarray:
    """Per example and drum class, the fraction of steps where the class's hit-or-not is right:
    ``[N, num_classes]``. ``pred``/``target`` are ``[N, T]`` drum tokens (bit c = class c hit)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be the same [N, T]")
    bits = np.arange(num_classes)
    hit_pred = (pred[..., None] >> bits) & 1
    hit_target = (target[..., None] >> bits) & 1
    return (hit_pred == hit_target).mean(axis=1)


def melody_onset_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Where a melody track [N, T] is right: at the target's note onsets (pitch and timing),
    elsewhere (holds and rests), and whether it starts a note where the target does (rhythm,
    any pitch). A decoder that holds notes scores high on holds and low on onsets."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and target {target.shape} must be the same [N, T]")
    onset, pred_onset = target >= MELODY_FIRST_PITCH_TOKEN, pred >= MELODY_FIRST_PITCH_TOKEN
    right = pred == target

    def share(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float("nan")

    return {
        "onset_accuracy": share(right[onset]),
        "other_accuracy": share(right[~onset]),
        "onset_recall": share(pred_onset[onset]),
        "onset_precision": share(onset[pred_onset]),
    }


def per_bar_accuracy(pred: np.ndarray, target: np.ndarray, steps_per_bar: int = 16) -> np.ndarray:
    """Accuracy per example and bar: ``[N, num_bars]``.

    Shows where along the sequence a decoder loses the thread (a flat decoder's sampled accuracy
    typically decays over the bars, a hierarchical one's should not).
    """
    pred, target = _check_pair(pred, target)
    n, steps, tracks = pred.shape
    if steps % steps_per_bar:
        raise ValueError(f"{steps} steps is not a whole number of {steps_per_bar}-step bars")
    correct = (pred == target).reshape(n, steps // steps_per_bar, steps_per_bar * tracks)
    return correct.mean(axis=2)


def majority_classes(target: np.ndarray) -> np.ndarray:
    """The most frequent class of each track over all examples and steps: ``[K]``."""
    target = _as_tokens(target, "target")
    flat = target.reshape(-1, target.shape[2])
    return np.array([np.bincount(flat[:, k]).argmax() for k in range(flat.shape[1])])


def majority_floor(target: np.ndarray) -> np.ndarray:
    """Per-example accuracy of always predicting each track's most frequent class: ``[N]``.

    The floor every accuracy is read against: on melodies "no event" alone scores well above
    half, so an accuracy close to this floor means the model learned almost nothing.
    """
    target = _as_tokens(target, "target")
    constant = np.broadcast_to(majority_classes(target), target.shape)
    return per_example_accuracy(constant, target)


def per_class_accuracy(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall of every class of one track, pooled over examples and steps: ``[num_classes]``.

    ``pred`` and ``target`` are ``[N, T]`` (one track). Classes absent from ``target`` are NaN.
    """
    pred, target = np.asarray(pred).ravel(), np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError("pred and target differ in shape")
    if target.size and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target holds classes outside 0..{num_classes - 1}")
    support = np.bincount(target, minlength=num_classes).astype(float)
    hits = np.bincount(target[pred == target], minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / support, np.nan)


def mean_per_class_accuracy(
    pred: np.ndarray, target: np.ndarray, num_classes: list[int] | tuple[int, ...]
) -> float:
    """Mean over the classes present in ``target`` of their recall, averaged over tracks.

    Unlike plain accuracy it is not carried by the frequent "no event"/"hold" classes: the
    majority-class predictor scores 1 / (number of classes present) here.
    """
    pred, target = _check_pair(pred, target)
    if len(num_classes) != target.shape[2]:
        raise ValueError(f"{len(num_classes)} class counts for {target.shape[2]} tracks")
    per_track = [
        np.nanmean(per_class_accuracy(pred[:, :, k], target[:, :, k], c))
        for k, c in enumerate(num_classes)
    ]
    return float(np.mean(per_track))


@dataclass(frozen=True)
class Interval:
    """A mean and its bootstrap confidence interval."""

    mean: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {prefix: self.mean, f"{prefix}_ci_low": self.low, f"{prefix}_ci_high": self.high}


def _percentile_interval(point: float, resampled_means: np.ndarray, confidence: float) -> Interval:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(resampled_means, [tail, 100.0 - tail])
    return Interval(float(point), float(low), float(high))


def _check_bootstrap_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError("n_resamples must be at least 1")
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must lie strictly between 0 and 1")


def bootstrap_mean(
    values: np.ndarray, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (one value per test example)."""
    _check_bootstrap_args(n_resamples, confidence)
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, values.size, size=(n_resamples, values.size))
    return _percentile_interval(values.mean(), values[indices].mean(axis=1), confidence)


def paired_bootstrap_difference(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Interval of mean(a) - mean(b) when a[i] and b[i] score the same test example.

    Resampling examples jointly cancels the variation between examples that both share, so a
    real difference shows with far fewer examples than two independent intervals would need.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return bootstrap_mean(a - b, n_resamples, confidence, seed)


def unpaired_bootstrap_difference(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Interval of mean(a) - mean(b) for two independent samples (different test sets)."""
    _check_bootstrap_args(n_resamples, confidence)
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means_a = a[rng.integers(0, a.size, size=(n_resamples, a.size))].mean(axis=1)
    means_b = b[rng.integers(0, b.size, size=(n_resamples, b.size))].mean(axis=1)
    return _percentile_interval(a.mean() - b.mean(), means_a - means_b, confidence)


def kl_per_dimension(mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent dimension, averaged over examples, in nats."""
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    if mu.shape != sigma.shape or mu.ndim != 2:
        raise ValueError(f"mu {mu.shape} and sigma {sigma.shape} must both be [N, D]")
    if np.any(sigma <= 0):
        raise ValueError("sigma must be positive")
    kl = 0.5 * (mu**2 + sigma**2 - 1.0) - np.log(sigma)
    return kl.mean(axis=0)


def active_units(mu: np.ndarray, threshold: float) -> tuple[int, np.ndarray]:
    """Number of latent dimensions whose posterior mean varies with the input (Burda et al.).

    A dimension is active when Cov_x(E[z|x]) > ``threshold``; a collapsed dimension has the same
    posterior for every input. Returns the count and the per-dimension variances ``[D]``.
    """
    mu = np.asarray(mu, dtype=float)
    if mu.ndim != 2 or mu.shape[0] < 2:
        raise ValueError(f"need mu of shape [N >= 2, D], got {mu.shape}")
    variance = mu.var(axis=0, ddof=1)
    return int((variance > threshold).sum()), variance
