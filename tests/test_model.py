"""MusicVAE model: shapes for every config, the hierarchical decoder's independence structure,
the stepped LSTM path against nn.LSTM, decoding, and the loss terms."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from training.configs import _COERCIONS, CONFIGS, FIELD_TYPES, PAPER_CONFIGS, get_config
from training.model import (
    START,
    HierarchicalDecoder,
    MusicVAE,
    encoder_feature_size,
    encoder_features,
    shift_right,
)
from training.objective import (
    beta_at,
    kl_cost,
    kl_divergence,
    learning_rate_at,
    sampling_probability_at,
    vae_loss,
)

TINY = sorted(name for name in CONFIGS if name.endswith("_tiny"))
PAPER = PAPER_CONFIGS


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_tokens(cfg, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            torch.randint(0, t.num_classes, (batch, cfg.max_seq_len), generator=g)
            for t in cfg.tracks
        ],
        dim=-1,
    )


def tiny_model(name: str, seed: int = 0, **overrides) -> tuple[MusicVAE, object]:
    cfg = get_config(name, overrides)
    torch.manual_seed(seed)
    return MusicVAE(cfg).eval(), cfg


# ---------------------------------------------------------------------------------------------
# Configs


def lstm_params(input_size: int, sizes: list[int], directions: int = 1) -> int:
    total = 0
    for hidden in sizes:
        total += directions * (4 * hidden * (input_size + hidden) + 8 * hidden)
        input_size = directions * hidden
    return total


def expected_parameters(cfg) -> int:
    """Parameter count of the architecture the paper and magenta describe, from the config alone."""
    classes = [t.num_classes for t in cfg.tracks]
    enc = lstm_params(encoder_feature_size(cfg.tracks), cfg.enc_rnn_size, directions=2)
    for _ in cfg.enc_level_lengths[1:]:  # each higher level reads the embeddings of the one below
        enc += lstm_params(2 * cfg.enc_rnn_size[-1], cfg.enc_rnn_size, directions=2)
    latent = 2 * (2 * cfg.enc_rnn_size[-1] * cfg.z_size + cfg.z_size)  # mu and sigma

    def core(track_classes: list[int], cond: int) -> int:
        initial = cond * 2 * sum(cfg.dec_rnn_size) + 2 * sum(cfg.dec_rnn_size)
        rnn = lstm_params(sum(track_classes) + cond, cfg.dec_rnn_size)
        heads = sum((cfg.dec_rnn_size[-1] + 1) * c for c in track_classes)
        return initial + rnn + heads

    def bag(code: int, bars_per_code: int) -> int:  # the bag-of-notes heads, when trained
        if not cfg.bag_of_notes_weight:
            return 0
        return sum((code + 1) * bars_per_code * c for c in classes)

    if cfg.decoder == "flat":
        return enc + latent + core(classes, cfg.z_size) + bag(cfg.z_size, cfg.num_bars)
    conductor = cfg.conductor_sizes
    conductor_input = cfg.z_size if cfg.conductor_input == "z" else 1  # z, or magenta's zeros
    dec = (
        cfg.z_size * 2 * sum(conductor)
        + 2 * sum(conductor)
        + lstm_params(conductor_input, conductor)
    )
    groups = [[c] for c in classes] if cfg.split_tracks else [classes]
    bags = bag(conductor[-1], 1)
    return enc + latent + dec + sum(core(g, conductor[-1]) for g in groups) + bags


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_builds_with_the_described_architecture(name):
    cfg = get_config(name)
    with torch.device("meta"):  # paper sizes without allocating gigabytes
        model = MusicVAE(cfg)
    assert sum(p.numel() for p in model.parameters()) == expected_parameters(cfg)


def test_paper_configs_carry_magentas_hyperparameters():
    table = {  # magenta's configs: enc, z, dec, free_bits, max_beta, batch
        "cat-mel_2bar_small": ([512], 256, [256, 256], 0, 0.2, 512),
        "cat-mel_2bar_big": ([2048], 512, [2048] * 3, 0, 0.5, 512),
        "flat-mel_16bar": ([2048, 2048], 512, [2048] * 3, 256, 0.2, 512),
        "hierdec-mel_16bar": ([2048, 2048], 512, [1024, 1024], 256, 0.2, 512),
        "cat-drums_2bar_small": ([512], 256, [256, 256], 48, 0.2, 512),
        "flat-trio_16bar": ([2048, 2048], 512, [2048] * 3, 0, 1.0, 256),
        "hierdec-trio_16bar": ([2048, 2048], 512, [1024, 1024], 256, 0.2, 256),
    }
    for name, (enc, z, dec, free_bits, max_beta, batch) in table.items():
        cfg = get_config(name)
        got = (cfg.enc_rnn_size, cfg.z_size, cfg.dec_rnn_size, cfg.free_bits, cfg.max_beta)
        assert got == (enc, z, dec, free_bits, max_beta), name
        assert cfg.batch_size == batch
        assert (cfg.learning_rate, cfg.decay_rate, cfg.min_learning_rate) == (1e-3, 0.9999, 1e-5)
        assert cfg.grad_clip == 1.0
    for name in ("cat-mel_2bar_small", "cat-mel_2bar_big"):
        cfg = get_config(name)
        assert (cfg.beta_rate, cfg.transpose_range) == (0.99999, 5)
        assert (cfg.sampling_schedule, cfg.sampling_rate) == ("inverse_sigmoid", 1000)
    # The CPU 2-bar variants depart from it: teacher forcing only (README's differences table).
    for name in ("cat-mel_2bar_cpu", "cat-drums_2bar_cpu"):
        cfg = get_config(name)
        assert (cfg.sampling_schedule, cfg.sampling_rate) == ("constant", 0.0), name
        assert sampling_probability_at(cfg, 10_000) == 0.0
    assert get_config("hierdec-mel_16bar").conductor_sizes == [1024, 1024]
    assert get_config("hierdec-mel_16bar").max_seq_len == 256


def test_get_config_overrides_and_rejects_bad_keys():
    cfg = get_config("cat-mel_2bar_cpu", {"z_size": 64, "dec_rnn_size": [32, 48], "free_bits": 3})
    assert (cfg.z_size, cfg.dec_rnn_size, cfg.free_bits) == (64, [32, 48], 3.0)
    assert cfg.to_dict()["dec_rnn_size"] == [32, 48]
    with pytest.raises(ValueError, match="unknown config keys.*zsize"):
        get_config("cat-mel_2bar_cpu", {"zsize": 3})
    with pytest.raises(ValueError, match="z_size"):
        get_config("cat-mel_2bar_cpu", {"z_size": "big"})
    with pytest.raises(ValueError, match="unknown config"):
        get_config("no-such-model")
    with pytest.raises(ValueError, match="inverse_sigmoid"):
        get_config("cat-mel_2bar_small", {"sampling_rate": 0.5})
    with pytest.raises(ValueError, match="constant"):
        get_config("cat-mel_2bar_cpu", {"sampling_rate": 1.5})


def test_config_coercion_follows_the_field_types():
    cfg = get_config(
        "cat-mel_2bar_cpu",
        {"enc_rnn_size": 96, "z_size": 32.0, "learning_rate": "0.002", "keep_best": False},
    )
    assert (cfg.enc_rnn_size, cfg.z_size, cfg.learning_rate, cfg.keep_best) == (
        [96],
        32,
        0.002,
        False,
    )
    assert type(cfg.z_size) is int and type(cfg.learning_rate) is float
    for bad, kind in [
        ({"z_size": 2.5}, "expected int"),
        ({"z_size": True}, "expected int"),
        ({"keep_best": "yes"}, "expected bool"),
        ({"dec_rnn_size": [64, "wide"]}, "expected list\\[int\\]"),
    ]:
        with pytest.raises(ValueError, match=kind):
            get_config("cat-mel_2bar_cpu", bad)
    # Every field's type has a coercion, so a new field cannot slip through unchecked.
    assert set(FIELD_TYPES.values()) <= set(_COERCIONS)


# ---------------------------------------------------------------------------------------------
# Shapes


@pytest.mark.parametrize("name", TINY)
def test_forward_decode_shapes_for_every_config(name):
    model, cfg = tiny_model(name)
    x = random_tokens(cfg, batch=3)
    out = model(x, generator=torch.Generator().manual_seed(1))
    assert [tuple(lg.shape) for lg in out.logits] == [
        (3, cfg.max_seq_len, t.num_classes) for t in cfg.tracks
    ]
    for t in (out.mu, out.sigma, out.z):
        assert t.shape == (3, cfg.z_size)
    assert (out.sigma > 0).all()
    greedy = model.decode(out.mu)
    assert greedy.shape == x.shape and greedy.dtype == torch.long
    for k, spec in enumerate(cfg.tracks):
        assert int(greedy[..., k].min()) >= 0 and int(greedy[..., k].max()) < spec.num_classes
    # Greedy decoding is deterministic; sampling follows its generator.
    assert torch.equal(greedy, model.decode(out.mu))
    a = model.decode(out.mu, temperature=1.0, generator=torch.Generator().manual_seed(5))
    b = model.decode(out.mu, temperature=1.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert model.sample(2, generator=torch.Generator().manual_seed(0)).shape == (2, *x.shape[1:])


def test_hierarchical_encoder_encodes_each_bar_alone_then_the_bars():
    model, cfg = tiny_model("hierdec-mel_16bar_tiny", enc_level_lengths=[16, 16])
    features = encoder_feature_size(cfg.tracks)
    levels = model.encoder.levels
    assert len(levels) == 2 and model.encoder.output_size == 2 * cfg.enc_rnn_size[-1]
    assert sum(p.numel() for p in model.encoder.parameters()) == lstm_params(
        features, cfg.enc_rnn_size, 2
    ) + lstm_params(2 * cfg.enc_rnn_size[-1], cfg.enc_rnn_size, 2)
    x = random_tokens(cfg, 3)
    changed = x.clone()
    changed[:, 5 * 16 : 6 * 16] = random_tokens(cfg, 3, seed=1)[:, :16]
    with torch.no_grad():
        bars = [
            levels[0](encoder_features(t, cfg.tracks).reshape(48, 16, -1)) for t in (x, changed)
        ]
        mu, sigma = model.encode(x)
        mu_changed, _ = model.encode(changed)
    # Bar 5's embedding moves, and no other bar's: each bar is encoded on its own.
    moved = (bars[0] != bars[1]).any(dim=-1).reshape(3, 16)
    assert moved[:, 5].all() and not moved[:, [b for b in range(16) if b != 5]].any()
    assert mu.shape == sigma.shape == (3, cfg.z_size) and not torch.equal(mu, mu_changed)
    with pytest.raises(ValueError, match="multiply to max_seq_len 256"):
        get_config("hierdec-mel_16bar_tiny", {"enc_level_lengths": [16, 8]})


def test_bad_tokens_get_a_clear_error():
    model, cfg = tiny_model("cat-mel_2bar_tiny")
    with pytest.raises(ValueError, match=r"\[B, 32, 1\]"):
        model.check_tokens(torch.zeros(2, 16, 1, dtype=torch.long))
    x = random_tokens(cfg, 2)
    x[0, 0, 0] = 90
    with pytest.raises(ValueError, match="outside"):
        model.check_tokens(x)


@pytest.mark.parametrize("name", TINY)
def test_greedy_decode_agrees_with_teacher_forcing_on_its_own_output(name):
    """Feeding the decoder its own greedy output teacher-forced reproduces that output: the
    stepped path and the nn.LSTM path compute the same function, and for the hierarchical
    decoder each bar starts from the previous bar's last token in both."""
    model, cfg = tiny_model(name)
    z = torch.randn(4, cfg.z_size, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        tokens = model.decode(z)
        logits = model.decoder(shift_right(tokens), model.decoder.codes(z))
    argmax = torch.stack([lg.argmax(-1) for lg in logits], dim=-1)
    assert torch.equal(argmax, tokens)


@pytest.mark.parametrize("name", ["cat-mel_2bar_tiny", "hierdec-trio_16bar_tiny"])
def test_stepped_lstm_equals_nn_lstm(name):
    model, cfg = tiny_model(name, dec_rnn_size=[24, 40])
    x = random_tokens(cfg, 3)
    core = model.decoder.core if cfg.decoder == "flat" else model.decoder.bottom[0]
    prev = shift_right(x)[..., : len(core.tracks)][:, :16]
    cond = torch.randn(3, core.initial_state.dense.in_features)
    with torch.no_grad():
        fused = core(prev, cond)
        stepped = core._scheduled_sampling(prev, cond, core.initial_state(cond), 0.0, None)
    for a, b in zip(fused, stepped, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Hierarchical decoder structure


def hier_setup(name="hierdec-mel_16bar_tiny"):
    model, cfg = tiny_model(name)
    x = random_tokens(cfg, 2, seed=3)
    decoder = model.decoder
    assert isinstance(decoder, HierarchicalDecoder)
    z = torch.randn(2, cfg.z_size)
    with torch.no_grad():
        c = decoder.conduct(z)
    return model, cfg, decoder, x, c


def bar_logits(logits: torch.Tensor, bar: int) -> torch.Tensor:
    return logits[:, bar * 16 : (bar + 1) * 16]


def test_changing_one_bar_embedding_changes_only_that_bar_when_teacher_forced():
    model, cfg, decoder, x, c = hier_setup()
    changed = c.clone()
    changed[:, 3] += 0.5
    with torch.no_grad():
        base = decoder.decode_bars(c, shift_right(x))[0]
        other = decoder.decode_bars(changed, shift_right(x))[0]
    for bar in range(cfg.num_bars):
        same = torch.equal(bar_logits(base, bar), bar_logits(other, bar))
        assert same == (bar != 3), bar


def test_changing_one_bar_embedding_changes_no_earlier_bar_when_decoding():
    model, cfg, decoder, x, c = hier_setup()
    changed = c.clone()
    changed[:, 3] = torch.randn_like(changed[:, 3]) * 5
    with torch.no_grad():
        base = decoder.sample_bars(c, temperature=0.0)
        other = decoder.sample_bars(changed, temperature=0.0)
    assert torch.equal(base[:, : 3 * 16], other[:, : 3 * 16])
    assert not torch.equal(base[:, 3 * 16 :], other[:, 3 * 16 :])


def test_bottom_state_is_reset_at_every_bar():
    """Bar 2 sees bar 1 only through its last token: changing the other tokens of bar 1 leaves
    bars 2.. unchanged, changing bar 1's last token changes bar 2."""
    model, cfg, decoder, x, c = hier_setup()
    inner = x.clone()
    inner[:, 16:31] = (inner[:, 16:31] + 7) % 90
    last = x.clone()
    last[:, 31] = (last[:, 31] + 7) % 90
    with torch.no_grad():
        base = decoder.decode_bars(c, shift_right(x))[0]
        inner_changed = decoder.decode_bars(c, shift_right(inner))[0]
        last_changed = decoder.decode_bars(c, shift_right(last))[0]
    assert not torch.equal(bar_logits(base, 1), bar_logits(inner_changed, 1))
    assert torch.equal(base[:, 32:], inner_changed[:, 32:])
    assert not torch.equal(bar_logits(base, 2), bar_logits(last_changed, 2))
    assert torch.equal(base[:, 48:], last_changed[:, 48:])


def test_split_trio_decoders_read_only_their_own_track():
    for name, independent in (("hierdec-trio_16bar_tiny", True), ("flat-trio_16bar_tiny", False)):
        model, cfg = tiny_model(name)
        x = random_tokens(cfg, 2)
        other = x.clone()
        other[..., 1] = (other[..., 1] + 5) % 90  # change the bass only
        z = torch.randn(2, cfg.z_size)
        with torch.no_grad():
            base = model.decoder(shift_right(x), model.decoder.codes(z))
            changed = model.decoder(shift_right(other), model.decoder.codes(z))
        assert torch.equal(base[0], changed[0]) == independent, name  # melody logits
        assert not torch.equal(base[1], changed[1])


# ---------------------------------------------------------------------------------------------
# Scheduled sampling


def test_scheduled_sampling_probability_one_ignores_the_true_inputs():
    model, cfg = tiny_model("cat-mel_2bar_tiny")
    x = random_tokens(cfg, 3)
    y = x.clone()
    y[:, 1:] = (y[:, 1:] + 11) % 90
    z = torch.randn(3, cfg.z_size)

    def logits(tokens, probability):
        g = torch.Generator().manual_seed(9)
        with torch.no_grad():
            return model.decoder(shift_right(tokens), model.decoder.codes(z), probability, g)[0]

    # Inputs 1.. come from the targets 0..T-2; with probability 1 only target 0 is read.
    assert torch.equal(logits(x, 1.0), logits(y, 1.0))
    assert not torch.equal(logits(x, 0.0), logits(y, 0.0))
    assert not torch.equal(logits(x, 0.5), logits(y, 0.5))


def test_decoder_input_dropout_blanks_inputs_in_training_only():
    from training.model import START, drop_inputs

    prev = torch.randint(0, 90, (64, 32, 1))
    dropped = drop_inputs(prev, 0.5, torch.Generator().manual_seed(0))
    blank = dropped == START
    assert 0.4 < blank.float().mean() < 0.6
    assert torch.equal(dropped[~blank], prev[~blank])
    model, cfg = tiny_model("cat-mel_2bar_tiny", dec_input_dropout=0.5)
    x = random_tokens(cfg, 4)
    model.eval()  # evaluation and decoding read every input
    with torch.no_grad():
        a = model(x, sample_z=False).logits[0]
        assert torch.equal(a, model(x, sample_z=False).logits[0])
        model.train()
        b = model(x, sample_z=False, generator=torch.Generator().manual_seed(1)).logits[0]
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="dec_input_dropout"):
        get_config("cat-mel_2bar_tiny", {"dec_input_dropout": 1.0})


@pytest.mark.parametrize(
    "name", ["flat-mel_16bar_tiny", "hierdec-mel_16bar_tiny", "hierdec-trio_16bar_tiny"]
)
def test_bag_of_notes_scores_each_bars_tokens_without_their_order(name):
    from training.objective import bag_of_notes_nll

    model, cfg = tiny_model(name, bag_of_notes_weight=0.5)
    x = random_tokens(cfg, 3)
    out = model(x, sample_z=False)
    assert [tuple(b.shape) for b in out.bag_logits] == [
        (3, cfg.num_bars, t.num_classes) for t in cfg.tracks
    ]
    expected = torch.zeros(3)
    for k, logits in enumerate(out.bag_logits):
        log_p = torch.log_softmax(logits.float(), dim=-1)
        for b in range(3):
            for t in range(cfg.max_seq_len):
                expected[b] -= log_p[b, t // cfg.steps_per_bar, x[b, t, k]]
    torch.testing.assert_close(bag_of_notes_nll(out.bag_logits, x), expected)
    # Reversing the steps within every bar leaves the bag loss alone.
    bars = x.reshape(3, cfg.num_bars, cfg.steps_per_bar, -1).flip(2).reshape(x.shape)
    torch.testing.assert_close(bag_of_notes_nll(out.bag_logits, bars), expected)
    terms = vae_loss(out, x, cfg, step=0)
    torch.testing.assert_close(terms.bag_loss, expected.mean())
    torch.testing.assert_close(
        terms.loss, terms.r_loss + terms.beta * terms.kl_cost + 0.5 * terms.bag_loss
    )
    assert tiny_model(name)[0](x).bag_logits is None  # off by default: no head, no term


def test_bag_of_notes_loss_trains_the_encoder_to_carry_each_bars_notes():
    from training.objective import bag_of_notes_nll

    model, cfg = tiny_model("hierdec-mel_16bar_tiny", bag_of_notes_weight=1.0)
    x = random_tokens(cfg, 8)
    model.train()

    def bag_loss(z_order=None) -> float:
        with torch.no_grad():
            mu, _ = model.encode(x)
            z = mu if z_order is None else mu[z_order]
            codes = model.decoder.codes(z)
            return float(bag_of_notes_nll(model.decoder.bag_logits(codes), x).mean())

    first = bag_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        bag_of_notes_nll(model(x, sample_z=False).bag_logits, x).mean().backward()
        optimizer.step()
    # Random tokens: only a z that tells the windows' bars apart fits their bags, so each
    # window's own z must beat another window's.
    assert bag_loss() < 0.85 * first
    assert bag_loss() < 0.9 * bag_loss(z_order=torch.roll(torch.arange(8), 1))
    with pytest.raises(ValueError, match="bag_of_notes_weight"):
        get_config("hierdec-mel_16bar_tiny", {"bag_of_notes_weight": -1.0})


def test_conductor_input_z_reaches_every_bar_without_the_initial_state():
    z = torch.randn(2, get_config("hierdec-mel_16bar_tiny").z_size)
    codes = {}
    for conductor_input in ("zeros", "z"):
        model, cfg = tiny_model("hierdec-mel_16bar_tiny", conductor_input=conductor_input)
        with torch.no_grad():  # cut z's path through the conductor's initial state
            for p in model.decoder.conductor_initial_state.parameters():
                p.zero_()
        codes[conductor_input] = model.decoder.conduct(z)
        assert model.decode(z).shape == (2, cfg.max_seq_len, 1)
    # magenta's zero inputs: nothing of z is left; z as input: every bar's code still reads it.
    torch.testing.assert_close(codes["zeros"][0], codes["zeros"][1])
    assert (codes["z"][0] - codes["z"][1]).abs().amin(dim=-1).gt(0).all()
    for name, value in (("hierdec-mel_16bar_tiny", "bars"), ("flat-mel_16bar_tiny", "z")):
        with pytest.raises(ValueError, match="conductor_input"):
            get_config(name, {"conductor_input": value})


# ---------------------------------------------------------------------------------------------
# Loss and schedules


def test_reconstruction_loss_sums_over_time_and_averages_over_batch():
    model, cfg = tiny_model("cat-mel_2bar_tiny")
    x = random_tokens(cfg, 4)
    out = model(x, sample_z=False)
    terms = vae_loss(out, x, cfg, step=0)
    per_token = torch.nn.functional.cross_entropy(out.logits[0].reshape(-1, 90), x.reshape(-1))
    torch.testing.assert_close(terms.r_loss, per_token * cfg.max_seq_len)
    assert terms.beta == 0.0  # (1 - rate**0) * max_beta
    torch.testing.assert_close(terms.loss, terms.r_loss)


def test_free_bits_zero_cost_and_gradient_below_threshold():
    mu = torch.full((2, 8), 0.3, requires_grad=True)
    sigma = torch.full((2, 8), 0.9, requires_grad=True)
    kl = kl_divergence(mu, sigma)
    expected = 8 * (0.5 * (0.09 + 0.81 - 1) - math.log(0.9))
    torch.testing.assert_close(kl, torch.full((2,), expected))
    free_bits = expected / math.log(2) + 0.1  # threshold just above the KL
    cost = kl_cost(kl, free_bits)
    assert torch.equal(cost, torch.zeros(2))
    cost.sum().backward()
    assert torch.equal(mu.grad, torch.zeros_like(mu)) and torch.equal(
        sigma.grad, torch.zeros_like(sigma)
    )
    mu.grad = sigma.grad = None
    cost = kl_cost(kl_divergence(mu, sigma), free_bits - 0.2)  # just below: cost and gradient
    torch.testing.assert_close(cost, torch.full((2,), 0.1 * math.log(2)))
    cost.sum().backward()
    assert (mu.grad > 0).all()


def test_schedules_follow_magenta():
    cfg = get_config("cat-mel_2bar_small")
    assert beta_at(cfg, 0) == 0.0
    assert beta_at(cfg, 100_000) == pytest.approx((1 - 0.99999**100_000) * 0.2)
    assert beta_at(get_config("flat-mel_16bar"), 1) == 0.2  # beta_rate 0: full beta at once
    assert learning_rate_at(cfg, 0) == pytest.approx(1e-3)
    assert learning_rate_at(cfg, 10_000) == pytest.approx(0.99e-3 * 0.9999**10_000 + 1e-5)
    assert learning_rate_at(cfg, 10**7) == pytest.approx(1e-5)
    warm = dataclasses.replace(cfg, warmup_steps=100)
    assert learning_rate_at(warm, 0) == pytest.approx(learning_rate_at(cfg, 0) / 100)
    assert learning_rate_at(warm, 49) == pytest.approx(learning_rate_at(cfg, 49) / 2)
    assert learning_rate_at(warm, 99) == learning_rate_at(cfg, 99)
    assert learning_rate_at(warm, 5000) == learning_rate_at(cfg, 5000)
    assert sampling_probability_at(cfg, 0) == pytest.approx(1 - 1000 / 1001)
    assert sampling_probability_at(cfg, 5000) == pytest.approx(1 - 1000 / (1000 + math.exp(5)))
    assert sampling_probability_at(cfg, 10**7) == 1.0
    assert sampling_probability_at(get_config("hierdec-mel_16bar"), 10**6) == 0.0


def test_start_token_is_a_zero_input():
    """START (-1) enters the decoder as an all-zero one-hot, like magenta's zero start input."""
    from training.model import previous_token_one_hot

    cfg = get_config("flat-trio_16bar_tiny")
    prev = torch.tensor([[[START, START, START], [3, 4, 5]]])
    one_hot = previous_token_one_hot(prev, cfg.tracks)
    assert one_hot.shape == (1, 2, 90 + 90 + 512)
    assert one_hot[0, 0].sum() == 0
    assert one_hot[0, 1].nonzero().flatten().tolist() == [3, 90 + 4, 180 + 5]
