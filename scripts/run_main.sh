#!/usr/bin/env bash
# Sets up .venv and the Fashion-MNIST data, then runs the main job,
# examples/fashion_mnist.py. Extra arguments go to the job (absl flags),
# e.g. `./scripts/run_main.sh --epochs=1 --method=ogd`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"

"$root/scripts/install_data.sh"

cd "$root"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"
if [[ "${KERAS_BACKEND:-}" == jax ]]; then
  # One OpenBLAS thread for jaxlib's CPU LAPACK (README, "Backends").
  export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
fi
exec "$root/.venv/bin/python" -m examples.fashion_mnist "$@"
