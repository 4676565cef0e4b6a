"""The `musicvae` command line on a real, briefly trained model.

The commands run in-process through `evaluation.cli.main` (the code the console script calls),
and the user-error cases through the installed console script in a subprocess, which is what a
user sees. What comes out is parsed back as MIDI and checked against the model run directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures_data import drum_notes, make_sequence, melody_notes, to_midi_bytes
from fixtures_models import QUICK, dataset_dir, synthetic_melodies, train_model

from evaluation.cli.attributes import ATTRIBUTES, VECTORS_FILENAME, AttributeVectors
from evaluation.cli.main import main
from evaluation.registry.versions import file_sha256
from pipelines.representation import (
    MELODY_CLASSES,
    canonical_melody,
    midi_bytes_to_tokens,
    tokens_to_midi_bytes,
)
from training import generate
from training.checkpoint import load_model

REPO = Path(__file__).resolve().parents[1]
STEPS = 32  # the 2-bar model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A folder of its own holding the quickly trained model (vectors get written beside it)."""
    folder = tmp_path_factory.mktemp("cli_model")
    shutil.copy(train_model(tmp_path_factory, "quick", QUICK), folder / "model.pt")
    return folder


@pytest.fixture(scope="module")
def model(model_dir):
    return load_model(model_dir / "model.pt")[0]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """MIDI files to feed the commands: two melodies the model can read, and bad inputs."""
    folder = tmp_path_factory.mktemp("cli_inputs")
    files = {}
    for name, tokens in zip(("a", "b"), synthetic_melodies(2, seed=11), strict=True):
        files[name] = folder / f"{name}.mid"
        files[name].write_bytes(tokens_to_midi_bytes(tokens, "melody"))
    sequences = {
        "waltz": make_sequence(
            [(0, False, melody_notes(8, 3, seed=3))], time_signatures=[(0.0, 3, 4)]
        ),
        "no_notes": make_sequence([]),
        "drums": make_sequence([(0, True, drum_notes(4))]),
    }
    for name, sequence in sequences.items():
        files[name] = folder / f"{name}.mid"
        files[name].write_bytes(to_midi_bytes(sequence))
    files["text"] = folder / "notes.mid"
    files["text"].write_text("C D E F G A B c\n")
    return files


def read_tokens(path: Path) -> np.ndarray:
    """The melody tokens of a MIDI file the CLI wrote, [T]."""
    return midi_bytes_to_tokens(path.read_bytes(), "melody", num_steps=None)["tokens"]


def window_tokens(path: Path) -> np.ndarray:
    """What the model reads from an input file: [1, T, 1]."""
    return midi_bytes_to_tokens(path.read_bytes(), "melody", num_steps=STEPS)["tokens"][
        None, :, None
    ]


def run(*argv: str) -> int:
    return main([str(a) for a in argv])


def test_sample_writes_valid_midi_and_pngs_reproducibly(model_dir, model, tmp_path):
    first, again, other = tmp_path / "first", tmp_path / "again", tmp_path / "other"
    common = ("--model", model_dir / "model.pt", "-n", 3, "--temperature", 1.0)
    assert run("sample", *common, "--seed", 7, "-o", first) == 0
    assert run("sample", *common, "--seed", 7, "-o", again, "--no-png") == 0
    assert run("sample", *common, "--seed", 8, "-o", other, "--no-png") == 0

    _, expected = generate.sample(model, 3, temperature=1.0, seed=7)
    for i in range(3):
        midi = first / f"sample-{i:03d}.mid"
        assert (first / f"sample-{i:03d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        tokens = midi_bytes_to_tokens(midi.read_bytes(), "melody", num_steps=STEPS)["tokens"]
        assert len(tokens) == STEPS and tokens.min() >= 0 and tokens.max() < MELODY_CLASSES
        np.testing.assert_array_equal(tokens, canonical_melody(expected[i, :, 0].numpy()))
        assert midi.read_bytes() == (again / midi.name).read_bytes()
    assert not (again / "sample-000.png").exists()
    outputs = [(other / f"sample-{i:03d}.mid").read_bytes() for i in range(3)]
    assert outputs != [(first / f"sample-{i:03d}.mid").read_bytes() for i in range(3)]


def test_outputs_are_never_overwritten_without_force(model_dir, tmp_path, capsys):
    common = ("sample", "--model", model_dir / "model.pt", "-n", 1, "-o", tmp_path)
    assert run(*common, "--seed", 1, "--temperature", 1.0) == 0
    before = (tmp_path / "sample-000.mid").read_bytes()
    capsys.readouterr()
    assert run(*common, "--seed", 2, "--temperature", 1.0) == 1
    assert "already exist" in capsys.readouterr().err
    assert (tmp_path / "sample-000.mid").read_bytes() == before
    assert run(*common, "--seed", 2, "--temperature", 1.0, "--force") == 0


def test_interpolate_samples_at_magentas_temperature_by_default(model_dir, inputs, tmp_path):
    # magenta's music_vae_generate decodes interpolations at temperature 0.5 unless told.
    common = ("interpolate", inputs["a"], inputs["b"], "--model", model_dir / "model.pt")
    for folder, flags in (("default", ()), ("t05", ("-t", 0.5)), ("greedy", ("-t", 0))):
        assert run(*common, "--seed", 3, *flags, "--no-png", "-o", tmp_path / folder) == 0
    joined = {f: (tmp_path / f / "interpolation.mid").read_bytes() for f in ("default", "t05")}
    assert joined["default"] == joined["t05"]
    assert joined["default"] != (tmp_path / "greedy" / "interpolation.mid").read_bytes()


def test_interpolate_endpoints_are_the_models_reconstructions(
    model_dir, model, inputs, tmp_path, capsys
):
    steps = 5
    assert (
        run(
            "interpolate",
            inputs["a"],
            inputs["b"],
            "--model",
            model_dir / "model.pt",
            "--steps",
            steps,
            "--temperature",
            0,
            "-o",
            tmp_path,
        )
        == 0
    )
    parts = [read_tokens(tmp_path / f"interpolation-{i:02d}.mid") for i in range(steps)]
    padded = [np.pad(p, (0, STEPS - len(p))) for p in parts]  # MIDI drops trailing silence
    joined = midi_bytes_to_tokens(
        (tmp_path / "interpolation.mid").read_bytes(), "melody", num_steps=steps * STEPS
    )["tokens"]
    np.testing.assert_array_equal(joined, np.concatenate(padded))
    assert (tmp_path / "interpolation.png").stat().st_size > 0

    # Greedy decoding at both ends: exactly what the model makes of A and B by itself, and the
    # command says how close that is to each input.
    err = capsys.readouterr().err
    for tokens, path, name in ((padded[0], inputs["a"], "A"), (padded[-1], inputs["b"], "B")):
        x = window_tokens(path)
        own = generate.decode(model, generate.encode(model, x), temperature=0.0)[0, :, 0]
        np.testing.assert_array_equal(tokens, canonical_melody(own.numpy()))
        accuracy_of_endpoint = (tokens == x[0, :, 0]).mean()
        accuracy_of_model = (canonical_melody(own.numpy()) == x[0, :, 0]).mean()
        assert accuracy_of_endpoint == accuracy_of_model
        printed = re.search(rf"reconstruction of {name} \(alpha \d\): accuracy ([\d.]+)", err)
        assert printed and abs(float(printed[1]) - (own.numpy() == x[0, :, 0]).mean()) < 6e-4


def test_encode_then_decode(model_dir, model, inputs, tmp_path):
    codes = tmp_path / "codes.npy"
    assert (
        run("encode", inputs["a"], inputs["b"], "--model", model_dir / "model.pt", "-o", codes) == 0
    )
    z = np.load(codes)
    x = np.concatenate([window_tokens(inputs["a"]), window_tokens(inputs["b"])])
    assert z.shape == (2, model.cfg.z_size) and z.dtype == np.float32
    np.testing.assert_allclose(z, generate.encode(model, x).numpy(), rtol=1e-6)

    np.save(tmp_path / "one.npy", z[1])  # a single code [Z] works too
    for name, count in (("codes.npy", 2), ("one.npy", 1)):
        out = tmp_path / name.removesuffix(".npy")
        assert run("decode", tmp_path / name, "--model", model_dir / "model.pt", "-o", out) == 0
        decoded = generate.decode(model, torch.as_tensor(z[-count:]), temperature=0.0)
        for i in range(count):
            tokens = midi_bytes_to_tokens(
                (out / f"decoded-{i:03d}.mid").read_bytes(), "melody", num_steps=STEPS
            )["tokens"]
            np.testing.assert_array_equal(tokens, canonical_melody(decoded[i, :, 0].numpy()))
            assert (out / f"decoded-{i:03d}.png").exists()


def test_attribute_compute_apply_and_effects(model_dir, model, inputs, tmp_path_factory, capsys):
    data = dataset_dir(tmp_path_factory)
    common = ("--model", model_dir / "model.pt", "--data", data)
    assert run("attribute", "compute", *common, "--limit", 512) == 0
    vectors = AttributeVectors.load(model_dir / VECTORS_FILENAME)
    assert vectors.names == list(ATTRIBUTES)
    assert vectors.vectors.shape == (len(ATTRIBUTES), model.cfg.z_size)
    assert (vectors.quartile_size == 128).all()
    capsys.readouterr()
    assert run("attribute", "compute", *common, "--limit", 512) == 1  # no silent overwrite
    assert "--force" in capsys.readouterr().err

    out = tmp_path_factory.mktemp("apply") / "denser.mid"
    assert (
        run(
            "attribute",
            "apply",
            inputs["a"],
            "--model",
            model_dir / "model.pt",
            "--attribute",
            "note_density",
            "--strength",
            -1.5,
            "-o",
            out,
        )
        == 0
    )
    mu = generate.encode(model, window_tokens(inputs["a"]))
    shifted = mu - 1.5 * torch.as_tensor(vectors.vector("note_density"), dtype=mu.dtype)
    expected = generate.decode(model, shifted, temperature=0.0)[0, :, 0].numpy()
    tokens = midi_bytes_to_tokens(out.read_bytes(), "melody", num_steps=STEPS)["tokens"]
    np.testing.assert_array_equal(tokens, canonical_melody(expected))
    assert out.with_suffix(".png").exists()

    report = tmp_path_factory.mktemp("effects") / "effects.json"
    assert run("attribute", "effects", *common, "--limit", 32, "--json", report) == 0
    effects = json.loads(report.read_text())
    assert effects["num_inputs"] == 32
    assert set(effects["mean_change"]) == set(ATTRIBUTES)
    assert "percent change" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# What a user sees when something is wrong: the real console script, one line, exit status 1.


def console(*argv: object, cwd: Path | None = None, env: dict | None = None):
    script = Path(sys.executable).parent / "musicvae"
    assert script.exists(), "install the project (pip install -e .) for the console script"
    return subprocess.run(
        [str(script), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "missing.mid: no such file"),
        ("text", "not a readable MIDI file (it does not start with a MIDI header)"),
        ("waltz", "no section in 4/4 — the file is in 3/4"),
        ("no_notes", "the file has no notes"),
    ],
)
def test_user_errors_get_one_clear_line(case, expected, model_dir, inputs, tmp_path):
    source = inputs.get(case, tmp_path / "missing.mid")
    result = console("encode", source, "--model", model_dir / "model.pt", "-o", tmp_path / "z.npy")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("musicvae: error: "), result.stderr
    assert expected in lines[0]
    assert not (tmp_path / "z.npy").exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("encode", "{drums}", "-o", "{tmp}/z.npy"), "no melody — the file holds only drums"),
        (("encode", "{a}", "--track", "3", "-o", "{tmp}/z.npy"), "no track 3"),
        (("encode", "{a}", "-o", "{tmp}/z.txt"), "the output of encode is a .npy file"),
        (("sample", "--model", "{tmp}/nowhere/model.pt"), "no such model file"),
        (("sample", "--model", "{a}"), "not a MusicVAE model file"),
        (("sample", "--model", "models:/no-such-model@champion"), "not in the model registry"),
        (("decode", "{a}"), "not a .npy array file"),
        (("decode", "{tmp}/wrong_size.npy"), "expected latent codes of shape [N, 16] or [16]"),
        (("interpolate", "{a}", "{b}", "--steps", "1"), "--steps must be >= 2"),
        (
            ("attribute", "apply", "{a}", "--attribute", "loudness", "-o", "{tmp}/x.mid"),
            "unknown attribute 'loudness'",
        ),
        (
            ("attribute", "apply", "{a}", "--attribute", "c_diatonic", "-o", "{tmp}/x.mid"),
            "no attribute vectors for this model",
        ),
    ],
)
def test_more_user_errors(argv, expected, model_dir, inputs, tmp_path, mlflow_store, capsys):
    fresh = tmp_path / "fresh_model"  # a model without attribute vectors
    fresh.mkdir()
    shutil.copy(model_dir / "model.pt", fresh / "model.pt")
    np.save(tmp_path / "wrong_size.npy", np.zeros((2, 5)))
    names = {"tmp": tmp_path, **{k: str(v) for k, v in inputs.items()}}
    argv = [part.format(**names) for part in argv]
    if "--model" not in argv:
        argv += ["--model", str(fresh / "model.pt")]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert error.startswith("musicvae: error: ") and expected in error
    assert not list(tmp_path.glob("*.mid")) and not (tmp_path / "z.npy").exists()


def test_usage_errors_exit_with_2(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["sample", "--temperature", "warm"])
    assert raised.value.code == 2 and "invalid float value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["--help"])
    assert raised.value.code == 0 and "interpolate" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The default path: a registered model and vectors stored with its run.


@pytest.mark.slow
def test_registered_model_and_its_attribute_vectors(
    model_dir, inputs, mlflow_store, tmp_path, tmp_path_factory
):
    config = "cat-mel_2bar_tiny"
    project = tmp_path / "project"
    (project / "models" / config).mkdir(parents=True)
    shutil.copy(model_dir / "model.pt", project / "models" / config / "model.pt")
    (project / "eval" / config).mkdir(parents=True)
    (project / "eval" / config / "metrics.json").write_text('{"sampled_accuracy": 0.5}')
    env = {"MLFLOW_TRACKING_URI": mlflow_store.uri, "PYTHONPATH": str(REPO)}
    registered = subprocess.run(
        [sys.executable, "-m", "evaluation.registry.register", "--model", config],
        cwd=project,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert registered.returncode == 0, registered.stderr[-2000:]

    # The default --model: the champion of a configurable name.
    env["MUSICVAE_MODEL"] = f"models:/musicvae-{config}@champion"
    sampled = console("sample", "-n", 2, "--seed", 3, "-o", tmp_path / "out", env=env)
    assert sampled.returncode == 0, sampled.stderr
    assert len(list((tmp_path / "out").glob("sample-*.mid"))) == 2

    data = dataset_dir(tmp_path_factory)
    computed = console("attribute", "compute", "--data", data, "--limit", 256, env=env)
    assert computed.returncode == 0, computed.stderr
    where = computed.stdout.strip().splitlines()[-1]
    assert where.startswith("runs:/") and where.endswith(f"attribute_vectors/{VECTORS_FILENAME}")
    applied = console(
        "attribute",
        "apply",
        inputs["a"],
        "--attribute",
        "c_diatonic",
        "-o",
        tmp_path / "c.mid",
        env=env,
    )
    assert applied.returncode == 0, applied.stderr
    assert read_tokens(tmp_path / "c.mid").max() < MELODY_CLASSES


def test_vectors_of_other_weights_are_refused(model_dir, inputs, tmp_path, capsys):
    from training.checkpoint import save_model

    shutil.copy(model_dir / "model.pt", tmp_path / "model.pt")
    vectors = AttributeVectors(
        names=list(ATTRIBUTES),
        vectors=np.zeros((len(ATTRIBUTES), 16)),
        low_threshold=np.zeros(len(ATTRIBUTES)),
        high_threshold=np.ones(len(ATTRIBUTES)),
        quartile_size=np.ones(len(ATTRIBUTES), dtype=int),
        metadata={"weights_sha256": file_sha256(tmp_path / "model.pt")},
    )
    vectors.save(tmp_path / VECTORS_FILENAME)
    apply = (
        "attribute",
        "apply",
        inputs["a"],
        "--model",
        tmp_path / "model.pt",
        "--attribute",
        "note_density",
    )
    assert run(*apply, "-o", tmp_path / "same.mid") == 0
    model, cfg = load_model(tmp_path / "model.pt")
    save_model(tmp_path / "model.pt", model, cfg, step=1)  # same folder, other weights file
    capsys.readouterr()
    assert run(*apply, "-o", tmp_path / "other.mid") == 1
    assert "computed with other weights" in capsys.readouterr().err
    assert not (tmp_path / "other.mid").exists()


@pytest.mark.parametrize(
    "config", ["hierdec-mel_16bar_tiny", "cat-drums_2bar_tiny", "hierdec-trio_16bar_tiny"]
)
def test_sample_for_every_kind(config, tmp_path):
    """16-bar, drum and trio models (untrained: only the shapes and the files matter here)."""
    from pipelines.representation import TRACKS
    from training.checkpoint import save_model
    from training.configs import get_config
    from training.model import MusicVAE

    cfg = get_config(config)
    torch.manual_seed(0)
    save_model(tmp_path / "model.pt", MusicVAE(cfg), cfg, step=0)
    assert run("sample", "--model", tmp_path, "-n", 1, "--seed", 4, "-t", 1.0, "-o", tmp_path) == 0
    model, _ = load_model(tmp_path / "model.pt")
    _, expected = generate.sample(model, 1, temperature=1.0, seed=4)
    tracks = midi_bytes_to_tokens(
        (tmp_path / "sample-000.mid").read_bytes(), cfg.kind, num_steps=cfg.max_seq_len
    )
    for k, spec in enumerate(TRACKS[cfg.kind]):
        want = expected[0, :, k].numpy()
        if spec.track_type == "melody":
            want = canonical_melody(want)
        np.testing.assert_array_equal(tracks[spec.column], want)
    assert (tmp_path / "sample-000.png").exists()
