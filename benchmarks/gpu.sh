#!/usr/bin/env bash
# Speed and scale on a GPU machine, unattended: records the card, runs the default pipeline
# on Adult end to end (device auto picks CUDA), then times 1M-row teacher training,
# distillation and generation, and 1M-row generation throughput. Results land in
# ${OUT:-benchmarks/output/gpu}: gpu.txt, speed.json, scale.json, throughput.json, log.txt.
#
#   bash benchmarks/gpu.sh            # about 5 minutes on one H100-class card
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT_DIR=${OUT:-benchmarks/output/gpu}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"

export DO_NOT_TRACK=true PREFECT_SERVER_ANALYTICS_ENABLED=false
export MLFLOW_DISABLE_TELEMETRY=true GX_ANALYTICS_ENABLED=false

{
  date -u +"%Y-%m-%dT%H:%M:%SZ"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')"
  nproc
  cat /proc/loadavg
} | tee "$OUT_DIR/gpu.txt"

step() {
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$LOG"
  # A step that overruns is stopped and recorded, so the later steps still run.
  if ! timeout "$limit" "$@" >>"$LOG" 2>&1; then
    echo "!! $name failed or ran past ${limit}s" | tee -a "$LOG"
  fi
}

step speed 240 "$PYTHON" -m benchmarks.speed --output "$OUT_DIR/speed.json"
step scale 240 "$PYTHON" -m benchmarks.scale --sizes 100000 1000000 --device cuda \
  --output "$OUT_DIR/scale.json"
step throughput 120 "$PYTHON" -m benchmarks.throughput --rows 1000000 --device cuda \
  --output "$OUT_DIR/throughput.json"
echo "done $(date -u +%T)" | tee -a "$LOG"
