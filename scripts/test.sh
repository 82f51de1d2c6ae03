#!/usr/bin/env bash
# The whole test suite, on all three Keras backends. Sets up its own environment first.
#   zoo, serialization and attack tests (marker `backends`): tensorflow, jax and torch
#   engine, recipe and front-end tests: once, on the default backend
# Extra arguments go to every pytest call (e.g. -x, -k name).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
out=.test-results
rm -rf "$out" && mkdir -p "$out"
status=0
for backend in tensorflow jax torch; do
  echo "=== backend: $backend (zoo, serialization, attacks)"
  KERAS_BACKEND=$backend "$py" -m pytest -m backends --junitxml="$out/$backend.xml" "$@" || status=1
done
echo "=== default backend: engine, recipes, front ends"
"$py" -m pytest -m "not backends" --junitxml="$out/engine.xml" "$@" || status=1
"$py" scripts/summarize_tests.py "$out"/*.xml || status=1
exit $status
