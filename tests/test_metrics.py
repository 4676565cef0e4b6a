"""Known-answer tests of the reconstruction, bootstrap and latent metrics."""

import math

import numpy as np
import pytest

from evaluation import metrics


def tokens(rows):
    """[N, T] nested lists -> [N, T, 1] int array (one track)."""
    return np.asarray(rows, dtype=np.int64)[:, :, None]


def test_accuracy_of_exact_copy_is_one_and_counts_mismatches():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 90, size=(5, 32, 1))
    assert np.all(metrics.per_example_accuracy(target, target) == 1.0)

    pred = target.copy()
    pred[0, :8, 0] = (pred[0, :8, 0] + 1) % 90  # 8 of 32 steps wrong in example 0
    accuracy = metrics.per_example_accuracy(pred, target)
    assert accuracy[0] == pytest.approx(24 / 32)
    assert np.all(accuracy[1:] == 1.0)


def test_per_track_and_per_bar_accuracy():
    target = np.zeros((1, 32, 3), dtype=np.int64)
    pred = target.copy()
    pred[0, :16, 2] = 1  # the third track is wrong for all of bar 1
    assert metrics.per_track_accuracy(pred, target)[0].tolist() == [1.0, 1.0, 0.5]
    per_bar = metrics.per_bar_accuracy(pred, target, steps_per_bar=16)
    assert per_bar.shape == (1, 2)
    assert per_bar[0].tolist() == pytest.approx([2 / 3, 1.0])


def test_per_bar_accuracy_rejects_partial_bars():
    x = np.zeros((1, 20, 1), dtype=np.int64)
    with pytest.raises(ValueError, match="whole number"):
        metrics.per_bar_accuracy(x, x)


def test_majority_floor_is_the_share_of_the_most_frequent_class():
    target = tokens([[0, 0, 0, 5], [0, 7, 0, 0]])  # class 0: 6 of 8
    assert metrics.majority_classes(target).tolist() == [0]
    floor = metrics.majority_floor(target)
    assert floor.tolist() == [0.75, 0.75]
    assert floor.mean() == pytest.approx(6 / 8)


def test_majority_floor_per_track():
    target = np.stack([np.array([[3, 3, 1, 3]]), np.array([[2, 4, 4, 4]])], axis=-1)
    assert metrics.majority_classes(target).tolist() == [3, 4]
    assert metrics.majority_floor(target).tolist() == [0.75]


def test_per_class_accuracy_hand_made():
    target = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2])
    recall = metrics.per_class_accuracy(pred, target, num_classes=4)
    assert recall[:3].tolist() == [0.75, 0.5, 1.0]
    assert math.isnan(recall[3])  # class 3 never occurs
    mean = metrics.mean_per_class_accuracy(pred[None, :, None], target[None, :, None], [4])
    assert mean == pytest.approx((0.75 + 0.5 + 1.0) / 3)


def test_majority_predictor_scores_one_over_classes_on_mean_per_class_accuracy():
    target = tokens([[0, 0, 0, 0, 0, 0, 1, 2]])
    constant = np.zeros_like(target)
    assert metrics.per_example_accuracy(constant, target)[0] == 0.75
    assert metrics.mean_per_class_accuracy(constant, target, [3]) == pytest.approx(1 / 3)


def test_shape_and_dtype_errors_are_clear():
    x = np.zeros((2, 4, 1), dtype=np.int64)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.per_example_accuracy(x, np.zeros((2, 5, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\[N, T, K\]"):
        metrics.per_example_accuracy(x[0], x[0])
    with pytest.raises(ValueError, match="integer"):
        metrics.per_example_accuracy(x.astype(float), x.astype(float))
    with pytest.raises(ValueError, match="outside"):
        metrics.per_class_accuracy(x[:, :, 0], x[:, :, 0] + 5, num_classes=3)


def test_bootstrap_interval_covers_the_true_mean_at_about_the_nominal_rate():
    # 200 seeded simulated test sets of Bernoulli(0.8) per-example scores.
    true_mean, covered = 0.8, 0
    for trial in range(200):
        rng = np.random.default_rng(1000 + trial)
        sample = (rng.random(150) < true_mean).astype(float)
        interval = metrics.bootstrap_mean(sample, n_resamples=400, seed=trial)
        assert interval.low <= interval.mean <= interval.high
        covered += interval.low <= true_mean <= interval.high
    assert 0.88 <= covered / 200 <= 0.99


def test_paired_difference_excludes_zero_only_for_a_real_difference():
    rng = np.random.default_rng(7)
    difficulty = rng.random(300)  # per-example variation shared by both models
    same_a = difficulty + rng.normal(0, 0.02, 300)
    same_b = difficulty + rng.normal(0, 0.02, 300)
    null = metrics.paired_bootstrap_difference(same_a, same_b, seed=1)
    assert not null.excludes_zero

    better = difficulty + 0.02 + rng.normal(0, 0.02, 300)
    real = metrics.paired_bootstrap_difference(better, same_b, seed=1)
    assert real.excludes_zero and real.low > 0
    assert real.low < 0.02 < real.high

    # Unpaired, the shared per-example spread (sd ~0.29) swamps the same 0.02 difference.
    assert not metrics.unpaired_bootstrap_difference(better, same_b, seed=1).excludes_zero


def test_unpaired_difference_detects_a_large_gap_between_independent_samples():
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.9).astype(float)
    b = (rng.random(300) < 0.6).astype(float)
    interval = metrics.unpaired_bootstrap_difference(a, b, seed=0)
    assert interval.excludes_zero
    assert interval.low < 0.3 < interval.high


def test_bootstrap_is_reproducible_and_validates_input():
    values = np.random.default_rng(0).random(50)
    assert metrics.bootstrap_mean(values, seed=4) == metrics.bootstrap_mean(values, seed=4)
    with pytest.raises(ValueError, match="no values"):
        metrics.bootstrap_mean(np.array([]))
    with pytest.raises(ValueError, match="equal lengths"):
        metrics.paired_bootstrap_difference(values, values[:-1])
    with pytest.raises(ValueError, match="confidence"):
        metrics.bootstrap_mean(values, confidence=95)


def test_kl_per_dimension_known_values():
    mu = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    sigma = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5]])
    kl = metrics.kl_per_dimension(mu, sigma)
    # Prior itself -> 0; unit shift -> 1/2; sigma 1/2 -> (1/4 - 1)/2 + ln 2.
    assert kl.tolist() == pytest.approx([0.0, 0.5, -0.375 + math.log(2)])


def test_active_units_counts_dimensions_that_vary_with_the_input():
    rng = np.random.default_rng(0)
    mu = np.zeros((500, 4))
    mu[:, 0] = rng.normal(0, 1.0, 500)  # used
    mu[:, 1] = rng.normal(0, 0.3, 500)  # used, variance 0.09
    mu[:, 2] = rng.normal(0, 0.05, 500)  # collapsed, variance 0.0025
    mu[:, 3] = 0.7  # collapsed to a constant
    count, variance = metrics.active_units(mu, 0.01)
    assert count == 2
    assert variance[0] > 0.8 and variance[3] < 1e-12
