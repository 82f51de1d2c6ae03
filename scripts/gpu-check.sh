#!/usr/bin/env bash
# The GPU check: one prepared run, under 8 minutes, for a machine with an NVIDIA GPU and no
# internet. It prints nvidia-smi, runs `spatialmix bench` at paper size on every installed
# backend against the PyTorch peer on the same GPU (float32 and mixed precision), trains one
# epoch of convmixer-mixing's paper-scale ConvMixer (width 128, kernel 8, patch 1) on
# synthetic CIFAR-shaped data per backend, and writes everything into one JSON file
# (recipes/perf/gpucheck.py says what each step measures).
#
#   bash scripts/gpu-check.sh [--out gpu-check.json]     # on the GPU machine
#   bash scripts/gpu-check.sh --cpu [--out FILE]         # the same steps on the CPU, cut small:
#                                                        # the script itself works (slow test tier)
# Python: $PYTHON, else .venv/bin/python, else python3 (with this project's dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=gpu
out=gpu-check.json
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) mode=cpu ;;
    --out) out="${2:?--out needs a file name}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1 (use --cpu, --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"
if [ "$mode" = gpu ]; then
  if ! command -v nvidia-smi >/dev/null; then
    echo "gpu-check: nvidia-smi not found: no NVIDIA driver on this machine (--cpu checks the script itself)" >&2
    exit 2
  fi
  nvidia-smi
fi
if [ "$mode" = gpu ]; then
  # 8 minutes in all: the bench starts no round after 240 s, each epoch has its own limit
  exec timeout 480 "$py" -m recipes.perf.gpucheck --mode gpu --out "$out"
fi
exec "$py" -m recipes.perf.gpucheck --mode cpu --out "$out"
