"""Known-answer tests of slerp, data-space interpolation and the smoothness scalars."""

import math

import numpy as np
import pytest
import torch

from evaluation import interpolation as interp
from training.generate import slerp


def test_slerp_endpoints_and_constant_norm():
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn(8, 16, generator=generator)
    z1 = torch.randn(8, 16, generator=generator)
    z1 = z1 / z1.norm(dim=-1, keepdim=True) * z0.norm(dim=-1, keepdim=True)  # equal norms
    torch.testing.assert_close(slerp(z0, z1, 0.0), z0)
    torch.testing.assert_close(slerp(z0, z1, 1.0), z1)
    for alpha in interp.DEFAULT_ALPHAS:
        middle = slerp(z0, z1, float(alpha))
        torch.testing.assert_close(middle.norm(dim=-1), z0.norm(dim=-1))


def test_slerp_moves_at_constant_angular_speed():
    z0 = torch.tensor([[1.0, 0.0]])
    z1 = torch.tensor([[0.0, 1.0]])  # 90 degrees apart
    for alpha in (0.25, 0.5, 0.8):
        point = slerp(z0, z1, alpha)[0]
        angle = math.atan2(point[1].item(), point[0].item())
        assert angle == pytest.approx(alpha * math.pi / 2, abs=1e-6)


def test_slerp_of_parallel_codes_is_the_straight_line():
    z0 = torch.tensor([[1.0, 2.0, 3.0]])
    z1 = 2.0 * z0
    torch.testing.assert_close(slerp(z0, z1, 0.5), 1.5 * z0)
    assert torch.isfinite(slerp(z0, z0, 0.3)).all()


def test_data_space_interpolation_takes_whole_steps_from_a_or_b():
    rng = np.random.default_rng(0)
    a = np.zeros((64, 3), dtype=np.int64)
    b = np.ones((64, 3), dtype=np.int64)
    assert np.array_equal(interp.data_space_interpolation(a, b, 0.0, rng), a)
    assert np.array_equal(interp.data_space_interpolation(a, b, 1.0, rng), b)
    mixed = interp.data_space_interpolation(a, b, 0.5, rng)
    # All tracks of a step come from the same source.
    assert np.all(mixed.min(axis=1) == mixed.max(axis=1))
    assert 0 < mixed[:, 0].sum() < 64


def test_data_space_hamming_curve_is_linear_in_expectation():
    rng = np.random.default_rng(1)
    pairs, steps = 400, 64
    a = rng.integers(0, 90, size=(pairs, steps, 1))
    b = rng.integers(0, 90, size=(pairs, steps, 1))
    a_to_b = interp.normalized_hamming(a, b)
    for alpha in interp.DEFAULT_ALPHAS:
        mixed = interp.data_space_interpolation(a, b, float(alpha), rng)
        mean_distance = interp.normalized_hamming(mixed, a).mean()
        assert mean_distance == pytest.approx(alpha * a_to_b.mean(), abs=0.01)


def test_normalized_hamming_counts_differing_tokens():
    x = np.array([[[1], [2], [3], [4]]])
    y = np.array([[[1], [0], [3], [0]]])
    assert interp.normalized_hamming(x, y).tolist() == [0.5]
    with pytest.raises(ValueError, match="differ in shape"):
        interp.normalized_hamming(x, y[:, :3])


def test_pick_pairs_is_seeded_and_never_pairs_an_example_with_itself():
    pairs = interp.pick_pairs(100, 20, seed=3)
    assert pairs.shape == (20, 2)
    assert np.array_equal(pairs, interp.pick_pairs(100, 20, seed=3))
    assert len(np.unique(pairs)) == 40  # enough examples: all distinct
    crowded = interp.pick_pairs(5, 50, seed=3)
    assert np.all(crowded[:, 0] != crowded[:, 1])
    with pytest.raises(ValueError):
        interp.pick_pairs(1, 1, seed=0)


def test_smoothness_scalars_on_hand_made_curves():
    alphas = np.linspace(0, 1, 5)
    straight = alphas[None]
    assert interp.monotonicity_violation(straight) == 0.0
    assert interp.linearity_deviation(straight, alphas) == 0.0

    step = np.array([[0.0, 0.0, 1.0, 1.0, 1.0]])  # monotone but a jump, not a line
    assert interp.monotonicity_violation(step) == 0.0
    assert interp.linearity_deviation(step, alphas) == pytest.approx(
        np.mean([0, 0.25, 0.5, 0.25, 0])
    )

    zigzag = np.array([[0.0, 0.6, 0.2, 0.9, 1.0]])  # falls back by 0.4 once
    assert interp.monotonicity_violation(zigzag) == pytest.approx(0.4)


def test_relative_distances_scale_by_a_to_b_and_skip_identical_pairs():
    a = np.zeros((2, 4, 1), dtype=np.int64)
    b = a.copy()
    b[0, :2] = 1  # pair 0: d(A, B) = 0.5; pair 1: A == B
    interpolants = np.stack([a, b], axis=1)  # alpha 0 -> A, alpha 1 -> B
    relative = interp.relative_distances(interpolants, a, b)
    assert relative[0].tolist() == [0.0, 1.0]
    assert np.isnan(relative[1]).all()
    assert interp.linearity_deviation(relative, np.array([0.0, 1.0])) == 0.0


def test_degenerate_fraction_counts_held_notes_and_silence_not_melodies():
    from evaluation.interpolation import degenerate_fraction, note_onsets

    held = np.zeros((32, 1), dtype=np.int64)
    held[0] = 50  # one note held for the whole window
    trill = np.zeros((32, 1), dtype=np.int64)
    trill[0], trill[16] = 50, 52  # two onsets: still degenerate
    tune = np.zeros((32, 1), dtype=np.int64)
    tune[::4] = 50 + np.arange(8)[:, None]  # eight onsets
    silence = np.ones((32, 1), dtype=np.int64)  # note-offs only
    batch = np.stack([held, trill, tune, silence])
    assert note_onsets(batch, ["melody"]).tolist() == [1, 2, 8, 0]
    assert degenerate_fraction(batch, ["melody"]) == 0.75
    drums = np.zeros((2, 32, 1), dtype=np.int64)
    drums[1, ::8] = 3  # four hits
    assert note_onsets(drums, ["drums"]).tolist() == [0, 4]
    assert degenerate_fraction(drums, ["drums"]) == 0.5


def test_monotone_fraction_catches_one_pitch_restruck_that_onsets_miss():
    from evaluation.interpolation import degenerate_fraction, distinct_onsets, monotone_fraction

    restruck = np.ones((256, 1), dtype=np.int64)
    restruck[::16] = 62  # one D every bar: 16 onsets, one pitch
    two_pitch = np.ones((256, 1), dtype=np.int64)
    two_pitch[::8] = np.array([62, 64] * 16)[:, None]
    tune = np.ones((256, 1), dtype=np.int64)
    tune[::4] = (60 + np.arange(64) % 12)[:, None]
    batch = np.stack([restruck, two_pitch, tune])
    assert distinct_onsets(batch, ["melody"]).tolist() == [1, 2, 12]
    assert degenerate_fraction(batch, ["melody"]) == 0.0
    assert monotone_fraction(batch, ["melody"]) == 2 / 3
    # Two tracks add up: a melody of one pitch over a varied bass is not monotone.
    both = np.concatenate([restruck, tune], axis=-1)[None]
    assert distinct_onsets(both, ["melody", "bass"]).tolist() == [13]
    assert monotone_fraction(both, ["melody", "bass"]) == 0.0
