#!/usr/bin/env bash
# Sets up .venv, then runs the test suite with pytest. Extra arguments go to
# pytest, e.g. `./scripts/run_tests.sh tests/examples_test.py -x`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"

cd "$root"
if [[ $# -eq 0 ]]; then
  set -- tests
fi
exec "$root/.venv/bin/python" -m pytest -rfEs "$@"
