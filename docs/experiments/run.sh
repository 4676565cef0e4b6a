#!/usr/bin/env bash
# One run of the study: run.sh NAME MODEL STEPS [KEY=VALUE ...] -> runs/NAME/{eval_curve.csv,log}.
# Every run trains on one thread (two runs share a 2-core machine) and resumes when re-run.
set -euo pipefail
name=$1 model=$2 steps=$3; shift 3
root=${RUNS:-runs}
sets=(--set cpu_threads=1 --set checkpoint_every=200 --set max_minutes=0)
for kv in "$@"; do sets+=(--set "$kv"); done
mkdir -p "$root/$name"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true DVC_NO_ANALYTICS=1
python -m training.train --model "$model" --max-steps "$steps" --out "$root/$name" \
  --data "${DATASETS:-datasets}/$(python -c "from training.configs import get_config; print(get_config('$model').dataset)")" \
  --resume --no-mlflow --no-progress "${sets[@]}" >>"$root/$name/log" 2>&1
