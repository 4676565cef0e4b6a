"""MusicVAE (Roberts et al., ICML 2018) in PyTorch, following magenta's lstm_models.py.

Read top to bottom:

1. token features: what the encoder and the decoders read;
2. `LSTMStack`: stacked nn.LSTM layers that run whole sequences (cuDNN / oneDNN paths) or one
   step at a time on the same weights (scheduled sampling and free-running decoding);
3. `BidirectionalEncoder`: last forward and backward states -> dense -> mu, softplus -> sigma
   (or `HierarchicalEncoder`: each bar on its own, then the bars' embeddings);
4. `CoreDecoder`: an LSTM decoder conditioned on one vector (z for the flat decoder, the bar's
   conductor embedding c_u for the hierarchical one): its initial state comes from the vector
   through dense + tanh, and the vector is concatenated to every input step;
5. `FlatDecoder` and `HierarchicalDecoder` (conductor LSTM over bars, bottom decoder per bar);
6. `MusicVAE`: encode / forward (teacher-forced, optional scheduled sampling) / decode.

Tokens are LongTensors `[B, T, K]`, K tracks in the order of `TRACKS[cfg.kind]`. Inside the
decoders the previous-token input uses -1 (`START`) for "no previous token": a zero vector, as
magenta's zero start input.

Hierarchical decoding. The conductor runs once over U = num_bars steps with zero inputs (or z,
with `conductor_input: z`); bar u is decoded by the bottom decoder from c_u alone (its state is
rebuilt from c_u at every bar), and its first input is the last token of bar u-1 (teacher
forcing: the true token; free-running: the token sampled at the end of bar u-1). Given c_u and
that token the bars are independent, so training runs all bars of a batch as one
`[B * U, 16, ...]` batch through nn.LSTM.

Deliberate differences from magenta, all small: the drum encoder input is magenta's drum roll
(9 classes + a "silence" bit) also inside the trio encoder, where magenta feeds the trio's
one-hot vectors; LSTM weights use PyTorch's default initialisation (magenta: Glorot), with
magenta's forget-gate bias of 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipelines.representation import NUM_DRUM_CLASSES, TrackSpec
from training.configs import Config

START = -1  # "no previous token": the zero input vector


class VAEOutput(NamedTuple):
    logits: list[Tensor]  # one [B, T, num_classes] per track
    mu: Tensor  # [B, z_size]
    sigma: Tensor  # [B, z_size]
    z: Tensor  # [B, z_size]
    bag_logits: list[Tensor] | None = None  # one [B, num_bars, num_classes] per track


# ---------------------------------------------------------------------------------------------
# 1. Token features


def encoder_feature_size(tracks: list[TrackSpec]) -> int:
    return sum(NUM_DRUM_CLASSES + 1 if t.track_type == "drums" else t.num_classes for t in tracks)


def encoder_features(x: Tensor, tracks: list[TrackSpec]) -> Tensor:
    """[B, T, K] tokens -> [B, T, F] floats: one-hot per melody track, drum roll per drum track."""
    features = []
    for k, spec in enumerate(tracks):
        tokens = x[..., k]
        if spec.track_type == "drums":
            bits = torch.arange(NUM_DRUM_CLASSES, device=x.device)
            roll = (tokens.unsqueeze(-1) >> bits) & 1
            features += [roll.float(), (tokens == 0).float().unsqueeze(-1)]
        else:
            features.append(F.one_hot(tokens, spec.num_classes).float())
    return torch.cat(features, dim=-1)


def previous_token_one_hot(prev: Tensor, tracks: list[TrackSpec]) -> Tensor:
    """[N, L, K] previous tokens (START allowed) -> [N, L, sum(num_classes)] one-hot floats."""
    parts = [
        F.one_hot(prev[..., k] + 1, spec.num_classes + 1)[..., 1:].float()
        for k, spec in enumerate(tracks)
    ]
    return torch.cat(parts, dim=-1)


def shift_right(x: Tensor) -> Tensor:
    """The decoder's teacher-forcing inputs: START, then the targets delayed by one step."""
    start = torch.full_like(x[:, :1], START)
    return torch.cat([start, x[:, :-1]], dim=1)


def drop_inputs(prev: Tensor, probability: float, generator: torch.Generator | None) -> Tensor:
    """Word dropout (Bowman et al., 2016): each step's previous tokens become START with
    `probability`, so that the decoder must take what it drops from z."""
    keep = torch.rand(prev.shape[:2], device=prev.device, generator=generator) >= probability
    return torch.where(keep.unsqueeze(-1), prev, torch.full_like(prev, START))


def sample_tokens(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """[N, C] logits -> [N] tokens: argmax at temperature 0, else a softmax sample."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# 2. LSTM stack

LSTMState = list[tuple[Tensor, Tensor]]  # (h, c) per layer, each [N, H]


def _init_lstm(lstm: nn.LSTM) -> None:
    """Zero biases except a forget-gate bias of 1 (TensorFlow's LSTMBlockCell, as magenta)."""
    with torch.no_grad():
        for name, param in lstm.named_parameters():
            if name.startswith("bias"):
                param.zero_()
                if name.startswith("bias_ih"):
                    hidden = param.shape[0] // 4
                    param[hidden : 2 * hidden] = 1.0  # gate order: input, forget, cell, output


class LSTMStack(nn.Module):
    """Unidirectional LSTM layers of possibly different sizes, batch-first."""

    def __init__(self, input_size: int, sizes: list[int]):
        super().__init__()
        ins = [input_size] + sizes[:-1]
        self.layers = nn.ModuleList(
            nn.LSTM(i, h, batch_first=True) for i, h in zip(ins, sizes, strict=True)
        )
        for layer in self.layers:
            _init_lstm(layer)
        self.sizes = list(sizes)

    @property
    def state_size(self) -> int:
        return 2 * sum(self.sizes)

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """Whole sequences [N, L, I] -> top outputs [N, L, H], final state (fused kernels)."""
        new_state = []
        for layer, (h, c) in zip(self.layers, state, strict=True):
            x, (h, c) = layer(x, (h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()))
            new_state.append((h[0], c[0]))
        return x, new_state

    def input_gates(self, x: Tensor) -> Tensor:
        """The first layer's input contribution W_ih x + b_ih (so callers can precompute it)."""
        first = self.layers[0]
        return F.linear(x, first.weight_ih_l0, first.bias_ih_l0)

    def step(self, gates0: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """One time step; `gates0` [N, 4H] is the first layer's input contribution.

        Same arithmetic as nn.LSTM on the same weights, so both paths train one set of weights.
        """
        new_state = []
        below = None
        for i, (layer, (h, c)) in enumerate(zip(self.layers, state, strict=True)):
            below_gates = (
                gates0 if i == 0 else F.linear(below, layer.weight_ih_l0, layer.bias_ih_l0)
            )
            gates = below_gates + F.linear(h, layer.weight_hh_l0, layer.bias_hh_l0)
            # One sigmoid over all four gates (the cell gate's share unused): fewer small kernels.
            i_gate, f_gate, _, o_gate = torch.sigmoid(gates).chunk(4, dim=-1)
            g_gate = torch.tanh(gates[..., 2 * h.shape[-1] : 3 * h.shape[-1]])
            c = f_gate * c + i_gate * g_gate
            h = o_gate * torch.tanh(c)
            new_state.append((h, c))
            below = h
        return below, new_state


class InitialState(nn.Module):
    """An LSTM stack's initial state from an embedding: dense + tanh, split per layer (magenta)."""

    def __init__(self, embedding_size: int, sizes: list[int]):
        super().__init__()
        self.sizes = list(sizes)
        self.dense = nn.Linear(embedding_size, 2 * sum(sizes))
        nn.init.normal_(self.dense.weight, std=0.001)
        nn.init.zeros_(self.dense.bias)

    def forward(self, embedding: Tensor) -> LSTMState:
        flat = torch.tanh(self.dense(embedding))
        chunks = flat.split([s for size in self.sizes for s in (size, size)], dim=-1)
        return [(chunks[2 * i], chunks[2 * i + 1]) for i in range(len(self.sizes))]


# ---------------------------------------------------------------------------------------------
# 3. Encoder


class BidirectionalEncoder(nn.Module):
    """Stacked bidirectional LSTM; returns [last forward h, last backward h] of the top layer."""

    def __init__(self, input_size: int, sizes: list[int]):
        super().__init__()
        ins = [input_size] + [2 * s for s in sizes[:-1]]
        self.layers = nn.ModuleList(
            nn.LSTM(i, h, batch_first=True, bidirectional=True)
            for i, h in zip(ins, sizes, strict=True)
        )
        for layer in self.layers:
            _init_lstm(layer)
        self.output_size = 2 * sizes[-1]

    def forward(self, features: Tensor) -> Tensor:
        x = features
        for layer in self.layers:
            x, (h_n, _) = layer(x)
        # h_n[0]: forward direction after the last step; h_n[1]: backward after the first step.
        return torch.cat([h_n[0], h_n[1]], dim=-1)


class HierarchicalEncoder(nn.Module):
    """Bidirectional LSTMs level by level (magenta's HierarchicalLstmEncoder): the sequence is cut
    into segments of level_lengths[0] steps, each encoded alone; the embeddings are then grouped
    by the next length and encoded again, until one embedding is left. Every level has `sizes`."""

    def __init__(self, input_size: int, sizes: list[int], level_lengths: list[int]):
        super().__init__()
        self.level_lengths = list(level_lengths)
        self.levels = nn.ModuleList()
        for _ in level_lengths:
            self.levels.append(BidirectionalEncoder(input_size, sizes))
            input_size = self.levels[-1].output_size
        self.output_size = input_size

    def forward(self, features: Tensor) -> Tensor:
        batch = features.shape[0]
        x = features
        for length, level in zip(self.level_lengths, self.levels, strict=True):
            # [N, S, I] -> [N * S / length, length, I]: each segment one short sequence.
            x = level(x.reshape(-1, length, x.shape[-1]))
        return x.reshape(batch, -1)


def make_encoder(cfg: Config, input_size: int) -> nn.Module:
    if cfg.enc_level_lengths:
        return HierarchicalEncoder(input_size, cfg.enc_rnn_size, cfg.enc_level_lengths)
    return BidirectionalEncoder(input_size, cfg.enc_rnn_size)


# ---------------------------------------------------------------------------------------------
# 4. The decoder conditioned on one vector


class CoreDecoder(nn.Module):
    """LSTM decoder of `tracks` conditioned on a vector (z, or a bar's conductor embedding).

    Input at step t: [one-hot of the previous token of every track, the conditioning vector];
    one output head per track. Teacher forcing runs nn.LSTM over the whole sequence; scheduled
    sampling (probability > 0) and free-running decoding step through time on the same weights.
    """

    def __init__(self, tracks: list[TrackSpec], cond_size: int, sizes: list[int]):
        super().__init__()
        self.tracks = list(tracks)
        self.token_size = sum(t.num_classes for t in tracks)
        self.initial_state = InitialState(cond_size, sizes)
        self.rnn = LSTMStack(self.token_size + cond_size, sizes)
        self.heads = nn.ModuleList(nn.Linear(sizes[-1], t.num_classes) for t in tracks)

    def forward(
        self,
        prev: Tensor,
        cond: Tensor,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> list[Tensor]:
        """prev [N, L, K] (previous tokens, START allowed), cond [N, C] -> logits per track."""
        state = self.initial_state(cond)
        if sampling_probability == 0.0:
            steps = prev.shape[1]
            inputs = torch.cat(
                [
                    previous_token_one_hot(prev, self.tracks),
                    cond.unsqueeze(1).expand(-1, steps, -1),
                ],
                dim=-1,
            )
            out, _ = self.rnn(inputs, state)
            return [head(out) for head in self.heads]
        return self._scheduled_sampling(prev, cond, state, sampling_probability, generator)

    def _scheduled_sampling(self, prev, cond, state, probability, generator) -> list[Tensor]:
        """magenta's ScheduledOutputTrainingHelper: from step 1 on, each sequence's input is,
        with `probability`, a sample (temperature 1) of the model's own previous output."""
        embed, cond_gates = self._step_inputs(cond)
        # The coins do not depend on the outputs, so they are drawn up front; only the rows that
        # use their own output are sampled, and the heads run once over all steps afterwards.
        own = torch.rand(prev.shape[:2], device=prev.device, generator=generator) < probability
        own[:, 0] = False  # step 0 has no output of its own to feed back
        tops: list[Tensor] = []
        for t in range(prev.shape[1]):
            token = prev[:, t]
            rows = own[:, t].nonzero().squeeze(-1)
            if rows.numel():
                with torch.no_grad():
                    last = tops[-1][rows]
                    sampled = torch.stack(
                        [sample_tokens(head(last), 1.0, generator) for head in self.heads], dim=-1
                    )
                token = token.index_copy(0, rows, sampled)
            h, state = self.rnn.step(cond_gates + embed(token), state)
            tops.append(h)
        out = torch.stack(tops, dim=1)
        return [head(out) for head in self.heads]

    def _step_inputs(self, cond: Tensor):
        """Precompute the first layer's input gates: the conditioning part once, the token part
        as a lookup into the columns of W_ih (one-hot @ W_ih^T is a column gather)."""
        weight = self.rnn.layers[0].weight_ih_l0  # [4H, token_size + cond_size]
        cond_gates = F.linear(cond, weight[:, self.token_size :], self.rnn.layers[0].bias_ih_l0)
        tables, offset = [], 0
        for spec in self.tracks:
            columns = weight[:, offset : offset + spec.num_classes].t()
            tables.append(torch.cat([columns.new_zeros(1, columns.shape[1]), columns]))
            offset += spec.num_classes

        def embed(token: Tensor) -> Tensor:  # [N, K] -> [N, 4H]
            return sum(F.embedding(token[:, k] + 1, table) for k, table in enumerate(tables))

        return embed, cond_gates

    def sample(
        self,
        cond: Tensor,
        length: int,
        first: Tensor,
        temperature: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Free-running decode of `length` steps from the previous token `first` [N, K]."""
        state = self.initial_state(cond)
        embed, cond_gates = self._step_inputs(cond)
        token, out = first, []
        for _ in range(length):
            h, state = self.rnn.step(cond_gates + embed(token), state)
            token = torch.stack(
                [sample_tokens(head(h), temperature, generator) for head in self.heads], dim=-1
            )
            out.append(token)
        return torch.stack(out, dim=1)


# ---------------------------------------------------------------------------------------------
# 5. Flat and hierarchical decoders


class BagOfNotes(nn.Module):
    """Per bar, a distribution over each track's tokens (order-free), from the bar's code."""

    def __init__(self, tracks: list[TrackSpec], code_size: int, bars_per_code: int):
        super().__init__()
        self.heads = nn.ModuleList(
            nn.Linear(code_size, bars_per_code * t.num_classes) for t in tracks
        )

    def forward(self, code: Tensor, num_bars: int) -> list[Tensor]:
        """code [B, U, H] (one per bar) or [B, 1, H] (one for all U bars) -> [B, U, C] each."""
        return [head(code).reshape(code.shape[0], num_bars, -1) for head in self.heads]


class FlatDecoder(nn.Module):
    """One LSTM stack over the whole sequence, conditioned on z."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.length = cfg.max_seq_len
        self.num_bars = cfg.num_bars
        self.core = CoreDecoder(cfg.tracks, cfg.z_size, cfg.dec_rnn_size)
        self.bag = (
            BagOfNotes(cfg.tracks, cfg.z_size, cfg.num_bars)
            if cfg.bag_of_notes_weight > 0
            else None
        )

    def codes(self, z: Tensor) -> Tensor:
        """What the decoder reads: z itself, as one code for all bars [B, 1, Z]."""
        return z.unsqueeze(1)

    def bag_logits(self, codes: Tensor) -> list[Tensor]:
        return self.bag(codes, self.num_bars)

    def forward(self, prev, codes, sampling_probability=0.0, generator=None) -> list[Tensor]:
        """Teacher-forced logits from previous tokens and `codes(z)`."""
        return self.core(prev, codes[:, 0], sampling_probability, generator)

    def sample(self, z: Tensor, temperature: float, generator) -> Tensor:
        first = torch.full((z.shape[0], len(self.core.tracks)), START, device=z.device)
        return self.core.sample(z, self.length, first, temperature, generator)


class HierarchicalDecoder(nn.Module):
    """Conductor LSTM (one step per bar; zero inputs, or z) -> c_u -> bottom decoder per bar.

    With `split_tracks` each track has its own bottom decoder, reading only its own previous
    tokens (magenta's SplitMultiOutLstmDecoder); all of them read the same c_u.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.num_bars = cfg.num_bars
        self.steps_per_bar = cfg.steps_per_bar
        sizes = cfg.conductor_sizes
        self.conductor_initial_state = InitialState(cfg.z_size, sizes)
        self.conductor_reads_z = cfg.conductor_input == "z"
        self.conductor = LSTMStack(cfg.z_size if self.conductor_reads_z else 1, sizes)
        groups = (
            [[k] for k in range(len(cfg.tracks))]
            if cfg.split_tracks
            else [list(range(len(cfg.tracks)))]
        )
        self.track_groups = groups
        self.bottom = nn.ModuleList(
            CoreDecoder([cfg.tracks[k] for k in group], sizes[-1], cfg.dec_rnn_size)
            for group in groups
        )
        self.bag = BagOfNotes(cfg.tracks, sizes[-1], 1) if cfg.bag_of_notes_weight > 0 else None

    def codes(self, z: Tensor) -> Tensor:
        """What the bottom decoder reads: one conductor embedding per bar [B, U, H]."""
        return self.conduct(z)

    def bag_logits(self, codes: Tensor) -> list[Tensor]:
        return self.bag(codes, self.num_bars)

    def conduct(self, z: Tensor) -> Tensor:
        """z [B, Z] -> bar embeddings c [B, U, H]."""
        if self.conductor_reads_z:
            inputs = z.unsqueeze(1).expand(-1, self.num_bars, -1)
        else:
            inputs = z.new_zeros(z.shape[0], self.num_bars, 1)
        c, _ = self.conductor(inputs, self.conductor_initial_state(z))
        return c

    def forward(self, prev, codes, sampling_probability=0.0, generator=None) -> list[Tensor]:
        """Teacher-forced logits from previous tokens and `codes(z)`."""
        return self.decode_bars(codes, prev, sampling_probability, generator)

    def decode_bars(
        self, c: Tensor, prev: Tensor, sampling_probability: float = 0.0, generator=None
    ) -> list[Tensor]:
        """Teacher-forced (or scheduled-sampling) bars from embeddings c [B, U, H] and previous
        tokens prev [B, T, K]; all bars of the batch run as one batch of B * U bars."""
        batch, bars, steps = c.shape[0], self.num_bars, self.steps_per_bar
        bar_prev = prev.reshape(batch * bars, steps, prev.shape[-1])
        bar_c = c.reshape(batch * bars, c.shape[-1])
        logits: list[Tensor | None] = [None] * prev.shape[-1]
        for group, core in zip(self.track_groups, self.bottom, strict=True):
            outs = core(bar_prev[..., group], bar_c, sampling_probability, generator)
            for k, out in zip(group, outs, strict=True):
                logits[k] = out.reshape(batch, bars * steps, out.shape[-1])
        return logits

    def sample(self, z: Tensor, temperature: float, generator) -> Tensor:
        return self.sample_bars(self.conduct(z), temperature, generator)

    def sample_bars(self, c: Tensor, temperature: float, generator=None) -> Tensor:
        """Free-running bars from embeddings c [B, U, H]: bar u starts from bar u-1's last
        token."""
        batch, num_tracks = c.shape[0], sum(len(g) for g in self.track_groups)
        last = torch.full((batch, num_tracks), START, device=c.device)
        bars = []
        for u in range(self.num_bars):
            bar = torch.empty(
                batch, self.steps_per_bar, num_tracks, dtype=torch.long, device=c.device
            )
            for group, core in zip(self.track_groups, self.bottom, strict=True):
                bar[..., group] = core.sample(
                    c[:, u], self.steps_per_bar, last[:, group], temperature, generator
                )
            bars.append(bar)
            last = bar[:, -1]
        return torch.cat(bars, dim=1)


# ---------------------------------------------------------------------------------------------
# 6. The VAE


class MusicVAE(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.tracks = cfg.tracks
        self.encoder = make_encoder(cfg, encoder_feature_size(self.tracks))
        self.to_mu = nn.Linear(self.encoder.output_size, cfg.z_size)
        self.to_sigma = nn.Linear(self.encoder.output_size, cfg.z_size)
        for dense in (self.to_mu, self.to_sigma):
            nn.init.normal_(dense.weight, std=0.001)
            nn.init.zeros_(dense.bias)
        decoder_cls = HierarchicalDecoder if cfg.decoder == "hierarchical" else FlatDecoder
        self.decoder = decoder_cls(cfg)
        if cfg.prior == "fitted":
            # N(loc, L L^T), set by training/latent_prior.py once training ends; a standard-prior
            # model has no such buffers, so its model.pt is what it was before the option.
            self.register_buffer("prior_loc", torch.zeros(cfg.z_size))
            self.register_buffer("prior_scale_tril", torch.eye(cfg.z_size))

    def check_tokens(self, x: Tensor) -> None:
        """Raise ValueError unless x is a [B, max_seq_len, K] integer tensor of valid tokens."""
        expected = (self.cfg.max_seq_len, len(self.tracks))
        if x.dim() != 3 or tuple(x.shape[1:]) != expected or x.dtype != torch.long:
            raise ValueError(
                f"expected a LongTensor [B, {expected[0]}, {expected[1]}], got "
                f"{x.dtype} {tuple(x.shape)}"
            )
        for k, spec in enumerate(self.tracks):
            lo, hi = int(x[..., k].min()), int(x[..., k].max())
            if lo < 0 or hi >= spec.num_classes:
                raise ValueError(
                    f"track {spec.column!r} has tokens in [{lo}, {hi}], outside "
                    f"[0, {spec.num_classes})"
                )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Tokens [B, T, K] -> posterior mean and standard deviation, each [B, z_size]."""
        h = self.encoder(encoder_features(x, self.tracks))
        return self.to_mu(h), F.softplus(self.to_sigma(h))

    def forward(
        self,
        x: Tensor,
        *,
        sample_z: bool = True,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> VAEOutput:
        """Teacher-forced reconstruction logits of x (scheduled sampling if probability > 0).

        sample_z=False decodes from z = mu (evaluation); otherwise z = mu + sigma * eps.
        """
        mu, sigma = self.encode(x)
        if sample_z:
            eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
            z = mu + sigma * eps
        else:
            z = mu
        prev = shift_right(x)
        if self.training and self.cfg.dec_input_dropout > 0:
            prev = drop_inputs(prev, self.cfg.dec_input_dropout, generator)
        codes = self.decoder.codes(z)  # once: the bag of notes reads the same codes
        logits = self.decoder(prev, codes, sampling_probability, generator)
        bag = self.decoder.bag_logits(codes) if self.decoder.bag is not None else None
        return VAEOutput(logits, mu, sigma, z, bag)

    @torch.no_grad()
    def decode(
        self, z: Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Free-running decode of z [B, z_size] -> tokens [B, T, K] (greedy at temperature 0)."""
        return self.decoder.sample(z, temperature, generator)

    def prior_codes(self, eps: Tensor) -> Tensor:
        """Codes of the model's prior from standard-normal draws eps [B, z_size]."""
        if self.cfg.prior == "standard":
            return eps
        loc, scale_tril = self.prior_loc.to(eps), self.prior_scale_tril.to(eps)
        return loc + eps @ scale_tril.T

    @torch.no_grad()
    def sample(
        self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """n sequences decoded from z drawn from the model's prior (cfg.prior)."""
        device = self.to_mu.weight.device
        eps = torch.randn(n, self.cfg.z_size, device=device, generator=generator)
        return self.decode(self.prior_codes(eps), temperature, generator)
