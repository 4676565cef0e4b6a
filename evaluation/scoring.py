"""Run a trained MusicVAE over test examples and turn its outputs into the evaluation's numbers.

`reconstruct` and `interpolate_pairs` run the model (batched, no gradients, seeded); the
`*_metrics` functions are pure numpy over their results, so that the numbers can be checked on
hand-made inputs. Every per-example quantity is kept, because the bootstrap intervals and the
paired flat-vs-hierarchical comparison resample test examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from evaluation import interpolation as interp
from evaluation import metrics as m
from evaluation.lm import TokenLSTM, mean_step_log_likelihood
from pipelines.representation import DRUM_CLASS_NAMES
from training import generate
from training.objective import ACTIVE_UNIT_THRESHOLD, kl_divergence, reconstruction

LN2 = float(np.log(2.0))


@dataclass
class Reconstructions:
    """A model's outputs for N test examples ``[N, T, K]``."""

    mu: np.ndarray  # [N, Z] posterior means
    sigma: np.ndarray  # [N, Z] posterior standard deviations
    teacher_forced: np.ndarray  # argmax next-step predictions given the true prefix, z = mu
    sampled: np.ndarray  # greedy free-running decode of z = mu, fed its own outputs
    prior: np.ndarray  # greedy decode of a z drawn from the prior (one per example)
    r_loss: np.ndarray  # [N] NLL summed over steps and tracks (nats), z ~ q(z|x)
    kl: np.ndarray  # [N] KL(q(z|x) || p(z)) in nats
    # magenta's "sampled" protocol: z drawn from q(z|x), the decoder's own temperature-1 samples
    # fed back (like for like with the paper's Table 1)
    posterior_sampled: np.ndarray | None = None


@torch.no_grad()
def reconstruct(
    model: torch.nn.Module, tokens: np.ndarray, *, batch_size: int = 128, seed: int = 0
) -> Reconstructions:
    """Teacher-forced and sampled reconstructions, prior decodes and ELBO terms of ``tokens``."""
    model.eval()
    device = next(model.parameters()).device
    noise = torch.Generator(device=device).manual_seed(seed)
    tf, mus, sigmas, r_losses, kls = [], [], [], [], []
    for rows in generate.batch_slices(len(tokens), batch_size):
        x = torch.as_tensor(tokens[rows], dtype=torch.long, device=device)
        at_mean = model(x, sample_z=False)
        tf.append(torch.stack([lg.argmax(dim=-1) for lg in at_mean.logits], dim=-1).cpu())
        mus.append(at_mean.mu.float().cpu())
        sigmas.append(at_mean.sigma.float().cpu())
        # The ELBO's reconstruction term is an expectation over q(z|x): one seeded sample.
        sampled_z = model(x, sample_z=True, generator=noise)
        nll, _ = reconstruction(sampled_z.logits, x)
        r_losses.append(nll.cpu())
        kls.append(kl_divergence(at_mean.mu.float(), at_mean.sigma.float()).cpu())
    mu = torch.cat(mus)
    sampled = generate.decode(model, mu, temperature=0.0, batch_size=batch_size)
    prior_z = generate.sample_prior(model, len(tokens), seed=seed + 1)
    prior = generate.decode(model, prior_z, temperature=0.0, batch_size=batch_size)
    sigma = torch.cat(sigmas)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed + 2))
    posterior_sampled = generate.decode(
        model, mu + sigma * eps, temperature=1.0, seed=seed + 3, batch_size=batch_size
    )
    return Reconstructions(
        mu=mu.numpy(),
        sigma=sigma.numpy(),
        teacher_forced=torch.cat(tf).numpy(),
        sampled=sampled.numpy(),
        prior=prior.numpy(),
        posterior_sampled=posterior_sampled.numpy(),
        r_loss=torch.cat(r_losses).numpy(),
        kl=torch.cat(kls).numpy(),
    )


def per_example_scores(rec: Reconstructions, tokens: np.ndarray) -> dict[str, np.ndarray]:
    """One value per test example for every accuracy: what the bootstraps resample.

    magenta's per-bar mean accuracy of hierarchical models equals the plain token accuracy
    here, since every bar has the same number of steps."""
    scores = {
        "tf_accuracy": m.per_example_accuracy(rec.teacher_forced, tokens),
        "sampled_accuracy": m.per_example_accuracy(rec.sampled, tokens),
        "prior_sampled_accuracy": m.per_example_accuracy(rec.prior, tokens),
        "majority_floor": m.majority_floor(tokens),
    }
    if rec.posterior_sampled is not None:
        scores["magenta_sampled_accuracy"] = m.per_example_accuracy(rec.posterior_sampled, tokens)
    return scores


def reconstruction_metrics(
    rec: Reconstructions,
    tokens: np.ndarray,
    num_classes: list[int],
    track_names: list[str],
    *,
    drum_tracks: list[int] | tuple[int, ...] = (),
    melody_tracks: list[int] | tuple[int, ...] = (),
    steps_per_bar: int = 16,
    n_resamples: int = 2000,
    seed: int = 0,
    active_threshold: float = ACTIVE_UNIT_THRESHOLD,
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(flat metrics, per-example scores, per-bar table) of one model on one test set.

    `drum_tracks`: indices of drum tracks, also scored per drum class (hit or not at each step);
    `melody_tracks`: indices of melody-coded tracks, also scored at note onsets and elsewhere."""
    scores = per_example_scores(rec, tokens)
    out: dict[str, float] = {"test_examples": len(tokens)}
    for name, values in scores.items():
        out.update(m.bootstrap_mean(values, n_resamples, seed=seed).as_dict(name))
    gap = m.paired_bootstrap_difference(
        scores["sampled_accuracy"], scores["prior_sampled_accuracy"], n_resamples, seed=seed
    )
    out.update(gap.as_dict("true_minus_prior_z_accuracy"))
    # Per-track keys name the track only where there are several (a trio's melody, bass, drums).
    track_suffix = [f"_{name}" if len(track_names) > 1 else "" for name in track_names]
    for label, pred in (("tf", rec.teacher_forced), ("sampled", rec.sampled)):
        out[f"{label}_mean_per_class_accuracy"] = m.mean_per_class_accuracy(
            pred, tokens, num_classes
        )
        if len(track_names) > 1:
            for k, name in enumerate(track_names):
                out[f"{label}_accuracy_{name}"] = float(
                    m.per_track_accuracy(pred, tokens)[:, k].mean()
                )
        for k in melody_tracks:
            for key, value in m.melody_onset_scores(pred[..., k], tokens[..., k]).items():
                out[f"{label}_{key}{track_suffix[k]}"] = value
        for k in drum_tracks:
            by_class = m.drum_class_accuracy(pred[..., k], tokens[..., k]).mean(axis=0)
            for name, value in zip(DRUM_CLASS_NAMES, by_class, strict=True):
                out[f"{label}_drum_accuracy{track_suffix[k]}_{name}"] = float(value)
    floor_pred = np.broadcast_to(m.majority_classes(tokens), tokens.shape)
    out["majority_floor_mean_per_class_accuracy"] = m.mean_per_class_accuracy(
        floor_pred, tokens, num_classes
    )

    # ELBO terms per sequence, as training reports them: r_loss in nats, KL in bits.
    out["r_loss"] = float(rec.r_loss.mean())
    out["nll_per_step"] = float(rec.r_loss.mean() / tokens.shape[1])
    out["kl_bits"] = float(rec.kl.mean() / LN2)
    out["elbo"] = float(-(rec.r_loss + rec.kl).mean())

    kl_dims = m.kl_per_dimension(rec.mu, rec.sigma)
    active, variance = m.active_units(rec.mu, active_threshold) if len(rec.mu) > 1 else (0, None)
    out["latent_size"] = rec.mu.shape[1]
    out["active_units"] = active
    out["kl_bits_max_dim"] = float(kl_dims.max() / LN2)
    out["dims_over_0.1_bits"] = int((kl_dims / LN2 > 0.1).sum())

    bars = {
        name: m.per_bar_accuracy(pred, tokens, steps_per_bar)
        for name, pred in (
            ("tf_accuracy", rec.teacher_forced),
            ("sampled_accuracy", rec.sampled),
            ("prior_sampled_accuracy", rec.prior),
        )
    }
    per_bar: dict[str, np.ndarray] = {"bar": np.arange(1, bars["tf_accuracy"].shape[1] + 1)}
    for name, values in bars.items():
        per_bar[name] = values.mean(axis=0)
    intervals = [
        m.bootstrap_mean(column, n_resamples, seed=seed) for column in bars["sampled_accuracy"].T
    ]
    per_bar["sampled_accuracy_ci_low"] = np.array([i.low for i in intervals])
    per_bar["sampled_accuracy_ci_high"] = np.array([i.high for i in intervals])
    # The decay from the first to the last bar: where a flat decoder loses the thread.
    out["sampled_accuracy_first_bar"] = float(per_bar["sampled_accuracy"][0])
    out["sampled_accuracy_last_bar"] = float(per_bar["sampled_accuracy"][-1])

    latent = {
        "dim": np.arange(rec.mu.shape[1]),
        "kl_bits": kl_dims / LN2,
        "mu_variance": variance if variance is not None else np.zeros(rec.mu.shape[1]),
    }
    latent["active"] = (latent["mu_variance"] > active_threshold).astype(int)
    return out, scores, {"per_bar": per_bar, "latent_dims": latent}


@dataclass
class Interpolations:
    alphas: np.ndarray  # [A]
    pairs: np.ndarray  # [P, 2] indices into the test examples
    latent: np.ndarray  # [P, A, T, K] greedy decodes of slerp(mu_A, mu_B, alpha)
    data: np.ndarray  # [P, A, T, K] each step from B with probability alpha
    # [P, A, T, K] the same codes decoded at a sampling temperature (`musicvae interpolate`'s
    # default, as magenta's); None when not asked for
    sampled: np.ndarray | None = None

    @property
    def methods(self) -> tuple[str, ...]:
        return ("latent", "data") + (("sampled",) if self.sampled is not None else ())


@torch.no_grad()
def interpolate_pairs(
    model: torch.nn.Module,
    tokens: np.ndarray,
    mu: np.ndarray,
    pairs: np.ndarray,
    alphas: np.ndarray,
    *,
    seed: int = 0,
    batch_size: int = 128,
    temperature: float = 0.0,
) -> Interpolations:
    """Latent (greedy), data-space and, with `temperature` > 0, sampled interpolants."""
    mu_t = torch.as_tensor(mu, dtype=torch.float32)
    codes = torch.stack(
        [generate.slerp(mu_t[pairs[:, 0]], mu_t[pairs[:, 1]], float(a)) for a in alphas], dim=1
    ).reshape(-1, mu_t.shape[-1])  # [P * A, Z]
    shape = (len(pairs), len(alphas), *tokens.shape[1:])

    def decoded(at: float) -> np.ndarray:
        return (
            generate.decode(model, codes, temperature=at, seed=seed, batch_size=batch_size)
            .numpy()
            .reshape(shape)
        )

    rng = np.random.default_rng(seed)
    a, b = tokens[pairs[:, 0]], tokens[pairs[:, 1]]
    data = np.stack([interp.data_space_interpolation(a, b, float(x), rng) for x in alphas], 1)
    return Interpolations(
        alphas=np.asarray(alphas, float),
        pairs=pairs,
        latent=decoded(0.0),
        data=data,
        sampled=decoded(temperature) if temperature > 0 else None,
    )


def interpolation_metrics(
    result: Interpolations,
    tokens: np.ndarray,
    lm: TokenLSTM | None,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    track_types: list[str] | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(flat metrics, per-alpha curves) of each interpolation method of `result`.

    With ``track_types``: the share of interpolants (every alpha) that are degenerate (at most 2
    note onsets in the whole window) or monotone (at most 2 distinct pitches), per method, and
    how well the two endpoints (alpha 0 and 1) reconstruct A and B (greedy; sampled too when
    `result` has sampled interpolants)."""
    a, b = tokens[result.pairs[:, 0]], tokens[result.pairs[:, 1]]
    out: dict[str, float] = {"interp_pairs": len(result.pairs)}
    if track_types is not None:
        for method in result.methods:
            interpolants = getattr(result, method)
            out[f"interp_{method}_degenerate_fraction"] = interp.degenerate_fraction(
                interpolants, track_types
            )
            out[f"interp_{method}_monotone_fraction"] = interp.monotone_fraction(
                interpolants, track_types
            )
    for method, prefix in (("latent", "interp"), ("sampled", "interp_sampled")):
        if method in result.methods:
            ends = getattr(result, method)
            out[f"{prefix}_endpoint_a_accuracy"] = float(
                m.per_example_accuracy(ends[:, 0], a).mean()
            )
            out[f"{prefix}_endpoint_b_accuracy"] = float(
                m.per_example_accuracy(ends[:, -1], b).mean()
            )
    curves: dict[str, np.ndarray] = {"alpha": result.alphas}
    loglik: dict[str, np.ndarray] = {}
    for method in result.methods:
        interpolants = getattr(result, method)
        distance = interp.normalized_hamming(
            interpolants, np.broadcast_to(a[:, None], interpolants.shape)
        )  # [P, A]
        relative = interp.relative_distances(interpolants, a, b)
        intervals = [m.bootstrap_mean(col, n_resamples, seed=seed) for col in distance.T]
        curves[f"{method}_distance"] = distance.mean(axis=0)
        curves[f"{method}_distance_ci_low"] = np.array([i.low for i in intervals])
        curves[f"{method}_distance_ci_high"] = np.array([i.high for i in intervals])
        curves[f"{method}_relative_distance"] = np.nanmean(relative, axis=0)
        out[f"interp_{method}_monotonicity_violation"] = interp.monotonicity_violation(relative)
        out[f"interp_{method}_linearity_deviation"] = interp.linearity_deviation(
            relative, result.alphas
        )
        if lm is not None:
            flat = interpolants.reshape(-1, *interpolants.shape[2:])
            loglik[method] = mean_step_log_likelihood(lm, flat).reshape(distance.shape)
            lm_intervals = [m.bootstrap_mean(c, n_resamples, seed=seed) for c in loglik[method].T]
            curves[f"{method}_lm_loglik"] = loglik[method].mean(axis=0)
            curves[f"{method}_lm_loglik_ci_low"] = np.array([i.low for i in lm_intervals])
            curves[f"{method}_lm_loglik_ci_high"] = np.array([i.high for i in lm_intervals])
            out.update(
                m.bootstrap_mean(loglik[method].mean(axis=1), n_resamples, seed=seed).as_dict(
                    f"interp_{method}_lm_loglik"
                )
            )
    out["interp_ab_distance"] = float(interp.normalized_hamming(a, b).mean())
    if lm is not None:
        # The scale: the real sequences' own log-likelihood, and latent minus data per pair.
        out["interp_endpoints_lm_loglik"] = float(
            mean_step_log_likelihood(lm, np.concatenate([a, b])).mean()
        )
        interior = slice(1, len(result.alphas) - 1)
        diff = m.paired_bootstrap_difference(
            loglik["latent"][:, interior].mean(axis=1),
            loglik["data"][:, interior].mean(axis=1),
            n_resamples,
            seed=seed,
        )
        out.update(diff.as_dict("interp_latent_minus_data_lm_loglik"))
    return out, curves


def summary_for_logging(values: dict[str, Any]) -> dict[str, float | int]:
    """The finite numbers of a metrics dict (what MLflow and `dvc metrics` can show)."""
    out: dict[str, float | int] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            continue
        if isinstance(value, int | np.integer):
            out[key] = int(value)
        elif np.isfinite(value):
            out[key] = float(value)
    return out
