"""An LSTM language model over token sequences: the independent judge of "naturalness".

The paper scores interpolants by their log-likelihood under a language model trained apart from
the VAE, on the train split of the same dataset: a data-space crossfade of two melodies is a
jumble of both, which such a model finds unlikely, while a good latent interpolant reads like
music. The model predicts every track's token at step t from all tracks' tokens before t.

Stage: ``python -m evaluation.lm --dataset mel_16bar [--params params.yaml] [--out DIR]`` trains
on the train split, reports its test perplexity and writes ``DIR/lm.pt`` (a plain dict of config
and tensors, loadable with ``torch.load(weights_only=True)``) and ``DIR/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from evaluation.params import LMParams
from pipelines.params import read_params


@dataclass(frozen=True)
class LMConfig:
    num_classes: tuple[int, ...]  # one entry per track, in the order of TRACKS[kind]
    embed_size: int = 32
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0


class TokenLSTM(nn.Module):
    """Next-step model: embeddings of all tracks' previous tokens -> LSTM -> one head per track."""

    def __init__(self, cfg: LMConfig):
        super().__init__()
        self.cfg = cfg
        # Index num_classes of each embedding is the start symbol fed before the first step.
        self.embeddings = nn.ModuleList(
            nn.Embedding(c + 1, cfg.embed_size) for c in cfg.num_classes
        )
        self.lstm = nn.LSTM(
            len(cfg.num_classes) * cfg.embed_size,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden_size, c) for c in cfg.num_classes)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits ``[B, T, C_k]`` per track for x ``[B, T, K]``; step t sees only steps < t."""
        batch, _, tracks = x.shape
        if tracks != len(self.embeddings):
            raise ValueError(f"model has {len(self.embeddings)} tracks, input has {tracks}")
        start = torch.tensor(self.cfg.num_classes, device=x.device).expand(batch, 1, tracks)
        inputs = torch.cat([start, x[:, :-1]], dim=1)
        embedded = torch.cat([emb(inputs[..., k]) for k, emb in enumerate(self.embeddings)], -1)
        hidden, _ = self.lstm(embedded)
        return [head(hidden) for head in self.heads]

    def step_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x_t | x_<t) summed over tracks, per step: ``[B, T]`` (nats)."""
        logits = self(x)
        per_track = [
            torch.gather(F.log_softmax(lg, dim=-1), -1, x[..., k : k + 1]).squeeze(-1)
            for k, lg in enumerate(logits)
        ]
        return torch.stack(per_track, dim=-1).sum(dim=-1)


def _check_tokens(tokens: np.ndarray, cfg: LMConfig) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 3 or tokens.shape[2] != len(cfg.num_classes):
        raise ValueError(f"tokens must be [N, T, {len(cfg.num_classes)}], got {tokens.shape}")
    if tokens.shape[0] == 0:
        raise ValueError("no sequences")
    for k, classes in enumerate(cfg.num_classes):
        if tokens[..., k].min() < 0 or tokens[..., k].max() >= classes:
            raise ValueError(f"track {k} holds tokens outside 0..{classes - 1}")
    return tokens


@torch.no_grad()
def mean_step_log_likelihood(
    model: TokenLSTM, tokens: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Mean log-likelihood per step of every sequence ``[N]`` (nats per step, tracks summed)."""
    tokens = _check_tokens(tokens, model.cfg)
    model.eval()
    out = []
    for start in range(0, len(tokens), batch_size):
        batch = torch.from_numpy(tokens[start : start + batch_size].astype(np.int64))
        out.append(model.step_log_likelihood(batch).mean(dim=1))
    return torch.cat(out).numpy()


def perplexity(model: TokenLSTM, tokens: np.ndarray, batch_size: int = 256) -> float:
    """exp(mean NLL per token), tokens of all tracks counted separately."""
    nll_per_step = -mean_step_log_likelihood(model, tokens, batch_size).mean()
    return math.exp(nll_per_step / len(model.cfg.num_classes))


def train(
    model: TokenLSTM,
    tokens: np.ndarray,
    *,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    max_minutes: float = 0.0,
    log_every: int = 100,
) -> list[float]:
    """Adam on random minibatches of ``tokens``; returns the training loss (nats/token) per step.

    Stops after ``steps`` steps or ``max_minutes`` minutes (0: no time limit), whichever first.
    """
    tokens = _check_tokens(tokens, model.cfg)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    model.train()
    losses = []
    deadline = time.perf_counter() + max_minutes * 60.0 if max_minutes > 0 else math.inf
    for step in range(steps):
        if time.perf_counter() >= deadline:
            print(f"lm: time budget of {max_minutes} min spent after {step} steps", flush=True)
            break
        batch = torch.from_numpy(tokens[rng.integers(0, len(tokens), batch_size)].astype(np.int64))
        loss = -model.step_log_likelihood(batch).mean() / len(model.cfg.num_classes)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            recent = np.mean(losses[-log_every:])
            print(f"lm step {step + 1}/{steps}: loss {recent:.4f} nats/token", flush=True)
    return losses


def save_lm(model: TokenLSTM, path: Path, metrics: dict[str, Any] | None = None) -> None:
    """Plain dict of config and tensors, so that loading needs no pickled classes."""
    config = asdict(model.cfg)
    config["num_classes"] = list(config["num_classes"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": model.state_dict(), "metrics": metrics or {}}, path)


def load_lm(path: str | Path) -> TokenLSTM:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(blob["config"])
    config["num_classes"] = tuple(config["num_classes"])
    model = TokenLSTM(LMConfig(**config))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model


def run(dataset: str, settings: LMParams, out_dir: Path, datasets_root: Path) -> dict:
    """Train the LM of ``dataset`` and write lm.pt and metrics.json under ``out_dir``."""
    from evaluation.testset import dataset_layout, load_examples
    from pipelines.representation import TRACKS

    if settings.num_threads:
        torch.set_num_threads(int(settings.num_threads))
    kind, num_bars = dataset_layout(dataset)
    tracks = TRACKS[kind]
    folder = datasets_root / dataset
    train_set = load_examples(folder, "train", tracks, num_bars)
    test_set = load_examples(
        folder, "test", tracks, num_bars, settings.max_test_examples, settings.seed
    )
    cfg = LMConfig(
        num_classes=tuple(t.num_classes for t in tracks),
        embed_size=settings.embed_size,
        hidden_size=settings.hidden_size,
        num_layers=settings.num_layers,
        dropout=settings.dropout,
    )
    torch.manual_seed(settings.seed)  # the initial weights too: a rerun writes the same lm.pt
    model = TokenLSTM(cfg)
    started = time.perf_counter()
    losses = train(
        model,
        train_set.tokens,
        steps=settings.train_steps,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        seed=settings.seed,
        max_minutes=settings.max_minutes,
    )
    metrics = {
        "dataset": dataset,
        "train_examples": int(len(train_set.tokens)),
        "test_examples": int(len(test_set.tokens)),
        "train_steps": len(losses),
        "train_seconds": round(time.perf_counter() - started, 1),
        "final_train_loss": float(np.mean(losses[-50:])) if losses else float("nan"),
        "test_perplexity": perplexity(model, test_set.tokens),
        "test_mean_step_log_likelihood": float(
            mean_step_log_likelihood(model, test_set.tokens).mean()
        ),
    }
    # Times stay out of lm.pt, so that identical weights make identical bytes.
    save_lm(model, out_dir / "lm.pt", {k: v for k, v in metrics.items() if k != "train_seconds"})
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset folder name, e.g. mel_16bar")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--datasets-root", type=Path, default=Path("datasets"))
    parser.add_argument("--out", type=Path, help="default: models/lm-<dataset>")
    args = parser.parse_args(argv)

    out_dir = args.out or Path("models") / f"lm-{args.dataset}"
    settings = read_params(args.params, "lm", LMParams)
    metrics = run(args.dataset, settings, out_dir, args.datasets_root)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
