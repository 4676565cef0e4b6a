"""Training throughput of MusicVAE configs against a plain nn.LSTM reference of the same sizes.

    python bench/train.py                       # CPU-sized configs, batch 64 and 512
    python bench/train.py --paper               # also the paper sizes (few steps on a CPU)
    python bench/train.py --configs hierdec-mel_16bar_cpu --batch 64 --steps 5 --threads 2

For each config and batch size it times full training steps (training.train.train_step:
forward, loss, backward, clipping, Adam) on random tokens and prints ms per step, examples/s and
achieved GFLOP/s. FLOPs are counted analytically: 2 * 4H * (I + H) per LSTM layer, direction,
step and example for the gate matmuls, plus the dense layers (output heads, mu/sigma, initial
states); a training step counts 3x the forward pass (backward ~2x). Elementwise work is not
counted.

The reference, measured in the same run: a plain bidirectional nn.LSTM encoder and a flat
nn.LSTM decoder (inputs one-hot + z, teacher-forced) with the config's sizes, the same heads and
loss, Adam. For a hierarchical config the reference decodes all T steps with the bottom decoder's
sizes in one flat pass (no conductor), which is what the hierarchical decoder costs without
batching bars.

Modes: "tf" = teacher forcing (the nn.LSTM path); "ss" (2-bar configs) = scheduled sampling
with probability 0.5 (the stepped path, which magenta's inverse-sigmoid schedule takes at every
step > 0; the CPU 2-bar configs train teacher-forced, because it costs this much);
"bar" (hierarchical configs) = the same teacher-forced model decoding its bars one after the
other (U nn.LSTM calls on [B, 16] batches) instead of all bars at once as one [B * U, 16] batch:
the speed-up of batching bars is the ratio of the "tf" and "bar" rows.

Precision: an fp32 row per mode, and a bf16-autocast row where training.precision finds bf16
native (CUDA, or a CPU with avx512_bf16/amx_bf16); the reference runs in the same precision, and
%ceil is against the GEMM ceiling of that precision. Whole runs by number of processes (DDP):
bench/launch.py.

CPU threads default to 1: on a 2-core machine shared with other work, a second OpenMP thread
makes small-matrix LSTM steps several times slower (see training/configs.py).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import types

import torch
import torch.nn.functional as F
from torch import nn

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from training.configs import PAPER_CONFIGS, get_config  # noqa: E402
from training.distributed import Runtime, pick_device  # noqa: E402
from training.model import MusicVAE, encoder_feature_size  # noqa: E402
from training.precision import use_bf16  # noqa: E402
from training.train import train_step  # noqa: E402

CPU_CONFIGS = [
    "cat-mel_2bar_cpu",
    "flat-mel_16bar_cpu",
    "hierdec-mel_16bar_cpu",
    "cat-drums_2bar_cpu",
    "flat-trio_16bar_cpu",
    "hierdec-trio_16bar_cpu",
]


# ---------------------------------------------------------------------------------------------
# FLOP counts (forward pass, per example)


def lstm_flops(input_size: int, sizes: list[int], steps: int, directions: int = 1) -> int:
    total = 0
    for hidden in sizes:
        total += directions * 2 * 4 * hidden * (input_size + hidden) * steps
        input_size = directions * hidden
    return total


def core_flops(classes: list[int], cond: int, sizes: list[int], steps: int) -> int:
    initial = 2 * cond * 2 * sum(sizes)
    heads = 2 * sizes[-1] * sum(classes) * steps
    return initial + lstm_flops(sum(classes) + cond, sizes, steps) + heads


def encoder_flops(cfg) -> int:
    """The flat encoder's, or every level of a hierarchical one (enc_level_lengths)."""
    steps = cfg.max_seq_len
    flops = lstm_flops(encoder_feature_size(cfg.tracks), cfg.enc_rnn_size, steps, directions=2)
    for length in cfg.enc_level_lengths[:-1]:
        steps //= length  # each level reads one embedding per segment of the level below
        flops += lstm_flops(2 * cfg.enc_rnn_size[-1], cfg.enc_rnn_size, steps, directions=2)
    return flops


def model_flops(cfg) -> int:
    steps, classes = cfg.max_seq_len, [t.num_classes for t in cfg.tracks]
    enc = encoder_flops(cfg)
    latent = 2 * 2 * (2 * cfg.enc_rnn_size[-1]) * cfg.z_size
    if cfg.decoder == "flat":
        return enc + latent + core_flops(classes, cfg.z_size, cfg.dec_rnn_size, steps)
    conductor = cfg.conductor_sizes
    dec = 2 * cfg.z_size * 2 * sum(conductor) + lstm_flops(1, conductor, cfg.num_bars)
    groups = [[c] for c in classes] if cfg.split_tracks else [classes]
    per_bar = sum(core_flops(g, conductor[-1], cfg.dec_rnn_size, 16) for g in groups)
    return enc + latent + dec + cfg.num_bars * per_bar


def reference_flops(cfg) -> int:
    steps, classes = cfg.max_seq_len, [t.num_classes for t in cfg.tracks]
    enc = lstm_flops(encoder_feature_size(cfg.tracks), cfg.enc_rnn_size, steps, directions=2)
    latent = 2 * 2 * (2 * cfg.enc_rnn_size[-1]) * cfg.z_size
    return enc + latent + core_flops(classes, cfg.z_size, cfg.dec_rnn_size, steps)


# ---------------------------------------------------------------------------------------------
# The plain nn.LSTM reference


class Reference(nn.Module):
    """nn.LSTM(bidirectional) encoder + flat nn.LSTM decoder with the config's sizes."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.classes = [t.num_classes for t in cfg.tracks]
        enc, dec = cfg.enc_rnn_size, cfg.dec_rnn_size
        feat = encoder_feature_size(cfg.tracks)
        self.encoder = nn.ModuleList(
            nn.LSTM(i, h, batch_first=True, bidirectional=True)
            for i, h in zip([feat] + [2 * s for s in enc[:-1]], enc, strict=True)
        )
        self.mu = nn.Linear(2 * enc[-1], cfg.z_size)
        self.sigma = nn.Linear(2 * enc[-1], cfg.z_size)
        self.init = nn.Linear(cfg.z_size, 2 * sum(dec))
        self.decoder = nn.ModuleList(
            nn.LSTM(i, h, batch_first=True)
            for i, h in zip([sum(self.classes) + cfg.z_size] + dec[:-1], dec, strict=True)
        )
        self.heads = nn.ModuleList(nn.Linear(dec[-1], c) for c in self.classes)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        one_hot = torch.cat(
            [F.one_hot(x[..., k], c).float() for k, c in enumerate(self.classes)], dim=-1
        )
        # The encoder reads the same feature width as MusicVAE's (drum rolls are narrower).
        h = one_hot[..., : self.encoder[0].input_size]
        for layer in self.encoder:
            h, (h_n, _) = layer(h)
        last = torch.cat([h_n[0], h_n[1]], dim=-1)
        z = self.mu(last) + F.softplus(self.sigma(last)) * torch.randn_like(self.mu(last))
        states = torch.tanh(self.init(z)).split(
            [s for size in self.cfg.dec_rnn_size for s in (size, size)], dim=-1
        )
        inputs = torch.cat(
            [F.pad(one_hot[:, :-1], (0, 0, 1, 0)), z.unsqueeze(1).expand(-1, x.shape[1], -1)],
            dim=-1,
        )
        out = inputs
        for i, layer in enumerate(self.decoder):
            out, _ = layer(
                out, (states[2 * i][None].contiguous(), states[2 * i + 1][None].contiguous())
            )
        nll = sum(
            F.cross_entropy(head(out).transpose(1, 2), x[..., k], reduction="none").sum(1)
            for k, head in enumerate(self.heads)
        )
        return nll.mean()


# ---------------------------------------------------------------------------------------------
# Timing


def random_batch(cfg, batch: int, device) -> torch.Tensor:
    return torch.stack(
        [torch.randint(0, t.num_classes, (batch, cfg.max_seq_len)) for t in cfg.tracks], dim=-1
    ).to(device)


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(step_fn, steps: int, device) -> float:
    """Seconds per step: one untimed warm-up step, then the mean of `steps`."""
    step_fn(0)
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step_fn(i + 1)
    sync(device)
    return (time.perf_counter() - start) / steps


def decode_bars_one_by_one(self, c, prev, sampling_probability=0.0, generator=None):
    """HierarchicalDecoder.decode_bars without batching bars: U sequential nn.LSTM calls."""
    steps = self.steps_per_bar
    logits = [[] for _ in range(prev.shape[-1])]
    for u in range(self.num_bars):
        bar_prev = prev[:, u * steps : (u + 1) * steps]
        for group, core in zip(self.track_groups, self.bottom, strict=True):
            outs = core(bar_prev[..., group], c[:, u], sampling_probability, generator)
            for k, out in zip(group, outs, strict=True):
                logits[k].append(out)
    return [torch.cat(track, dim=1) for track in logits]


def bench_model(cfg, batch: int, steps: int, device, mode: str, bf16: bool) -> float:
    scheduled = mode == "ss"
    torch.manual_seed(0)
    model = MusicVAE(cfg).to(device)
    if mode == "bar":
        batched = model.decoder.decode_bars
        model.decoder.decode_bars = types.MethodType(decode_bars_one_by_one, model.decoder)
        with torch.no_grad():  # the same function, only scheduled differently
            c = model.decoder.conduct(torch.randn(2, cfg.z_size, device=device))
            prev = random_batch(cfg, 2, device)
            for a, b in zip(batched(c, prev), model.decoder.decode_bars(c, prev), strict=True):
                torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    optimizer = torch.optim.Adam(model.parameters())
    runtime = Runtime(0, 1, 0, device)
    generator = torch.Generator(device=device)
    x = random_batch(cfg, batch, device)
    # "ss" samples with probability 0.5, as late in magenta's inverse-sigmoid schedule.
    overrides = {"batch_size": batch, "sampling_schedule": "constant"}
    cfg = get_config(cfg.name, {**overrides, "sampling_rate": 0.5 if scheduled else 0.0})
    return time_steps(
        lambda i: train_step(
            model,
            model,
            optimizer,
            x,
            cfg,
            i,
            generator,
            runtime,
            bf16=bf16,
        ),
        steps,
        device,
    )


def bench_reference(cfg, batch: int, steps: int, device, bf16: bool) -> float:
    torch.manual_seed(0)
    model = Reference(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    x = random_batch(cfg, batch, device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def step(_):
        with autocast:
            loss = model.loss(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return time_steps(step, steps, device)


def gemm_ceiling(device, dtype=torch.float32, size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of a large square matmul on this device and thread count: the machine's ceiling
    for the matrix products that LSTM steps are made of."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = time_steps(lambda _: a @ b, repeats, device)
    return 2 * size**3 / seconds / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="*", help="config names (default: the CPU-sized ones)")
    parser.add_argument("--paper", action="store_true", help="also the paper-sized configs")
    parser.add_argument("--batch", nargs="*", type=int, default=[64, 512])
    parser.add_argument("--steps", type=int, default=3, help="timed steps (CPU-sized configs)")
    parser.add_argument("--paper-steps", type=int, default=1, help="timed steps (paper sizes)")
    parser.add_argument(
        "--paper-batch",
        nargs="*",
        type=int,
        default=None,
        help="batch sizes for the paper configs (default: --batch on GPU, 64 on CPU)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--precision",
        nargs="*",
        choices=["fp32", "bf16"],
        help="default: fp32, and bf16 where it is native (training.precision)",
    )
    args = parser.parse_args(argv)

    device = pick_device(args.device)
    if args.threads and device.type == "cpu":
        torch.set_num_threads(args.threads)
    jobs = [(name, args.batch, args.steps) for name in (args.configs or CPU_CONFIGS)]
    if args.paper:
        paper_batch = args.paper_batch or (args.batch if device.type == "cuda" else [64])
        jobs += [(name, paper_batch, args.paper_steps) for name in PAPER_CONFIGS]
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    precisions = args.precision or ["fp32"] + (["bf16"] if use_bf16("auto", device) else [])
    ceilings = {
        p: gemm_ceiling(device, torch.bfloat16 if p == "bf16" else torch.float32)
        for p in precisions
    }
    for p, value in ceilings.items():
        print(f"ceiling: {p} GEMM 1024^3 {value:.1f} GFLOP/s (same run, same threads)")
    header = (
        f"{'config':24} {'batch':>5} {'mode':>4} {'prec':>4} {'ms/step':>9} {'ex/s':>8}"
        f" {'GFLOP/s':>8} {'%ceil':>5} | {'ref ms':>9} {'ref ex/s':>8} {'ref GF/s':>8}"
        f" | {'speed':>5}"
    )
    print(header)
    print("-" * len(header))
    for name, batches, steps in jobs:
        base = get_config(name)
        modes = ["tf"]
        if base.num_bars == 2:  # magenta's 2-bar configs schedule sampling
            modes.append("ss")
        if base.decoder == "hierarchical":
            modes.append("bar")
        for batch, precision in itertools.product(batches, precisions):
            bf16 = precision == "bf16"
            cfg = get_config(name, {"batch_size": batch})
            ref_s = None if args.no_reference else bench_reference(cfg, batch, steps, device, bf16)
            for mode in modes:
                seconds = bench_model(cfg, batch, steps, device, mode, bf16)
                flops = 3 * model_flops(cfg) * batch
                line = (
                    f"{name:24} {batch:5d} {mode:>4} {precision:>4} {seconds * 1e3:9.1f} "
                    f"{batch / seconds:8.1f} {flops / seconds / 1e9:8.1f}"
                    f" {100 * flops / seconds / 1e9 / ceilings[precision]:5.1f}"
                )
                if ref_s is not None:
                    ref_flops = 3 * reference_flops(cfg) * batch
                    line += (
                        f" | {ref_s * 1e3:9.1f} {batch / ref_s:8.1f} "
                        f"{ref_flops / ref_s / 1e9:8.1f} | {ref_s / seconds:5.2f}"
                    )
                print(line, flush=True)


if __name__ == "__main__":
    main()
