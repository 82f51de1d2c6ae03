#!/usr/bin/env bash
# Create or refresh ./.venv with spatialmix and all three Keras backends (TensorFlow, JAX,
# PyTorch CPU), Ray (`--executor ray`, tests/test_ray.py) and the test tools. Re-running is
# cheap: it reinstalls only when pyproject.toml or the constraints changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Fashion-MNIST's IDX files for the `fashion_mnist_idx` dataset: Debian's package, when this
# runs as root (CI) on a system that has apt; elsewhere tests that need them say so and skip.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
    || echo "setup: could not install dataset-fashion-mnist (the fashion_mnist_idx tests will skip)"
fi
venv=.venv
stamp=$venv/.spatialmix-installed
want=$(cat pyproject.toml scripts/constraints-cpu.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
echo "setup: creating .venv and installing spatialmix[jax,torch,ray,dev] (first time: a few minutes)"
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -c scripts/constraints-cpu.txt -e ".[jax,torch,ray,dev]"
echo "$want" > "$stamp"
"$venv/bin/python" -c "import keras, tensorflow, jax, torch, ray; print('setup: keras', keras.__version__, '| tensorflow', tensorflow.__version__, '| jax', jax.__version__, '| torch', torch.__version__, '| ray', ray.__version__)"
