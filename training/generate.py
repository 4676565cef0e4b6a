"""What people do with a trained MusicVAE: sample, encode, decode and interpolate.

Every function takes a loaded `training.model.MusicVAE` and works on token batches ``[N, T, K]``
(LongTensor or int array) and latent codes ``[N, Z]``; results come back on the CPU. Randomness
comes from one `torch.Generator` seeded by the caller, so a seed reproduces its output on the
same machine and torch version; temperature 0 decodes greedily (the most likely token each step).
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_BATCH_SIZE = 256
MAX_TEMPERATURE = 100.0  # far beyond it sampling is uniform noise: a typo, not a choice
MAX_QPM = 1000.0  # the fastest tempo the corpus keeps (params.yaml notesequences.max_qpm)


def checked_temperature(temperature: float) -> float:
    """`temperature` if it lies in [0, MAX_TEMPERATURE] (NaN does not); else ValueError."""
    if not 0.0 <= temperature <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be in [0, {MAX_TEMPERATURE:g}], got {temperature:g}")
    return temperature


def checked_qpm(qpm: float) -> float:
    """`qpm` (the tempo of the MIDI written) if it lies in (0, MAX_QPM]; else ValueError."""
    if not 0.0 < qpm <= MAX_QPM:
        raise ValueError(f"qpm must be in (0, {MAX_QPM:g}], got {qpm:g}")
    return qpm


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _generator(model: torch.nn.Module, seed: int | None) -> torch.Generator:
    generator = torch.Generator(device=_device(model))
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive row slices of at most ``batch_size`` covering ``range(n)``."""
    return [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def latent_size(model: torch.nn.Module) -> int:
    """Dimension of the model's latent code z."""
    return int(model.cfg.z_size)


@torch.no_grad()
def encode_posterior(
    model: torch.nn.Module,
    tokens: np.ndarray | torch.Tensor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and standard deviation ``([N, Z], [N, Z])`` of sequences ``[N, T, K]``."""
    model.eval()
    tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be [N, T, K], got shape {tuple(tokens.shape)}")
    mus, sigmas = [], []
    for rows in batch_slices(len(tokens), batch_size):
        mu, sigma = model.encode(tokens[rows].to(_device(model)))
        mus.append(mu.float().cpu())
        sigmas.append(sigma.float().cpu())
    if not mus:
        z = latent_size(model)
        return torch.zeros(0, z), torch.zeros(0, z)
    return torch.cat(mus), torch.cat(sigmas)


def encode(
    model: torch.nn.Module,
    tokens: np.ndarray | torch.Tensor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Latent codes ``[N, Z]`` of sequences: the posterior means μ (what the paper edits)."""
    return encode_posterior(model, tokens, batch_size=batch_size)[0]


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    z: np.ndarray | torch.Tensor,
    *,
    temperature: float = 0.0,
    seed: int | None = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> torch.Tensor:
    """Token sequences ``[N, T, K]`` (LongTensor) decoded from latent codes ``[N, Z]``."""
    model.eval()
    z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
    if z.ndim != 2 or z.shape[1] != latent_size(model):
        raise ValueError(
            f"latent codes must be [N, {latent_size(model)}], got shape {tuple(z.shape)}"
        )
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    generator = _generator(model, seed)
    outputs = [
        model.decode(z[rows].to(_device(model)), temperature=temperature, generator=generator).cpu()
        for rows in batch_slices(len(z), batch_size)
    ]
    return torch.cat(outputs).long()


@torch.no_grad()
def sample_prior(model: torch.nn.Module, n: int, *, seed: int | None = 0) -> torch.Tensor:
    """``n`` latent codes ``[n, Z]`` drawn from the model's prior (N(0, I) or a fitted one)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    eps = torch.randn(n, latent_size(model), generator=generator)
    return model.prior_codes(eps)


def sample(
    model: torch.nn.Module,
    n: int,
    *,
    temperature: float = 0.5,
    seed: int | None = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` new sequences: codes from the prior, decoded at ``temperature``. Returns (z, tokens)."""
    z = sample_prior(model, n, seed=seed)
    tokens = decode(model, z, temperature=temperature, seed=seed, batch_size=batch_size)
    return z, tokens


def slerp(z0: torch.Tensor, z1: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation between rows of ``z0`` and ``z1`` (``[..., D]``).

    Moves along the great circle between the two directions, so that interpolants of
    equal-norm codes keep that norm: a straight line would pass through the low-norm middle of a
    Gaussian prior, where codes are atypical. Falls back to a straight line when the two codes
    point the same way (the circle is undefined there).
    """
    if z0.shape != z1.shape:
        raise ValueError(f"z0 {tuple(z0.shape)} and z1 {tuple(z1.shape)} differ in shape")
    cos = torch.nn.functional.cosine_similarity(z0, z1, dim=-1, eps=1e-12).clamp(-1.0, 1.0)
    omega = torch.arccos(cos).unsqueeze(-1)
    sin_omega = torch.sin(omega)
    straight = (1.0 - alpha) * z0 + alpha * z1
    parallel = sin_omega.abs() < 1e-6
    safe_sin = torch.where(parallel, torch.ones_like(sin_omega), sin_omega)
    curved = (torch.sin((1.0 - alpha) * omega) * z0 + torch.sin(alpha * omega) * z1) / safe_sin
    return torch.where(parallel, straight, curved)


def interpolation_codes(z_a: torch.Tensor, z_b: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` codes ``[steps, Z]`` from ``z_a`` to ``z_b`` (both ends included), by slerp."""
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    alphas = np.linspace(0.0, 1.0, steps)
    return torch.stack([slerp(z_a, z_b, float(alpha)) for alpha in alphas])


def interpolate(
    model: torch.nn.Module,
    tokens_a: np.ndarray | torch.Tensor,
    tokens_b: np.ndarray | torch.Tensor,
    steps: int,
    *,
    temperature: float = 0.0,
    seed: int | None = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode ``steps`` points between the codes of two sequences ``[T, K]``.

    The first and last points are the decoded μ of A and of B, i.e. the model's reconstructions.
    Returns (codes ``[steps, Z]``, tokens ``[steps, T, K]``).
    """
    mu = encode(model, np.stack([np.asarray(tokens_a), np.asarray(tokens_b)]))
    codes = interpolation_codes(mu[0], mu[1], steps)
    return codes, decode(model, codes, temperature=temperature, seed=seed)
