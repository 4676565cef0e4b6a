"""Session-wide test settings."""

import os

# Offline, these tools otherwise wait on the network.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

# Shared data fixtures (generated MIDI corpus, tiny real datasets); see tests/fixtures_data.py.
from fixtures_data import generated_corpus_dir, generated_files, tiny_datasets  # noqa: E402, F401

# Real MLflow stores: one migrated SQLite database per session, copied per test.
from mlflow_fixtures import migrated_mlflow_db, mlflow_store  # noqa: E402, F401
