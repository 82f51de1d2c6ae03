#!/usr/bin/env bash
# The whole test suite, on all three Keras backends. Sets up its own environment first.
#   zoo, serialization and attack tests (marker `backends`): once per backend
#   engine, recipe and front-end tests: once, on the default backend
# Tiers: by default the `slow` tier is skipped (this is what CI runs); `--all` as the first
# argument runs it too (kill -9 resume, paper-size builds and steps, the bench end to end,
# full cross-backend matrices). Other arguments go to every pytest call (e.g. -x, -k name).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
py=.venv/bin/python
tier=" and not slow"
if [ "${1:-}" = "--all" ]; then
  tier=""
  shift
fi
out=.test-results
rm -rf "$out" && mkdir -p "$out"
backends=$("$py" -c "from recipes.core.choices import BACKENDS; print(*BACKENDS)")
default=$("$py" -c "from recipes.core.choices import default_backend; print(default_backend())")
status=0
for backend in $backends; do
  echo "=== backend: $backend (zoo, serialization, attacks)"
  KERAS_BACKEND=$backend "$py" -m pytest -m "backends$tier" --junitxml="$out/$backend.xml" "$@" || status=1
done
echo "=== default backend ($default): engine, recipes, front ends"
KERAS_BACKEND=$default "$py" -m pytest -m "not backends$tier" --junitxml="$out/engine.xml" "$@" || status=1
"$py" scripts/summarize_tests.py "$out"/*.xml || status=1
exit $status
