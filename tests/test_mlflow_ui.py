"""The MLflow UI in a real headless Chromium: runs, their metrics, and the comparison view.

The server is started the way `make ui` starts it (`mlflow ui` with a relative SQLite store and
artifact root, bound to 127.0.0.1) over a store holding two training runs. Screenshots go to
test-artifacts/ (git-ignored) for a person to look at.

Needs Chromium (Debian: `apt-get install chromium`) and the `playwright` Python package (whose
wheel brings its driver; no `playwright install`, the system Chromium is used). Without them the
test skips and says why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow_fixtures import MlflowStore, copy_store

# ~50 s on 2 cores: server and browser start-up dominate.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Two runs whose metrics differ; three decimals, so that every view shows them unrounded.
RUNS = {
    "hierdec-run": {"params": {"decoder": "hierarchical"}, "sampled_accuracy": 0.812},
    "flat-run": {"params": {"decoder": "flat"}, "sampled_accuracy": 0.438},
}
METRIC = "sampled_accuracy"
MODEL_NAME = "musicvae-ui-test"
SERVER_START_TIMEOUT_S = 120
RENDER_TIMEOUT_MS = 60_000


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """A headless system Chromium driven by Playwright, or a skip that names what is missing."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("BROWSER TEST SKIPPED: the `playwright` package is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium on PATH (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, headless=True
            )
        except Error as error:
            pytest.skip(f"BROWSER TEST SKIPPED: {executable} does not start: {error}")
        yield chromium
        chromium.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_runs(store: MlflowStore) -> tuple[str, dict[str, str]]:
    """An experiment with the two RUNS; returns (experiment id, run name -> run id)."""
    client = store.client()
    experiment_id = client.create_experiment(
        "musicvae-ui-test", artifact_location=str(store.artifact_root / "ui-test")
    )
    run_ids = {}
    for name, run in RUNS.items():
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        for key, value in run["params"].items():
            client.log_param(run_id, key, value)
        for step, fraction in enumerate((0.5, 0.8, 1.0)):
            client.log_metric(run_id, METRIC, round(run[METRIC] * fraction, 3), step=step)
        client.set_terminated(run_id)
        run_ids[name] = run_id
    # Both registered as versions of one model, the better one champion (what register does).
    client.create_registered_model(MODEL_NAME)
    for name, alias in (("flat-run", "challenger"), ("hierdec-run", "champion")):
        run = client.get_run(run_ids[name])
        version = client.create_model_version(
            MODEL_NAME,
            source=run.info.artifact_uri,
            run_id=run.info.run_id,
            tags={f"metric.{METRIC}": str(RUNS[name][METRIC])},
        )
        client.set_registered_model_alias(MODEL_NAME, alias, version.version)
    return experiment_id, run_ids


@pytest.fixture(scope="module")
def ui_server(
    migrated_mlflow_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`mlflow ui` over a store with two runs; yields (base URL, experiment id, run ids)."""
    home = tmp_path_factory.mktemp("ui-home")
    experiment_id, run_ids = make_runs(copy_store(migrated_mlflow_db, home / "mlflow"))
    port = free_port()
    log_path = home / "server.log"
    command = [
        *(sys.executable, "-m", "mlflow", "ui"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--backend-store-uri", "sqlite:///mlflow/mlflow.db"),
        *("--default-artifact-root", "mlflow/artifacts"),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with open(log_path, "wb") as log:
        # Its own process group: the server's workers end with it.
        server = subprocess.Popen(
            command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow ui did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base_url, experiment_id, run_ids
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_experiment_page_lists_both_runs_with_their_metric(browser, ui_server) -> None:
    base_url, experiment_id, run_ids = ui_server
    # Wide enough for the metric columns to sit beside the assistant panel in the screenshot.
    page = browser.new_page(viewport={"width": 2400, "height": 900})
    page.goto(f"{base_url}/#/experiments/{experiment_id}/runs", wait_until="domcontentloaded")
    for name in RUNS:
        page.get_by_text(name, exact=True).first.wait_for(timeout=RENDER_TIMEOUT_MS)

    # MLflow 3 shows no metric columns by default: add the metric and the param, as a user would.
    page.get_by_role("button", name="Columns").click()
    for column in (METRIC, "decoder"):
        page.get_by_text(column, exact=True).last.click()
    page.keyboard.press("Escape")
    page.get_by_text(f"{RUNS['flat-run'][METRIC]:.3f}", exact=True).first.wait_for(
        timeout=RENDER_TIMEOUT_MS
    )
    screenshot(page, "mlflow-ui-experiment.png")

    # The runs table is split in a pinned and a scrolling part; a run's cells share its row-id.
    for name, run_id in run_ids.items():
        row_text = " ".join(page.locator(f'[row-id="{run_id}"]').all_inner_texts()).split()
        assert name in row_text
        assert f"{RUNS[name][METRIC]:.3f}" in row_text
        assert RUNS[name]["params"]["decoder"] in row_text
    page.close()


def test_compare_view_shows_both_runs_side_by_side(browser, ui_server) -> None:
    base_url, experiment_id, run_ids = ui_server
    ids = list(run_ids.values())
    page = browser.new_page(viewport={"width": 1800, "height": 1400})
    page.goto(
        f"{base_url}/#/compare-runs?runs={json.dumps(ids)}&experiments={json.dumps([experiment_id])}",
        wait_until="domcontentloaded",
    )
    page.get_by_text("Run details").wait_for(timeout=RENDER_TIMEOUT_MS)
    values = [f"{RUNS[name][METRIC]:.3f}" for name in run_ids]
    for value in values:
        page.get_by_text(value, exact=True).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    # The parallel-coordinates plot draws last; wait for it so that the screenshot shows it.
    page.locator("svg text", has_text=METRIC).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    screenshot(page, "mlflow-ui-compare.png")

    # "Run details" is a table with one column per run: the run ids, the names and the metric's
    # values must come in the same column order.
    details = page.inner_text("body").split("Run details", 1)[1]
    lines = [line.strip() for line in details.splitlines() if line.strip()]
    id_line = next(line for line in lines if line.startswith("Run ID:"))
    columns = sorted(ids, key=id_line.index)
    names = {run_id: name for name, run_id in run_ids.items()}
    assert all(run_id in id_line for run_id in ids)
    metric_at = lines.index(METRIC)
    shown = lines[metric_at + 1 : metric_at + 1 + len(ids)]
    assert shown == [f"{RUNS[names[run_id]][METRIC]:.3f}" for run_id in columns]
    name_at = next(i for i, line in enumerate(lines) if line.startswith("Run Name:"))
    assert [line for line in lines[name_at : name_at + 4] if line in RUNS] == [
        names[run_id] for run_id in columns
    ]
    page.close()


def test_registered_model_page_shows_versions_with_aliases_and_metrics(browser, ui_server) -> None:
    base_url, _, _ = ui_server
    page = browser.new_page(viewport={"width": 1800, "height": 900})
    page.goto(f"{base_url}/#/models/{MODEL_NAME}", wait_until="domcontentloaded")
    page.get_by_text("Version 2", exact=True).wait_for(timeout=RENDER_TIMEOUT_MS)
    screenshot(page, "mlflow-ui-registered-model.png")

    # Version 1 came from flat-run, version 2 from hierdec-run (see make_runs).
    expected = {"1": ("flat-run", "challenger"), "2": ("hierdec-run", "champion")}
    for version, (run_name, alias) in expected.items():
        row = page.get_by_role("row").filter(has_text=f"Version {version}")
        text = row.inner_text()
        assert alias in text
        assert f"{RUNS[run_name][METRIC]:.3f}" in text
    page.close()
