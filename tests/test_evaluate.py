"""The evaluation of trained models: known answers on stand-in and severed models, the stage
end to end on a tiny trained model (files, MLflow), and the flat-vs-hierarchical comparison."""

import csv
import json
import os
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn
from torch.nn import functional as F

from evaluation import compare, evaluate, lm, scoring
from evaluation.params import EvaluateParams, LMParams
from evaluation.testset import load_examples, split_ids
from pipelines import representation as rep
from pipelines.params import read_params
from training.configs import get_config
from training.model import MusicVAE, VAEOutput

# ---------------------------------------------------------------------------------------------
# Known answers


class CopyingVAE(nn.Module):
    """A perfect autoencoder of one-track sequences: z is the tokens themselves, the decoder
    writes z back (the "identity model"). It honours MusicVAE's interface."""

    def __init__(self, steps: int, num_classes: int):
        super().__init__()
        self.cfg = SimpleNamespace(z_size=steps)
        self.num_classes = num_classes
        self.unused = nn.Parameter(torch.zeros(()))  # so that the model has a device

    def encode(self, x):
        mu = x[..., 0].float()
        return mu, torch.full_like(mu, 0.01)

    def forward(self, x, *, sample_z=True, generator=None):
        mu, sigma = self.encode(x)
        z = mu + sigma * torch.randn(mu.shape, generator=generator) if sample_z else mu
        logits = [10.0 * F.one_hot(x[..., 0], self.num_classes).float()]
        return VAEOutput(logits, mu, sigma, z)

    def decode(self, z, temperature=0.0, generator=None):
        return z.round().clamp(0, self.num_classes - 1).long().unsqueeze(-1)

    def prior_codes(self, eps):
        return eps  # the standard prior N(0, I)


def test_identity_model_reconstructs_perfectly_and_the_prior_does_not():
    tokens = np.random.default_rng(0).integers(0, 90, size=(20, 32, 1))
    rec = scoring.reconstruct(CopyingVAE(32, 90), tokens, batch_size=8)
    values, scores, _ = scoring.reconstruction_metrics(rec, tokens, [90], ["tokens"], seed=0)
    assert np.all(scores["tf_accuracy"] == 1.0)
    assert np.all(scores["sampled_accuracy"] == 1.0)
    assert values["tf_accuracy"] == values["tf_accuracy_ci_low"] == 1.0
    assert values["sampled_mean_per_class_accuracy"] == 1.0
    # A random z decodes to a sequence near class 0 or 1: no better than chance.
    assert values["prior_sampled_accuracy"] < 0.1
    assert values["true_minus_prior_z_accuracy_ci_low"] > 0.8
    assert values["active_units"] == 32  # every dimension of z carries the input


def test_sampled_interpolants_decode_the_same_codes_at_the_temperature():
    torch.manual_seed(0)
    model = MusicVAE(get_config("cat-mel_2bar_tiny")).eval()
    tokens = np.random.default_rng(2).integers(0, 90, size=(6, 32, 1))
    mu = scoring.reconstruct(model, tokens, batch_size=6).mu
    pairs, alphas = np.array([[0, 1], [2, 3]]), np.linspace(0.0, 1.0, 3)
    greedy = scoring.interpolate_pairs(model, tokens, mu, pairs, alphas, seed=5)
    assert greedy.sampled is None and greedy.methods == ("latent", "data")
    sampled = scoring.interpolate_pairs(model, tokens, mu, pairs, alphas, seed=5, temperature=1.0)
    again = scoring.interpolate_pairs(model, tokens, mu, pairs, alphas, seed=5, temperature=1.0)
    np.testing.assert_array_equal(sampled.latent, greedy.latent)
    np.testing.assert_array_equal(sampled.sampled, again.sampled)  # seeded
    assert sampled.sampled.shape == sampled.latent.shape
    assert (sampled.sampled != sampled.latent).mean() > 0.1  # an untrained model is unsure
    values, curves = scoring.interpolation_metrics(sampled, tokens, None, track_types=["melody"])
    assert {"interp_sampled_monotone_fraction", "interp_sampled_endpoint_a_accuracy"} <= set(values)
    assert len(curves["sampled_distance"]) == len(alphas)


def severed(cfg_name: str, **overrides) -> MusicVAE:
    """A real MusicVAE whose decoder cannot see z: every weight that carries z is zero."""
    torch.manual_seed(0)
    model = MusicVAE(get_config(cfg_name, overrides)).eval()
    with torch.no_grad():
        decoder = model.decoder
        if hasattr(decoder, "conductor_initial_state"):
            # Conductor inputs are zeros: z reaches it only through its initial state.
            decoder.conductor_initial_state.dense.weight.zero_()
            decoder.conductor_initial_state.dense.bias.zero_()
        else:
            core = decoder.core
            core.initial_state.dense.weight.zero_()
            core.initial_state.dense.bias.zero_()
            core.rnn.layers[0].weight_ih_l0[:, core.token_size :] = 0.0
    return model


@pytest.mark.parametrize(
    "cfg_name, overrides",
    [("cat-mel_2bar_tiny", {}), ("hierdec-mel_16bar_tiny", {"num_bars": 2})],
)
def test_decoder_that_ignores_z_shows_no_gap_between_true_and_prior_z(cfg_name, overrides):
    model = severed(cfg_name, **overrides)
    tokens = np.random.default_rng(1).integers(0, 90, size=(12, 32, 1))
    rec = scoring.reconstruct(model, tokens, batch_size=6, seed=3)
    np.testing.assert_array_equal(rec.sampled, rec.prior)
    values, _, _ = scoring.reconstruction_metrics(rec, tokens, [90], ["tokens"], seed=0)
    assert values["true_minus_prior_z_accuracy"] == 0.0
    assert values["true_minus_prior_z_accuracy_ci_low"] == 0.0
    assert values["true_minus_prior_z_accuracy_ci_high"] == 0.0


def reconstructions(predicted: np.ndarray, r_loss: float, kl: float) -> scoring.Reconstructions:
    """Stand-in reconstructions: `predicted` teacher-forced and sampled, an all-zero prior."""
    n = len(predicted)
    return scoring.Reconstructions(
        mu=np.random.default_rng(0).normal(size=(n, 3)),
        sigma=np.ones((n, 3)),
        teacher_forced=predicted,
        sampled=predicted,
        prior=np.zeros_like(predicted),
        r_loss=np.full(n, r_loss),
        kl=np.full(n, kl),
    )


def test_reconstruction_metrics_hand_made_case():
    tokens = np.zeros((4, 32, 1), dtype=np.int64)
    tokens[:, 0] = 60  # one note-on in each example; the rest is "no event"
    predicted = tokens.copy()
    predicted[0, 0] = 0  # example 0 misses its note
    rec = reconstructions(predicted, r_loss=2.0, kl=np.log(2.0) * 5)
    values, scores, tables = scoring.reconstruction_metrics(
        rec, tokens, [90], ["tokens"], n_resamples=200
    )
    assert scores["sampled_accuracy"].tolist() == [31 / 32, 1.0, 1.0, 1.0]
    assert values["majority_floor"] == 31 / 32  # always "no event"
    assert values["prior_sampled_accuracy"] == 31 / 32
    assert values["sampled_mean_per_class_accuracy"] == pytest.approx((1.0 + 3 / 4) / 2)
    assert values["kl_bits"] == pytest.approx(5.0)
    assert values["r_loss"] == 2.0 and values["elbo"] == pytest.approx(-2.0 - 5 * np.log(2.0))
    assert tables["per_bar"]["sampled_accuracy"].tolist() == pytest.approx([(15 / 16 + 3) / 4, 1.0])


def test_melody_onset_scores_separate_pitch_rhythm_and_held_notes():
    tokens = np.zeros((2, 16, 1), dtype=np.int64)
    tokens[:, ::4, 0] = [60, 62, 64, 65]  # four quarter notes; 12 "no event" steps
    held = np.zeros_like(tokens)
    held[:, 0, 0] = 60  # one note held for the whole bar: what a collapsed decoder writes
    wrong_pitches = tokens.copy()
    wrong_pitches[:, 4:, 0] = np.where(tokens[:, 4:, 0] > 0, 70, 0)  # right rhythm, 3 wrong pitches
    for pred, expected in (
        (held, dict(onset_accuracy=1 / 4, other_accuracy=1.0, onset_recall=1 / 4)),
        (wrong_pitches, dict(onset_accuracy=1 / 4, other_accuracy=1.0, onset_recall=1.0)),
    ):
        values, _, _ = scoring.reconstruction_metrics(
            reconstructions(pred, r_loss=1.0, kl=1.0),
            tokens,
            [90],
            ["tokens"],
            melody_tracks=[0],
            n_resamples=20,
        )
        for key, value in expected.items():
            assert values[f"sampled_{key}"] == pytest.approx(value), key
        assert values["sampled_onset_precision"] == 1.0
    # A trio's melody-coded tracks carry their names.
    trio = np.concatenate([tokens, tokens], axis=-1)
    values, _, _ = scoring.reconstruction_metrics(
        reconstructions(trio, r_loss=1.0, kl=1.0),
        trio,
        [90, 90],
        ["melody", "bass"],
        melody_tracks=[0, 1],
        n_resamples=20,
    )
    assert values["tf_onset_accuracy_bass"] == 1.0 and "tf_onset_accuracy" not in values


def test_drum_and_trio_metrics_score_each_track_and_each_drum_class():
    kick, snare, hihat = 1 << 0, 1 << 1, 1 << 2
    tokens = np.zeros((2, 32, 3), dtype=np.int64)  # a trio: melody, bass, drums
    tokens[:, ::4, 2] = kick | hihat
    tokens[:, 2, 0] = 62
    predicted = tokens.copy()
    predicted[0, ::4, 2] = kick  # example 0 drops its 8 hi-hats; the kicks stay right
    predicted[1, 2, 0] = 0  # example 1 misses its melody note
    predicted[1, 0, 2] = kick | snare | hihat  # and adds one snare
    rec = reconstructions(predicted, r_loss=2.0, kl=1.0)
    values, _, _ = scoring.reconstruction_metrics(
        rec, tokens, [90, 90, 512], ["melody", "bass", "drums"], drum_tracks=[2], n_resamples=50
    )
    assert values["sampled_accuracy_melody"] == (1.0 + 31 / 32) / 2
    assert values["sampled_accuracy_bass"] == 1.0
    assert values["sampled_accuracy_drums"] == (24 / 32 + 31 / 32) / 2
    assert values["sampled_drum_accuracy_drums_kick"] == 1.0
    assert values["sampled_drum_accuracy_drums_closed_hihat"] == (24 / 32 + 1.0) / 2
    assert values["sampled_drum_accuracy_drums_snare"] == (1.0 + 31 / 32) / 2
    assert values["tf_drum_accuracy_drums_ride"] == 1.0
    # A drums-only model: the per-class keys carry no track name.
    drums = reconstructions(predicted[..., 2:], r_loss=2.0, kl=1.0)
    values, _, _ = scoring.reconstruction_metrics(
        drums, tokens[..., 2:], [512], ["tokens"], drum_tracks=[0], n_resamples=50
    )
    assert values["sampled_drum_accuracy_snare"] == (1.0 + 31 / 32) / 2
    assert "sampled_accuracy_tokens" not in values


def test_drum_hits_get_one_lane_per_class_below_the_pitched_notes(tmp_path):
    from evaluation.pianoroll import drum_lanes, plot_sequences

    trio = rep.tokens_to_notesequence(
        np.stack([np.full(32, 1), np.full(32, 1), np.zeros(32, dtype=np.int64)], axis=1), "trio"
    )
    spans = [[(60, 0, 4, False, 0), (36, 0, 1, True, 9), (42, 2, 3, True, 9), (46, 4, 5, True, 9)]]
    moved, low = drum_lanes(spans, 58)
    lanes = {span[0] for span in moved[0] if span[3]}
    assert lanes == {48, 50, 51}  # kick, closed and open hi-hat: lanes 0, 2, 3 from 58 - 10
    assert low == 47 and moved[0][0] == spans[0][0]  # the melody note stays at its pitch
    only_drums = [[s for s in spans[0] if s[3]]]
    assert {s[0] for s in drum_lanes(only_drums, 58)[0][0]} == {0, 2, 3}
    assert plot_sequences([("trio", trio)], tmp_path / "trio.png", 32).stat().st_size > 0


# ---------------------------------------------------------------------------------------------
# The stage end to end


def train_tiny(name: str, dataset_dir: str, out_dir: Path, steps: int, **overrides) -> Path:
    from training.train import train

    cfg = get_config(
        name, {"max_steps": steps, "batch_size": 8, "checkpoint_every": steps, **overrides}
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only contend
    try:
        train(cfg, out_dir=out_dir, dataset_dir=dataset_dir, progress=False, device="cpu")
    finally:
        torch.set_num_threads(threads)
    return out_dir / "model.pt"


def write_params(path: Path, lm_path: str, **evaluate_settings) -> Path:
    settings = {
        "max_examples": 24,
        "n_resamples": 200,
        "interpolation_pairs": 4,
        "num_samples": 2,
        "num_reconstruction_plots": 2,
        "num_interpolation_plots": 1,
        "lm": lm_path,
        **evaluate_settings,
    }
    path.write_text(yaml.safe_dump({"evaluate": settings}))
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_evaluate_stage_end_to_end(tiny_datasets, tmp_path, mlflow_store):
    models = tmp_path / "models"
    name = "cat-mel_2bar_tiny"
    train_tiny(name, os.path.join(tiny_datasets, "mel_2bar"), models / name, steps=4)
    lm.run(
        "mel_2bar",
        LMParams(train_steps=3, hidden_size=16, embed_size=8, batch_size=8),
        models / "lm-mel_2bar",
        Path(tiny_datasets),
    )
    params = write_params(tmp_path / "params.yaml", str(models / "lm-{dataset}" / "lm.pt"))
    out = tmp_path / "eval" / name
    args = ["--model", name, "--params", str(params), "--out", str(out)]
    args += ["--models-dir", str(models), "--datasets-root", tiny_datasets]
    assert evaluate.main(args) == 0

    metrics = json.loads((out / "metrics.json").read_text())
    folder = os.path.join(tiny_datasets, "mel_2bar")
    examples = load_examples(folder, "test", rep.TRACKS["melody"], 2, limit=24, seed=0)
    tokens = examples.tokens
    assert metrics["test_examples"] == len(tokens) == min(24, len(split_ids(folder, "test")))
    counts = np.bincount(tokens.ravel())
    assert metrics["majority_floor"] == pytest.approx(counts.max() / counts.sum())
    for key in (
        "tf_accuracy",
        "sampled_accuracy",
        "prior_sampled_accuracy",
        "magenta_sampled_accuracy",
    ):
        assert 0.0 <= metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"] <= 1
    assert metrics["latent_size"] == 16 and 0 <= metrics["active_units"] <= 16
    assert metrics["kl_bits"] > 0 and metrics["r_loss"] > 0
    assert "interp_latent_lm_loglik" in metrics and metrics["interp_pairs"] == 4
    assert 0.0 <= metrics["interp_latent_degenerate_fraction"] <= 1.0
    assert 0.0 <= metrics["interp_latent_monotone_fraction"] <= 1.0
    # alpha 0 and 1 decode mu_A and mu_B greedily: A's and B's own greedy reconstructions.
    for side in ("a", "b"):
        assert metrics[f"interp_endpoint_{side}_accuracy"] == pytest.approx(
            metrics[f"interp_endpoint_{side}_reference_accuracy"], abs=1e-9
        )
    # The same codes decoded at the sampling temperature: a third method beside latent and data.
    assert 0.0 <= metrics["interp_sampled_monotone_fraction"] <= 1.0
    assert 0.0 <= metrics["interp_sampled_endpoint_b_accuracy"] <= 1.0
    assert "interp_sampled_lm_loglik" in metrics

    curves = read_csv(out / "interpolation.csv")
    assert [float(row["alpha"]) for row in curves] == pytest.approx(np.linspace(0, 1, 11))
    assert float(curves[0]["data_distance"]) == 0.0  # alpha 0 is A itself
    assert float(curves[-1]["data_relative_distance"]) == pytest.approx(1.0)  # alpha 1 is B
    per_example = read_csv(out / "per_example.csv")
    assert [row["example_id"] for row in per_example] == examples.ids.tolist()
    assert len(read_csv(out / "per_bar.csv")) == 2
    assert len(read_csv(out / "latent_dims.csv")) == 16

    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {p.name for p in (out / "figures").glob("*.png")} >= {
        "reconstructions.png",
        "samples.png",
        "interpolation_00_latent.png",
        "interpolation_00_data.png",
        "interpolation_00_sampled.png",
        "interpolation_distance.png",
        "interpolation_lm_loglik.png",
        "per_bar_accuracy.png",
    }
    # The MIDI of the first original is exactly that test example.
    original = (out / "midi" / "reconstruction_00_original.mid").read_bytes()
    decoded = rep.midi_bytes_to_tokens(original, "melody", num_steps=32)["tokens"]
    np.testing.assert_array_equal(decoded, rep.canonical_melody(tokens[0, :, 0]))
    assert len(list((out / "midi").glob("sample_*.mid"))) == 2
    assert (out / "audio" / "STATUS.txt").is_file()

    # Logged into the model's own training run.
    from training.checkpoint import training_run_id

    run_id = training_run_id(models / name / "model.pt")
    info = json.loads((out / "model_info.json").read_text())
    assert info["mlflow_run_id"] == run_id and info["dataset"] == "mel_2bar"
    # write_music's note (audio skipped or not) reaches the file; the MLflow note is only printed.
    status = (out / "audio" / "STATUS.txt").read_text().removesuffix("\n")
    skipped = status.removeprefix("No WAV files: ")
    assert info["notes"] == ([] if skipped == status else [f"audio skipped: {skipped}"])
    client = mlflow_store.client()
    logged = client.get_run(run_id).data.metrics
    assert logged["test/sampled_accuracy"] == pytest.approx(metrics["sampled_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert "evaluation/metrics.json" in artifacts and "evaluation/figures" in artifacts


def test_evaluate_reports_a_missing_model_clearly(tmp_path, capsys):
    code = evaluate.main(["--model", "nope", "--models-dir", str(tmp_path), "--no-mlflow"])
    assert code == 1
    assert "train it first" in capsys.readouterr().err


def test_unknown_evaluate_parameter_is_rejected(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": {"max_exampels": 3}}))
    with pytest.raises(ValueError, match="max_exampels"):
        read_params(params, "evaluate", EvaluateParams)


@pytest.mark.slow
def test_flat_and_hierarchical_16bar_models_compare_paired(tiny_datasets, tmp_path, mlflow_store):
    models, dataset = tmp_path / "models", os.path.join(tiny_datasets, "mel_16bar")
    names = ["flat-mel_16bar_tiny", "hierdec-mel_16bar_tiny"]
    for name in names:
        train_tiny(name, dataset, models / name, steps=3)
    params = write_params(tmp_path / "params.yaml", "", max_examples=10, interpolation_pairs=3)
    for name in names:
        args = ["--model", name, "--params", str(params), "--out", str(tmp_path / "eval" / name)]
        args += ["--models-dir", str(models), "--datasets-root", tiny_datasets, "--no-mlflow"]
        assert evaluate.main(args) == 0
    per_bar = read_csv(tmp_path / "eval" / names[1] / "per_bar.csv")
    assert [int(row["bar"]) for row in per_bar] == list(range(1, 17))

    compare.main(["--eval-dir", str(tmp_path / "eval"), "--n-resamples", "300"])
    table = json.loads((tmp_path / "eval" / "comparison" / "comparison.json").read_text())
    difference = table["hierarchical_minus_flat"][f"{names[1]}_minus_{names[0]}"]
    assert difference["pairing"] == "paired" and difference["examples"] == 10
    flat, hier = (table["models"][n] for n in names)
    assert difference["sampled_accuracy_diff"] == pytest.approx(
        hier["sampled_accuracy"] - flat["sampled_accuracy"]
    )
    assert hier["paper_sampled_accuracy"] == 0.812 and flat["paper_sampled_accuracy"] == 0.620
    markdown = (tmp_path / "eval" / "comparison" / "comparison.md").read_text()
    assert "Hierarchical minus flat" in markdown and names[1] in markdown
    onsets = f"{hier['sampled_onset_accuracy']:.3f} / {hier['sampled_onset_recall']:.3f}"
    assert onsets in next(
        line for line in markdown.splitlines() if line.startswith(f"| {names[1]}")
    )

    # The DAG's way: each model's inputs gathered under one folder (compare_inputs@<model>).
    collected = tmp_path / "collected"
    for name in names:
        compare.main(
            ["--collect", name, "--eval-dir", str(tmp_path / "eval"), "--out", str(collected)]
        )
    assert sorted(p.name for p in (collected / names[0]).iterdir()) == sorted(compare.INPUT_FILES)
    compare.main(
        ["--eval-dir", str(collected), "--n-resamples", "300", "--out", str(tmp_path / "c")]
    )
    assert (tmp_path / "c" / "comparison.json").read_text() == json.dumps(table, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# The comparison on hand-made results


def result(name, dataset, hierarchical, ids, tf, sampled):
    return compare.ModelResult(
        name=name,
        info={"dataset": dataset, "hierarchical": hierarchical, "num_bars": 16},
        metrics={"tf_accuracy": float(np.mean(tf)), "sampled_accuracy": float(np.mean(sampled))},
        per_example={"tf_accuracy": np.asarray(tf), "sampled_accuracy": np.asarray(sampled)},
        ids=np.asarray(ids),
    )


def test_comparison_pairs_by_example_and_says_when_a_claim_holds():
    rng = np.random.default_rng(0)
    ids = [f"x{i}" for i in range(200)]
    difficulty = rng.random(200)
    flat_tf, flat_sampled = difficulty, difficulty * 0.6
    hier_tf = difficulty + rng.normal(0, 0.01, 200)  # same as flat, up to noise
    hier_sampled = difficulty * 0.6 + 0.1 + rng.normal(0, 0.01, 200)  # clearly better
    order = rng.permutation(200)  # rows in another order: pairing goes by id
    results = [
        result("flat", "mel_16bar", False, ids, flat_tf, flat_sampled),
        result(
            "hier", "mel_16bar", True, np.array(ids)[order], hier_tf[order], hier_sampled[order]
        ),
        result("drums", "drums_2bar", False, ids[:50], difficulty[:50], difficulty[:50]),
    ]
    table = compare.compare(results, n_resamples=500)
    assert list(table["hierarchical_minus_flat"]) == ["hier_minus_flat"]  # drums: no partner
    entry = table["hierarchical_minus_flat"]["hier_minus_flat"]
    assert entry["pairing"] == "paired" and entry["examples"] == 200
    assert entry["sampled_accuracy_diff_holds"] and not entry["tf_accuracy_diff_holds"]
    assert entry["sampled_accuracy_diff_ci_low"] < 0.1 < entry["sampled_accuracy_diff_ci_high"]
    assert entry["paper_sampled_accuracy_diff"] == pytest.approx(0.812 - 0.620)
    assert table["models"]["drums"]["paper_tf_accuracy"] == 0.979


def test_comparison_falls_back_to_unpaired_without_shared_examples():
    flat = result("flat", "mel_16bar", False, ["a", "b", "c", "d"], [0.5] * 4, [0.2, 0.3, 0.2, 0.3])
    hier = result("hier", "mel_16bar", True, ["e", "f", "g", "h"], [0.6] * 4, [0.7, 0.8, 0.7, 0.8])
    entry = compare.compare([flat, hier], n_resamples=300)["hierarchical_minus_flat"][
        "hier_minus_flat"
    ]
    assert entry["pairing"] == "unpaired"
    assert entry["sampled_accuracy_diff"] == pytest.approx(0.5)


def test_compare_names_the_missing_evaluation(tmp_path):
    (tmp_path / "eval" / "ghost").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="evaluation.evaluate --model ghost"):
        compare.load_result(tmp_path / "eval" / "ghost")
    with pytest.raises(FileNotFoundError, match="evaluation.evaluate --model ghost"):
        compare.main(["--collect", "ghost", "--eval-dir", str(tmp_path / "eval")])


# ---------------------------------------------------------------------------------------------
# Audio: rendered when FluidSynth is installed, skipped (never failed) otherwise


def test_wav_is_rendered_only_when_a_synthesizer_exists(tmp_path):
    from evaluation import audio

    assert audio.find_soundfont().suffix == ".sf2"  # pretty_midi ships one
    sequence = rep.tokens_to_notesequence(np.array([62, 0, 0, 1] * 8), "melody")
    available, why = audio.synthesizer_status()
    written = audio.render_wav(sequence, tmp_path / "a.wav")
    if available:
        assert written.read_bytes()[:4] == b"RIFF"
        # Drums sound on the soundfont's drum kit (channel 10): kick and snare, not silence.
        drums = rep.tokens_to_notesequence(np.array([1, 0, 2, 0] * 8), "drums")
        with wave.open(str(audio.render_wav(drums, tmp_path / "d.wav"))) as f:
            samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
        assert np.abs(samples).max() > 10_000
    else:
        assert "fluidsynth" in why and written is None
        assert not (tmp_path / "a.wav").exists()
