"""A Gaussian prior fitted to a trained model's codes (config `prior: fitted`).

With a small KL weight the posteriors spread over less than N(0, I), so codes drawn from N(0, I)
fall where the decoder has never been, and it plays pitches scattered over the keyboard. After
training, the aggregate posterior of the training windows, the mixture of their N(mu, sigma^2),
is moment-matched by one Gaussian: mean E[mu], covariance Cov(mu) + E[diag(sigma^2)] (an ex-post
density estimate, as in Ghosh et al. 2020). New codes are drawn from it (`MusicVAE.prior_codes`).
"""

from __future__ import annotations

import numpy as np
import torch

from training import generate
from training.model import MusicVAE


@torch.no_grad()
def fit_prior(model: MusicVAE, tokens: np.ndarray, batch_size: int = 256) -> dict[str, float]:
    """Set the model's fitted prior from the codes of ``tokens`` [N, T, K]; returns a summary."""
    if model.cfg.prior != "fitted":
        raise ValueError(f"the model's prior is {model.cfg.prior!r}, not 'fitted'")
    if len(tokens) < 2:
        raise ValueError(f"fitting the prior takes at least 2 windows, got {len(tokens)}")
    was_training = model.training
    mu, sigma = generate.encode_posterior(model, tokens, batch_size=batch_size)
    model.train(was_training)
    mu, sigma = mu.double(), sigma.double()
    loc = mu.mean(0)
    cov = torch.cov(mu.T).reshape(len(loc), len(loc)) + torch.diag((sigma**2).mean(0))
    scale_tril = torch.linalg.cholesky(cov)
    model.prior_loc.copy_(loc)
    model.prior_scale_tril.copy_(scale_tril)
    sd = cov.diagonal().sqrt()
    return {
        "prior_fit_examples": float(len(tokens)),
        "prior_sd_median": float(sd.median()),
        "prior_sd_min": float(sd.min()),
        "prior_sd_max": float(sd.max()),
        "prior_loc_abs_max": float(loc.abs().max()),
    }
