"""Training: learning on real folk melodies, bit-for-bit resume, the NaN guard, the time budget,
MLflow logging into a real store, the command line, and DDP with two gloo processes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from mlflow import MlflowClient

from training import generate
from training.checkpoint import (
    config_mismatch,
    load_checkpoint,
    load_model,
    read_model_file,
    training_run_id,
)
from training.configs import get_config
from training.data import load_split
from training.distributed import Runtime
from training.model import MusicVAE
from training.precision import cpu_has_native_bf16, use_bf16
from training.train import evaluate, main, train, train_step

REPO = Path(__file__).resolve().parents[1]
CPU = Runtime(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dataset(tiny_datasets, name: str) -> str:
    return os.path.join(tiny_datasets, name)


def quiet_train(cfg, out_dir, dataset_dir, **kw):
    return train(
        cfg,
        out_dir=out_dir,
        dataset_dir=dataset_dir,
        track=False,
        progress=False,
        device="cpu",
        **kw,
    )


# ---------------------------------------------------------------------------------------------
# Learning


@pytest.mark.slow  # ~25 s alone on 2 cores, ~60 s when they are shared
@pytest.mark.parametrize("enc_level_lengths", [[], [16, 2]], ids=["flat_encoder", "bar_encoder"])
def test_tiny_model_learns_to_reconstruct_real_melodies(tiny_datasets, tmp_path, enc_level_lengths):
    """32 real 2-bar folk windows: teacher-forced reconstruction from chance to >= 0.95, with
    either encoder (one LSTM over the window, or each bar and then the bars)."""
    source = pq.read_table(
        os.path.join(dataset(tiny_datasets, "mel_2bar"), "train-00000-of-00001.parquet")
    )
    assert source.num_rows >= 32
    data_dir = tmp_path / "mel_2bar"
    data_dir.mkdir()
    pq.write_table(source.slice(0, 32), data_dir / "train-00000-of-00001.parquet")
    cfg = get_config(
        "cat-mel_2bar_tiny",
        {
            "enc_rnn_size": [96],
            "enc_level_lengths": enc_level_lengths,
            "dec_rnn_size": [96],
            "z_size": 32,
            "batch_size": 32,
            "learning_rate": 2e-2,
            "sampling_schedule": "constant",  # teacher forcing: the nn.LSTM path, fast
            "sampling_rate": 0.0,
            "transpose_range": 0,
            "max_steps": 500,
            "log_every": 50,
            "checkpoint_every": 1000,
        },
    )
    windows = load_split(str(data_dir), "train", cfg.tracks, cfg.num_bars)
    torch.manual_seed(cfg.seed)
    before = evaluate(MusicVAE(cfg), windows, cfg, 0, torch.device("cpu"))
    assert before["eval_accuracy"] < 0.1  # chance is 1/90

    quiet_train(cfg, tmp_path / "model", data_dir)
    model, loaded_cfg = load_model(tmp_path / "model" / "model.pt")
    assert loaded_cfg == cfg
    after = evaluate(model, windows, cfg, cfg.max_steps, torch.device("cpu"))
    assert after["eval_accuracy"] >= 0.95
    assert after["eval_r_loss"] < before["eval_r_loss"] / 10
    # The most frequent class alone ("no event") is far from it.
    assert np.mean(windows == 0) < 0.8


# ---------------------------------------------------------------------------------------------
# Resume


@pytest.mark.parametrize(
    ("name", "data", "overrides"),
    [
        # scheduled sampling and transposition: every source of randomness in play
        (
            "cat-mel_2bar_tiny",
            "mel_2bar",
            {"sampling_schedule": "constant", "sampling_rate": 0.3, "dec_input_dropout": 0.3},
        ),
        ("hierdec-mel_16bar_tiny", "mel_16bar", {}),  # 6 batches per epoch: resumes across one
    ],
)
def test_resumed_run_equals_uninterrupted_run_exactly(
    tiny_datasets, tmp_path, name, data, overrides
):
    folder = dataset(tiny_datasets, data)
    n, k = 9, 4
    cfg = get_config(name, {**overrides, "max_steps": n, "checkpoint_every": 3})
    quiet_train(cfg, tmp_path / "straight", folder)
    first = get_config(name, {**overrides, "max_steps": k, "checkpoint_every": 3})
    quiet_train(first, tmp_path / "resumed", folder)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")["step"] == k
    quiet_train(cfg, tmp_path / "resumed", folder, resume=True)

    straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert resumed["step"] == straight["step"] == n
    assert resumed["data_position"] == straight["data_position"]
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    for key, value in straight["optimizer"]["state"].items():
        for moment in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(value[moment], resumed["optimizer"]["state"][key][moment])
    # The learning curve spans both parts (plus the checkpoint where the first part stopped).
    curve = (tmp_path / "straight" / "eval_curve.csv").read_text().splitlines()
    both = (tmp_path / "resumed" / "eval_curve.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in both[1:]] == ["3", "4", "6", "9"]
    assert curve == [row for row in both if not row.startswith("4,")]
    # A changed model is refused instead of loaded into the wrong shapes.
    with pytest.raises(ValueError, match="z_size"):
        quiet_train(get_config(name, {"z_size": 8}), tmp_path / "resumed", folder, resume=True)


def test_a_run_resumed_at_a_checkpoint_step_does_not_score_that_step_twice(tiny_datasets, tmp_path):
    folder = dataset(tiny_datasets, "mel_2bar")
    cfg = get_config("cat-mel_2bar_tiny", {"max_steps": 9, "checkpoint_every": 3})
    quiet_train(cfg, tmp_path / "straight", folder)
    quiet_train(
        get_config("cat-mel_2bar_tiny", {"max_steps": 6, "checkpoint_every": 3}),
        tmp_path / "resumed",
        folder,
    )
    quiet_train(cfg, tmp_path / "resumed", folder, resume=True)

    straight = (tmp_path / "straight" / "eval_curve.csv").read_text().splitlines()
    resumed = (tmp_path / "resumed" / "eval_curve.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in resumed[1:]] == ["3", "6", "9"]
    assert resumed == straight
    last = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for key, value in load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")[
        "state_dict"
    ].items():
        assert torch.equal(value, last["state_dict"][key]), key


def test_time_budget_stops_the_run_and_writes_outputs(tiny_datasets, tmp_path):
    cfg = get_config("cat-mel_2bar_tiny", {"max_steps": 10_000, "max_minutes": 0.0001})
    metrics = quiet_train(cfg, tmp_path, dataset(tiny_datasets, "mel_2bar"))
    assert 1 <= metrics["step"] < 10_000
    saved = json.loads((tmp_path / "train_metrics.json").read_text())
    assert saved["step"] == metrics["step"]
    assert read_model_file(tmp_path / "model.pt")["step"] == metrics["model_step"]
    # The budget is the run's: resuming a run that spent it trains no further.
    again = quiet_train(cfg, tmp_path, dataset(tiny_datasets, "mel_2bar"), resume=True)
    assert again["step"] == metrics["step"]
    assert again["train_loss"] == metrics["train_loss"]


def test_dvc_rerun_retrains_instead_of_resuming_a_finished_run(tiny_datasets, tmp_path, capsys):
    # `dvc repro` reruns `train --resume` when code or data changed; the finished checkpoint it
    # finds must not stand in for a new model, while a run whose budget grew still resumes.
    folder = dataset(tiny_datasets, "mel_2bar")
    cfg = get_config("cat-mel_2bar_tiny", {"max_steps": 6, "checkpoint_every": 3})
    quiet_train(cfg, tmp_path, folder)
    first = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    capsys.readouterr()

    rerun = quiet_train(cfg, tmp_path, folder, resume=True, restart_on_change=True)
    assert "holds a finished run (step 6): starting from step 0" in capsys.readouterr().err
    assert rerun["step"] == 6
    again = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    # Trained anew from the same seed: the same weights, reached by 6 new steps.
    for key, value in first["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key

    longer = get_config("cat-mel_2bar_tiny", {"max_steps": 9, "checkpoint_every": 3})
    grown = quiet_train(longer, tmp_path, folder, resume=True, restart_on_change=True)
    assert "resuming cat-mel_2bar_tiny from step 6" in capsys.readouterr().err
    assert grown["step"] == 9


# ---------------------------------------------------------------------------------------------
# The weights handed over: the checkpoint that scored best on the eval split


def test_model_file_holds_the_best_checkpoint_when_a_run_degrades(tiny_datasets, tmp_path):
    """A learning rate that grows tenfold per step (1e-3, 1e-2, ..., 100) improves the model
    until step 2 and wrecks it after: model.pt keeps step 2's weights, and says so."""
    folder = dataset(tiny_datasets, "mel_2bar")
    degrading = {"max_steps": 6, "checkpoint_every": 2, "decay_rate": 10.0}
    cfg = get_config("cat-mel_2bar_tiny", degrading)
    metrics = quiet_train(cfg, tmp_path / "best", folder)
    assert (metrics["step"], metrics["model_step"]) == (6, 2)
    assert metrics["last_step_eval_loss"] > 2 * metrics["eval_loss"]
    saved = read_model_file(tmp_path / "best" / "model.pt")
    assert saved["step"] == 2
    assert load_checkpoint(tmp_path / "best" / "checkpoints" / "last.pt")["best"]["step"] == 2
    model, _ = load_model(tmp_path / "best" / "model.pt")
    eval_data = load_split(folder, "eval", cfg.tracks, cfg.num_bars, limit=cfg.eval_examples)
    rescored = evaluate(model, eval_data, cfg, 6, torch.device("cpu"))
    assert rescored["eval_loss"] == pytest.approx(metrics["eval_loss"], rel=1e-5)

    last = quiet_train(
        get_config("cat-mel_2bar_tiny", {**degrading, "keep_best": False}),
        tmp_path / "last",
        folder,
    )
    assert last["model_step"] == read_model_file(tmp_path / "last" / "model.pt")["step"] == 6
    assert last["eval_loss"] == last["last_step_eval_loss"] == metrics["last_step_eval_loss"]
    # keep_best may change on resume: switched off, the best.pt of the first part is not used.
    quiet_train(
        get_config("cat-mel_2bar_tiny", {**degrading, "max_steps": 4}), tmp_path / "r", folder
    )
    resumed = quiet_train(
        get_config("cat-mel_2bar_tiny", {**degrading, "keep_best": False}),
        tmp_path / "r",
        folder,
        resume=True,
    )
    assert resumed["model_step"] == 6


def test_a_fitted_prior_draws_codes_where_the_training_windows_codes_lie(tiny_datasets, tmp_path):
    """`prior: fitted`: model.pt carries one Gaussian matched to the aggregate posterior of the
    training windows under the kept weights, and every sampler draws from it."""
    folder = dataset(tiny_datasets, "mel_2bar")
    settings = {"max_steps": 12, "checkpoint_every": 6, "free_bits": 0, "max_beta": 0.02}
    cfg = get_config("cat-mel_2bar_tiny", {**settings, "prior": "fitted"})
    metrics = quiet_train(cfg, tmp_path / "fitted", folder)
    model, _ = load_model(tmp_path / "fitted" / "model.pt")
    windows = load_split(folder, "train", cfg.tracks, cfg.num_bars, limit=cfg.prior_fit_examples)
    mu, sigma = generate.encode_posterior(model, windows)
    variance = mu.var(0) + (sigma**2).mean(0)
    z = generate.sample_prior(model, 20_000, seed=3).double()
    assert torch.allclose(z.mean(0), mu.mean(0).double(), atol=0.03)
    assert torch.allclose(z.var(0), variance.double(), rtol=0.06)
    assert (variance - 1).abs().min() > 0.2  # so N(0, I) would not match
    assert metrics["prior_sd_median"] == pytest.approx(float(variance.sqrt().median()), rel=1e-3)
    assert generate.sample(model, 2, temperature=0.5, seed=0)[1].shape == (2, 32, 1)
    # The standard prior draws N(0, I) exactly, and its model.pt holds no prior at all.
    quiet_train(get_config("cat-mel_2bar_tiny", settings), tmp_path / "standard", folder)
    standard, _ = load_model(tmp_path / "standard" / "model.pt")
    assert "prior_loc" not in read_model_file(tmp_path / "standard" / "model.pt")["state_dict"]
    eps = torch.randn(5, cfg.z_size, generator=torch.Generator().manual_seed(3))
    assert torch.equal(generate.sample_prior(standard, 5, seed=3), eps)
    for bad in ({"prior": "uniform"}, {"prior_fit_examples": 1}):
        with pytest.raises(ValueError, match="prior"):
            get_config("cat-mel_2bar_tiny", bad)


def test_a_fitted_prior_keeps_the_codes_correlations(tiny_datasets):
    """Codes whose dimensions move together are drawn moving together, off the origin."""
    from training.latent_prior import fit_prior

    cfg = get_config("cat-mel_2bar_tiny", {"prior": "fitted"})
    torch.manual_seed(0)
    model = MusicVAE(cfg)
    with torch.no_grad():  # dimension 1 copies dimension 0, and the codes move off the origin
        model.to_mu.weight.normal_(0.0, 3.0)
        model.to_mu.weight[1] = model.to_mu.weight[0]
        model.to_mu.bias.fill_(2.0)
    folder = dataset(tiny_datasets, "mel_2bar")
    windows = load_split(folder, "train", cfg.tracks, cfg.num_bars, limit=512)
    fit_prior(model, windows)
    mu, sigma = generate.encode_posterior(model, windows)
    z = generate.sample_prior(model, 20_000, seed=0).double()
    codes = torch.cov(mu[:, :2].T.double())
    assert codes[0, 1] > 0.1
    assert float(torch.cov(z[:, :2].T)[0, 1]) == pytest.approx(float(codes[0, 1]), rel=0.06)
    assert torch.allclose(z.mean(0), mu.mean(0).double(), atol=0.1)
    assert z.mean(0).abs().median() > 1.0
    with pytest.raises(ValueError, match="not 'fitted'"):
        fit_prior(MusicVAE(get_config("cat-mel_2bar_tiny")), windows)


# ---------------------------------------------------------------------------------------------
# NaN guard


def test_a_poisoned_step_is_skipped_and_training_goes_on():
    cfg = get_config("cat-mel_2bar_tiny")
    torch.manual_seed(0)
    model = MusicVAE(cfg)
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.randint(0, 90, (4, 32, 1))
    generator = torch.Generator()

    def poison(module, inputs, output):
        return [torch.full_like(logits, float("nan")) for logits in output]

    before = {k: v.clone() for k, v in model.state_dict().items()}
    hook = model.decoder.register_forward_hook(poison)
    result = train_step(model, model, optimizer, x, cfg, 0, generator, CPU)
    hook.remove()
    assert result.skipped and not np.isfinite(result.metrics["loss"])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not optimizer.state  # Adam's moments untouched

    result = train_step(model, model, optimizer, x, cfg, 1, generator, CPU)
    assert not result.skipped and np.isfinite(result.metrics["loss"])
    assert not all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_gradient_far_above_the_running_mean_skips_the_step():
    from training.train import _skip_threshold

    cfg = get_config("cat-mel_2bar_tiny", {"grad_skip_factor": 10.0})
    assert _skip_threshold(cfg, 50, 2.0) == float("inf")  # warm-up
    assert _skip_threshold(cfg, 100, 2.0) == 20.0
    assert _skip_threshold(get_config("cat-mel_2bar_tiny"), 500, 2.0) == float("inf")  # off
    torch.manual_seed(0)
    model = MusicVAE(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randint(0, 90, (cfg.batch_size, cfg.max_seq_len, 1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.Generator()
    result = train_step(model, model, optimizer, x, cfg, 200, generator, CPU, skip_above=1e-6)
    assert result.skipped and result.metrics["grad_norm"] > 1e-6
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    result = train_step(model, model, optimizer, x, cfg, 201, generator, CPU, skip_above=1e6)
    assert not result.skipped


# ---------------------------------------------------------------------------------------------
# bf16 autocast (the CUDA default; "bf16" runs the same code path under CPU autocast)


ZEN4_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN3_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert cpu_has_native_bf16(ZEN4_FLAGS)
    assert cpu_has_native_bf16("flags : sse2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16(ZEN3_FLAGS)
    assert not cpu_has_native_bf16("")


def test_precision_auto_picks_bf16_only_where_native():
    cpu = torch.device("cpu")
    assert use_bf16("auto", cpu, ZEN4_FLAGS)  # native: bf16
    assert not use_bf16("auto", cpu, ZEN3_FLAGS)  # emulated would be slower: fp32
    with pytest.raises(ValueError, match="no native bf16"):
        use_bf16("bf16", cpu, ZEN3_FLAGS)  # oneDNN has no bf16 LSTM there
    assert use_bf16("bf16", cpu, ZEN4_FLAGS)
    assert not use_bf16("fp32", cpu, ZEN4_FLAGS)
    assert not use_bf16("auto", torch.device("mps"), ZEN4_FLAGS)


NEEDS_NATIVE_BF16 = pytest.mark.skipif(
    not cpu_has_native_bf16(), reason="this CPU has no native bf16 (oneDNN's bf16 LSTM needs it)"
)


@NEEDS_NATIVE_BF16
def test_bf16_learns_as_well_as_fp32(tiny_datasets):
    """Same init, data and steps: bf16 autocast ends within 5 % of fp32's loss."""
    finals = {}
    for bf16 in (False, True):
        cfg = get_config("flat-mel_16bar_tiny", {"learning_rate": 1e-2})
        torch.manual_seed(0)
        model = MusicVAE(cfg)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        windows = load_split(dataset(tiny_datasets, "mel_16bar"), "train", cfg.tracks, 16)
        generator = torch.Generator()
        losses = []
        for step in range(40):
            start = (step * cfg.batch_size) % (len(windows) - cfg.batch_size)
            x = torch.from_numpy(windows[start : start + cfg.batch_size])
            result = train_step(model, model, optimizer, x, cfg, step, generator, CPU, bf16=bf16)
            losses.append(result.metrics["loss"])
        finals[bf16] = np.mean(losses[-10:])
        assert finals[bf16] < 0.8 * np.mean(losses[:5])
    assert abs(finals[True] - finals[False]) <= 0.05 * finals[False]


@NEEDS_NATIVE_BF16
def test_bf16_training_steps_compute_in_bf16_and_learn(tiny_datasets):
    """Under autocast the decoder's logits are bf16, the loss and weights stay fp32, and the
    loss on a fixed batch falls."""
    cfg = get_config("hierdec-mel_16bar_tiny", {"precision": "bf16", "learning_rate": 1e-2})
    torch.manual_seed(0)
    model = MusicVAE(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    windows = load_split(dataset(tiny_datasets, "mel_16bar"), "train", cfg.tracks, cfg.num_bars)
    x = torch.from_numpy(windows[: cfg.batch_size])
    dtypes = []
    model.decoder.register_forward_hook(lambda m, i, out: dtypes.append(out[0].dtype))
    generator = torch.Generator()
    losses = [
        train_step(model, model, optimizer, x, cfg, step, generator, CPU, bf16=True).metrics["loss"]
        for step in range(30)
    ]
    assert set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


# ---------------------------------------------------------------------------------------------
# MLflow


def test_training_logs_params_metrics_tags_and_artifacts(
    tiny_datasets, tmp_path, mlflow_store, monkeypatch
):
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING", "1")
    cfg = get_config("hierdec-mel_16bar_tiny", {"max_steps": 12, "log_every": 4})
    folder = dataset(tiny_datasets, "mel_16bar")
    metrics = train(cfg, out_dir=tmp_path, dataset_dir=folder, progress=False, device="cpu")

    run_id = training_run_id(tmp_path / "model.pt")
    client = MlflowClient(mlflow_store.uri)
    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "musicvae-mel_16bar"
    assert run.info.status == "FINISHED"
    assert run.data.params == {k: str(v) for k, v in cfg.to_dict().items()}
    for key in (
        "loss",
        "r_loss",
        "kl_bits",
        "beta",
        "accuracy",
        "lr",
        "examples_per_s",
        "skipped_steps",
    ):
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [4, 8, 12], key
    assert run.data.metrics["eval_accuracy"] == pytest.approx(metrics["eval_accuracy"])
    assert any(k.startswith("system/") for k in run.data.metrics)
    assert run.data.tags["git_commit"] and run.data.tags["data_version"]
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"model", "train_metrics.json"} <= artifacts
    assert [a.path for a in client.list_artifacts(run_id, "model")] == ["model/model.pt"]
    assert str(mlflow_store.root) in run.info.artifact_uri  # artifacts next to the database

    # --resume continues the same run, from the checkpoint written at the end.
    more = get_config("hierdec-mel_16bar_tiny", {"max_steps": 16, "log_every": 4})
    train(more, out_dir=tmp_path, dataset_dir=folder, progress=False, device="cpu", resume=True)
    assert training_run_id(tmp_path / "model.pt") == run_id
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [4, 8, 12, 16]
    assert client.get_run(run_id).data.tags["resumed.max_steps"] == "16"


# ---------------------------------------------------------------------------------------------
# Command line


def test_command_line_reads_params_yaml(tiny_datasets, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "train": {
                    "defaults": {"seed": 3, "log_every": 2, "max_steps": 100},
                    "cat-drums_2bar_tiny": {"z_size": 8, "max_steps": 4},
                    "other-model": {"z_size": 99},
                }
            }
        )
    )
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            "cat-drums_2bar_tiny",
            "--params",
            str(params),
            "--set",
            "dec_rnn_size=[8, 8]",
            "--data",
            dataset(tiny_datasets, "drums_2bar"),
            "--out",
            str(out),
            "--no-mlflow",
            "--no-progress",
        ]
    )
    assert code == 0
    model, cfg = load_model(out / "model.pt")
    assert (cfg.seed, cfg.log_every, cfg.z_size, cfg.max_steps) == (3, 2, 8, 4)
    assert cfg.dec_rnn_size == [8, 8]
    assert json.loads((out / "train_metrics.json").read_text())["step"] == 4
    # model.pt is plain data: torch.load with weights_only=True reads it.
    assert torch.load(out / "model.pt", weights_only=True)["config"]["kind"] == "drums"

    # --resume after a params change (what `dvc repro` does) starts the new configuration over.
    resume_args = [
        "--model",
        "cat-drums_2bar_tiny",
        "--data",
        dataset(tiny_datasets, "drums_2bar"),
        "--out",
        str(out),
        "--no-mlflow",
        "--no-progress",
        "--resume",
    ]
    capsys.readouterr()
    assert main([*resume_args, "--params", str(params), "--set", "z_size=4"]) == 0
    assert "z_size: 8 -> 4" in capsys.readouterr().err
    assert load_model(out / "model.pt")[1].z_size == 4
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4

    # A damaged checkpoint is reported, not half-loaded.
    (out / "checkpoints" / "last.pt").write_bytes(b"truncated")
    assert main(resume_args) == 1
    assert "not a readable checkpoint" in capsys.readouterr().err

    assert main(["--model", "cat-drums_2bar_tiny", "--set", "zsize=3", "--no-mlflow"]) == 2
    assert "unknown config keys ['zsize']" in capsys.readouterr().err
    assert (
        main(
            [
                "--model",
                "cat-drums_2bar_tiny",
                "--data",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "o"),
                "--no-mlflow",
                "--no-progress",
            ]
        )
        == 1
    )
    assert "no train-*.parquet" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# DistributedDataParallel


def dag_launcher() -> list[str]:
    """params.yaml's `train_launcher` (what `dvc repro` runs), torchrun as this Python's module."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    words = shlex.split(params["train_launcher"])
    assert words[0] == "torchrun", words
    return [sys.executable, "-m", "torch.distributed.run", *words[1:]]


def launch(tiny_datasets, out: Path, steps: int, *extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = dag_launcher() + [
        "-m",
        "training.train",
        "--model",
        "hierdec-mel_16bar_tiny",
        "--max-steps",
        str(steps),
        "--set",
        "batch_size=8",
        "--set",
        "checkpoint_every=2",
        "--data",
        dataset(tiny_datasets, "mel_16bar"),
        "--out",
        str(out),
        "--no-mlflow",
        "--no-progress",
        *extra,
    ]
    result = subprocess.run(
        command, cwd=out.parent, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_dags_two_process_launcher_trains_and_resumes_bit_for_bit(tiny_datasets, tmp_path):
    """Two gloo processes, launched as dvc.yaml launches them: each reads its slice of every
    global batch, and a run killed after 2 steps and resumed equals one of 4 steps."""
    launch(tiny_datasets, tmp_path / "straight", 4)
    metrics = json.loads((tmp_path / "straight" / "train_metrics.json").read_text())
    assert metrics["step"] == 4 and metrics["skipped_steps"] == 0
    _, cfg = load_model(tmp_path / "straight" / "model.pt")
    assert cfg.batch_size == 8
    state = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    assert state["data_position"] == {"epoch": 0, "batch": 4}  # 2 processes x 8 per step
    launch(tiny_datasets, tmp_path / "resumed", 2)
    launch(tiny_datasets, tmp_path / "resumed", 4, "--resume")
    resumed = load_checkpoint(tmp_path / "resumed" / "checkpoints" / "last.pt")
    for key, value in state["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key

    # The two processes scored half the eval batches each; one process scores the same.
    model = MusicVAE(cfg)
    model.load_state_dict(state["state_dict"])
    data = load_split(dataset(tiny_datasets, "mel_16bar"), "eval", cfg.tracks, cfg.num_bars)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the launched processes (OMP_NUM_THREADS=1)
    try:
        alone = evaluate(model, data[: cfg.eval_examples], cfg, 4, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert len(data[: cfg.eval_examples]) > 2 * cfg.batch_size  # both ranks had batches
    assert {f"last_step_{key}": value for key, value in alone.items()} == {
        key: metrics[key] for key in metrics if key.startswith("last_step_")
    }


def test_a_checkpoint_from_before_a_new_config_field_resumes_with_its_default():
    cfg = get_config("hierdec-mel_16bar_tiny")
    saved = cfg.to_dict()
    del saved["enc_level_lengths"]  # a checkpoint written before the field existed
    assert config_mismatch(saved, cfg, Path("last.pt")) == ""
    other = get_config("hierdec-mel_16bar_tiny", {"enc_level_lengths": [16, 16]})
    assert "enc_level_lengths: [] -> [16, 16]" in config_mismatch(saved, other, Path("last.pt"))
