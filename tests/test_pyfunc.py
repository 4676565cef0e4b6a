"""The register stage end to end, and the registered pyfunc used from a fresh process.

A tiny, randomly initialised 2-bar melody MusicVAE goes through what DVC runs,
`python -m evaluation.registry.register` in a project folder, against a real SQLite store. Then another
process, started in another folder with no path to the repo, loads ``models:/<name>@champion``
and calls every operation; this test checks what came back against the representation and
against the same model run here directly. A trio model (three tracks) goes through the same
adapter in-process, which is cheaper than a second registration.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from mlflow_fixtures import MlflowStore, copy_store

from evaluation.registry.pyfunc_model import example_tokens
from evaluation.registry.versions import CHAMPION, KEY_TAG, file_sha256, registered_model_name
from pipelines.representation import TRACKS, drum_hits, melody_notes, tokens_to_midi_bytes
from training import tracking
from training.checkpoint import load_model, save_model
from training.configs import get_config
from training.model import MusicVAE

REPO = Path(__file__).resolve().parents[1]
CONFIG = "cat-mel_2bar_tiny"
NAME = registered_model_name(CONFIG)
# Registering and loading in fresh processes: ~35 CPU-s for the module, mostly imports.
SLOW = pytest.mark.slow
ACCURACY = 0.25

# Runs in the fresh process: only mlflow, numpy and pandas, no project import.
CLIENT_SCRIPT = """
import base64, json, sys
import numpy as np, pandas as pd
import mlflow

model = mlflow.pyfunc.load_model(sys.argv[1])
example = json.loads(sys.argv[2])

def table(frame):
    out = {}
    for column in frame.columns:
        values = frame[column].tolist()
        if column == "midi":
            values = [base64.b64encode(bytes(v)).decode() for v in values]
        elif column in ("tokens", "z", "mu", "sigma"):
            values = [np.asarray(v).tolist() for v in values]
        out[column] = values
    return out

def error(frame, params):
    try:
        model.predict(frame, params=params)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None

results = {}
enc = model.predict(pd.DataFrame({"tokens": [example]}), params={"op": "encode", "seed": 3})
results["encode"] = table(enc)
mu = pd.DataFrame({"z": [np.asarray(v).tolist() for v in enc["mu"]]})
results["decode"] = table(model.predict(mu, params={"op": "decode", "temperature": 0.0}))
results["sample"] = table(model.predict(
    pd.DataFrame(), params={"op": "sample", "n": 3, "seed": 11, "temperature": 1.0}))
results["sample_again"] = table(model.predict(
    pd.DataFrame(), params={"op": "sample", "n": 3, "seed": 11, "temperature": 1.0}))
results["interpolate"] = table(model.predict(
    pd.DataFrame({"midi": [base64.b64decode(sys.argv[3]), base64.b64decode(sys.argv[3])]}),
    params={"op": "interpolate", "steps": 4, "temperature": 0.0}))
results["encode_midi"] = table(model.predict(
    pd.DataFrame({"midi": [base64.b64decode(sys.argv[3])]}), params={"op": "encode"}))
results["errors"] = {
    "short tokens": error(pd.DataFrame({"tokens": [example[:16]]}), {"op": "encode"}),
    "not midi": error(pd.DataFrame({"midi": [b"not a midi file"]}), {"op": "encode"}),
    "unknown op": error(pd.DataFrame(), {"op": "transpose"}),
    "sample with rows": error(pd.DataFrame({"tokens": [example]}), {"op": "sample"}),
    "one row to interpolate": error(pd.DataFrame({"tokens": [example]}), {"op": "interpolate"}),
}
import training.generate, training.model
results["code_from"] = [training.generate.__file__, training.model.__file__]
print("RESULTS " + json.dumps(results))
"""


def clean_env(store: MlflowStore, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: the store, no PYTHONPATH, no repo. One torch thread:
    a tiny model's small matrices only lose time to threads on a shared 2-core machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_REGISTRY_URI")}
    env.update(
        MLFLOW_TRACKING_URI=store.uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        OMP_NUM_THREADS="1",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def project(migrated_mlflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A project folder after train + evaluate: models/<cfg>/model.pt whose run is in the store,
    eval/<cfg>/metrics.json, and the evaluation metrics logged into the run at step 0."""
    root = tmp_path_factory.mktemp("project")
    store = copy_store(migrated_mlflow_db, root / "mlflow")
    client = store.client()
    experiment = store.create_experiment(tracking.experiment_name("mel_2bar"))
    run_id = client.create_run(experiment, run_name=CONFIG).info.run_id

    cfg = get_config(CONFIG)
    torch.manual_seed(0)
    weights = root / "models" / CONFIG / "model.pt"
    save_model(weights, MusicVAE(cfg), cfg, step=0, mlflow_run_id=run_id)
    metrics = {"sampled_accuracy": ACCURACY, "tf_accuracy": 0.3}
    (root / "eval" / CONFIG).mkdir(parents=True)
    (root / "eval" / CONFIG / "metrics.json").write_text(json.dumps(metrics))
    for key, value in metrics.items():
        client.log_metric(run_id, key, value, step=0)
    client.set_terminated(run_id)
    return {"root": root, "store": store, "run_id": run_id, "weights": weights}


def run_stage(project: dict) -> subprocess.CompletedProcess:
    """The DVC stage's command, run in the project folder (the repo's code on PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "evaluation.registry.register", "--model", CONFIG],
        cwd=project["root"],
        env=clean_env(project["store"], PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def registered(project: dict) -> dict:
    stage = run_stage(project)
    assert stage.returncode == 0, stage.stderr[-3000:]
    return json.loads((project["root"] / "models" / CONFIG / "registered.json").read_text())


@SLOW
def test_register_stage_registers_the_champion_with_provenance(
    project: dict, registered: dict
) -> None:
    assert registered["name"] == NAME
    assert (registered["version"], registered["alias"], registered["created"]) == (
        "1",
        CHAMPION,
        True,
    )
    client = project["store"].client()
    version = client.get_model_version_by_alias(NAME, CHAMPION)
    assert version.run_id == project["run_id"]  # logged into the training run
    assert version.tags[KEY_TAG] == file_sha256(project["weights"])
    assert float(version.tags["metric.sampled_accuracy"]) == ACCURACY
    assert version.tags["data_version"] == tracking.data_version()
    # (The working tree may turn dirty meanwhile: compare the commit only.)
    commit = version.tags["git_commit"].removesuffix("-dirty")
    assert commit == tracking.git_commit().removesuffix("-dirty")
    # The source is an MLflow 3 LoggedModel of that run, with the run's step-0 metrics.
    assert version.source.startswith("models:/")
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == project["run_id"]
    assert {m.key: m.value for m in logged.metrics}["sampled_accuracy"] == ACCURACY


@SLOW
def test_register_stage_is_idempotent(project: dict, registered: dict) -> None:
    again = run_stage(project)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already registered" in again.stdout
    second = json.loads((project["root"] / "models" / CONFIG / "registered.json").read_text())
    assert (second["version"], second["alias"], second["created"]) == ("1", CHAMPION, False)
    client = project["store"].client()
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert len(client.search_logged_models(experiment_ids=experiments)) == 1


@pytest.fixture(scope="module")
def served(project: dict, registered: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """What a user's process gets from the champion, run from an unrelated folder."""
    elsewhere = tmp_path_factory.mktemp("user")
    cfg = get_config(CONFIG)
    example = example_tokens(cfg.kind, cfg.num_bars)
    example_midi = tokens_to_midi_bytes(np.asarray(example), cfg.kind)
    client = subprocess.run(
        [
            *(sys.executable, "-c", CLIENT_SCRIPT),
            f"models:/{NAME}@{CHAMPION}",
            json.dumps(example),
            base64.b64encode(example_midi).decode(),
        ],
        cwd=elsewhere,
        env=clean_env(project["store"]),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert client.returncode == 0, client.stderr[-3000:]
    line = next(x for x in client.stdout.splitlines() if x.startswith("RESULTS "))
    return {"results": json.loads(line[len("RESULTS ") :]), "example": np.asarray(example)}


def check_music(tokens: list, midi: bytes | str, kind: str = "melody", bars: int = 2) -> np.ndarray:
    """Tokens are [T][K] in each track's range, and the MIDI file parses with their notes."""
    array = np.asarray(tokens)
    assert array.shape == (bars * 16, len(TRACKS[kind]))
    notes = 0
    for k, spec in enumerate(TRACKS[kind]):
        assert array[:, k].min() >= 0 and array[:, k].max() < spec.num_classes
        stream = array[:, k]
        notes += len(melody_notes(stream) if spec.track_type == "melody" else drum_hits(stream))
    data = base64.b64decode(midi) if isinstance(midi, str) else midi
    parsed = mido.MidiFile(file=io.BytesIO(data))
    note_ons = [m for t in parsed.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(note_ons) == notes
    return array


@SLOW
def test_pyfunc_loads_from_its_own_code_in_a_fresh_process(served: dict, project: dict) -> None:
    # The project's modules came from the logged model's code/ folder in the artifact store.
    for path in map(Path, served["results"]["code_from"]):
        assert not path.is_relative_to(REPO), path
        assert path.is_relative_to(project["store"].artifact_root), path
        assert "code" in path.parts, path


@SLOW
def test_encode_then_decode_matches_the_model_run_directly(served: dict, project: dict) -> None:
    from training.generate import decode, encode_posterior

    results = served["results"]
    model, cfg = load_model(project["weights"])
    mu, sigma = encode_posterior(model, served["example"][None])
    encoded = results["encode"]
    assert np.allclose(encoded["mu"], mu.numpy(), atol=1e-6)
    assert np.allclose(encoded["sigma"], sigma.numpy(), atol=1e-6)
    assert np.asarray(encoded["z"]).shape == (1, cfg.z_size)
    assert not np.allclose(encoded["z"], encoded["mu"])  # a posterior sample, not the mean

    decoded = check_music(results["decode"]["tokens"][0], results["decode"]["midi"][0])
    greedy = decode(model, mu, temperature=0.0)[0].numpy()
    assert np.array_equal(decoded, greedy)


@SLOW
def test_midi_input_reads_the_same_window_as_the_tokens(served: dict) -> None:
    results = served["results"]
    assert np.allclose(results["encode_midi"]["mu"], results["encode"]["mu"], atol=1e-6)


@SLOW
def test_sample_is_valid_music_and_reproducible_with_a_seed(served: dict) -> None:
    results = served["results"]
    sample = results["sample"]
    assert len(sample["tokens"]) == 3
    for tokens, midi in zip(sample["tokens"], sample["midi"], strict=True):
        check_music(tokens, midi)
    assert sample == results["sample_again"]


@SLOW
def test_interpolate_goes_from_a_to_b(served: dict) -> None:
    steps = served["results"]["interpolate"]
    assert steps["alpha"] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    for tokens, midi in zip(steps["tokens"], steps["midi"], strict=True):
        check_music(tokens, midi)
    # A and B are the same piece here, so every point is its reconstruction.
    assert all(np.allclose(z, steps["z"][0], atol=1e-5) for z in steps["z"])


@SLOW
def test_bad_requests_get_errors_that_say_what_is_wrong(served: dict) -> None:
    errors = served["results"]["errors"]
    assert "tokens must be [32][1]" in errors["short tokens"]
    assert "not a readable MIDI file" in errors["not midi"]
    assert "unknown op 'transpose'" in errors["unknown op"]
    assert "sample takes no input rows" in errors["sample with rows"]
    assert "exactly 2 rows" in errors["one row to interpolate"]


def test_trio_model_round_trip_through_the_adapter(tmp_path: Path) -> None:
    """Three token streams (melody, bass, drums) through the same predict, in-process."""
    import mlflow
    import pandas as pd

    from evaluation.registry.pyfunc_model import WEIGHTS_ARTIFACT, MusicVAEPyfunc

    cfg = get_config("hierdec-trio_16bar_tiny")
    torch.manual_seed(1)
    save_model(tmp_path / "model.pt", MusicVAE(cfg), cfg)
    pyfunc = MusicVAEPyfunc()
    context = mlflow.pyfunc.PythonModelContext({WEIGHTS_ARTIFACT: str(tmp_path / "model.pt")}, None)
    pyfunc.load_context(context)
    example = example_tokens("trio", 16)

    codes = pyfunc.predict(context, pd.DataFrame({"tokens": [example]}), {"op": "encode"})
    decoded = pyfunc.predict(
        context, pd.DataFrame({"z": list(codes["mu"])}), {"op": "decode", "temperature": 0.0}
    )
    from_midi = pyfunc.predict(
        context,
        pd.DataFrame({"midi": [tokens_to_midi_bytes(np.asarray(example), "trio")]}),
        {"op": "encode"},
    )

    assert np.asarray(codes["mu"].tolist()).shape == (1, cfg.z_size)
    check_music(decoded["tokens"][0], decoded["midi"][0], kind="trio", bars=16)
    assert np.allclose(from_midi["mu"][0], codes["mu"][0], atol=1e-6)


@pytest.mark.parametrize(
    ("temperature", "qpm", "accepted"),
    [
        (0.0, 120.0, True),
        (100.0, 1000.0, True),
        (100.5, 120.0, False),
        (-0.1, 120.0, False),
        (float("nan"), 120.0, False),
        (0.5, 1000.5, False),
        (0.5, 0.0, False),
        (0.5, float("inf"), False),
    ],
)
def test_cli_and_pyfunc_accept_the_same_decoding_parameters(
    temperature: float, qpm: float, accepted: bool, tmp_path: Path, capsys
) -> None:
    """One validation (training.generate.checked_*) behind both ways of asking the model."""
    import mlflow
    import pandas as pd

    from evaluation.cli.main import main as cli
    from evaluation.registry.pyfunc_model import WEIGHTS_ARTIFACT, MusicVAEPyfunc

    cfg = get_config("cat-mel_2bar_tiny")
    save_model(tmp_path / "model.pt", MusicVAE(cfg), cfg)
    pyfunc = MusicVAEPyfunc()
    context = mlflow.pyfunc.PythonModelContext({WEIGHTS_ARTIFACT: str(tmp_path / "model.pt")}, None)
    pyfunc.load_context(context)
    params = {"op": "sample", "n": 1, "seed": 0, "temperature": temperature, "qpm": qpm}
    try:
        pyfunc.predict(context, pd.DataFrame(), params)
        pyfunc_accepts = True
    except ValueError:
        pyfunc_accepts = False

    argv = ["sample", "--model", str(tmp_path / "model.pt"), "-n", "1", "--seed", "0"]
    argv += ["--temperature", str(temperature), "--qpm", str(qpm), "--no-png"]
    cli_accepts = cli([*argv, "-o", str(tmp_path / "out")]) == 0
    assert (pyfunc_accepts, cli_accepts) == (accepted, accepted), capsys.readouterr().err
