#!/usr/bin/env bash
# Sets up .venv, then runs the test suite with pytest. Extra arguments go to
# pytest, e.g. `./scripts/run_tests.sh tests/examples_test.py -x`. The
# Keras backend is TensorFlow unless KERAS_BACKEND says otherwise:
# `KERAS_BACKEND=jax ./scripts/run_tests.sh` (tests/backends.py lists what
# is TensorFlow-only; the run ends with the backend's counts).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"

cd "$root"
if [[ "${KERAS_BACKEND:-}" == jax ]]; then
  # jaxlib's CPU LAPACK kernels run on SciPy's OpenBLAS, whose threads
  # contend with XLA's thread pool: one OpenBLAS thread is faster (README,
  # "Backends").
  export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
fi
if [[ $# -eq 0 ]]; then
  set -- tests
fi
exec "$root/.venv/bin/python" -m pytest -rfEs "$@"
