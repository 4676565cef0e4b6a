"""The MusicVAE loss and its schedules, with magenta's semantics (base_model.py, lstm_utils.py).

r_loss  = NLL of the targets summed over time and tracks, per example
KL      = KL(N(mu, sigma) || N(0, I)) in nats, summed over z dimensions, per example
kl_cost = max(KL - free_bits * ln 2, 0)
beta    = (1 - beta_rate ** step) * max_beta
loss    = mean_batch(r_loss) + beta * mean_batch(kl_cost) [+ w * mean_batch(bag NLL), if w > 0]
lr      = (learning_rate - min_learning_rate) * decay_rate ** step + min_learning_rate
p(sample own output) = 1 - k / (k + exp(step / k))            ("inverse_sigmoid", k = rate)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from training.configs import Config
from training.model import VAEOutput

LN2 = math.log(2.0)
# A z dimension is active when Cov_x(E[z|x]) exceeds this (Burda et al., 2016).
ACTIVE_UNIT_THRESHOLD = 0.01


class LossTerms(NamedTuple):
    loss: Tensor  # the scalar to minimise
    r_loss: Tensor  # mean reconstruction NLL per example (nats)
    kl_bits: Tensor  # mean KL per example (bits)
    kl_cost: Tensor  # mean max(KL - free nats, 0) (nats)
    beta: float
    accuracy: Tensor  # fraction of tokens (all tracks) predicted right, teacher forced
    bag_loss: Tensor  # mean NLL per example of every token under its bar's bag of notes (nats)
    track_accuracy: list[Tensor]  # the same per track


def beta_at(cfg: Config, step: int) -> float:
    return (1.0 - cfg.beta_rate**step) * cfg.max_beta


def learning_rate_at(cfg: Config, step: int) -> float:
    decayed = (cfg.learning_rate - cfg.min_learning_rate) * cfg.decay_rate**step
    rate = decayed + cfg.min_learning_rate
    if cfg.warmup_steps > 0:
        rate *= min(1.0, (step + 1) / cfg.warmup_steps)
    return rate


def sampling_probability_at(cfg: Config, step: int) -> float:
    rate = cfg.sampling_rate
    if cfg.sampling_schedule == "constant":
        return float(rate)
    if cfg.sampling_schedule == "exponential":
        return 1.0 - rate**step
    # inverse_sigmoid; exp overflows for huge step / k, where the probability is 1 anyway.
    exponent = step / rate
    if exponent > 700:
        return 1.0
    return 1.0 - rate / (rate + math.exp(exponent))


def kl_divergence(mu: Tensor, sigma: Tensor) -> Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) in nats per example: [B]."""
    log_sigma = torch.log(sigma.clamp_min(1e-30))
    return (0.5 * (mu.square() + sigma.square() - 1.0) - log_sigma).sum(dim=-1)


def kl_cost(kl: Tensor, free_bits: float) -> Tensor:
    """max(KL - free_bits * ln 2, 0) per example: no cost (and no gradient) below the threshold."""
    return torch.clamp(kl - free_bits * LN2, min=0.0)


def reconstruction(logits: list[Tensor], x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Per-example NLL summed over steps and tracks [B], and per-track correctness [B, T]."""
    nll = x.new_zeros(x.shape[0], dtype=torch.float32)
    correct = []
    for k, track_logits in enumerate(logits):
        track_logits = track_logits.float()
        target = x[..., k]
        ce = F.cross_entropy(track_logits.transpose(1, 2), target, reduction="none")  # [B, T]
        nll = nll + ce.sum(dim=1)
        correct.append(track_logits.argmax(dim=-1) == target)
    return nll, correct


def bag_of_notes_nll(bag_logits: list[Tensor], x: Tensor) -> Tensor:
    """Per-example NLL [B] of every token under its bar's order-free distribution, summed."""
    nll = x.new_zeros(x.shape[0], dtype=torch.float32)
    for k, logits in enumerate(bag_logits):
        batch, bars, _ = logits.shape
        log_p = F.log_softmax(logits.float(), dim=-1)  # [B, U, C]
        tokens = x[..., k].reshape(batch, bars, -1)  # [B, U, steps per bar]
        nll = nll - log_p.gather(2, tokens).sum(dim=(1, 2))
    return nll


def vae_loss(out: VAEOutput, x: Tensor, cfg: Config, step: int) -> LossTerms:
    nll, correct = reconstruction(out.logits, x)
    bag = (
        bag_of_notes_nll(out.bag_logits, x).mean()
        if out.bag_logits is not None
        else x.new_zeros((), dtype=torch.float32)
    )
    kl = kl_divergence(out.mu.float(), out.sigma.float())
    cost = kl_cost(kl, cfg.free_bits)
    beta = beta_at(cfg, step)
    r_loss = nll.mean()
    mean_cost = cost.mean()
    track_accuracy = [c.float().mean() for c in correct]
    return LossTerms(
        loss=r_loss + beta * mean_cost + cfg.bag_of_notes_weight * bag,
        r_loss=r_loss,
        kl_bits=kl.mean() / LN2,
        kl_cost=mean_cost,
        beta=beta,
        accuracy=torch.stack(track_accuracy).mean(),
        bag_loss=bag,
        track_accuracy=track_accuracy,
    )
