#!/usr/bin/env bash
# Sets up .venv and the Fashion-MNIST data, then runs the main job,
# examples/fashion_mnist.py. Extra arguments go to the job (absl flags),
# e.g. `./scripts/run_main.sh --epochs=1 --orthogonalizer=ogd`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"

debian_dir=/usr/share/datasets/fashion-mnist
if [[ ! -d "$debian_dir" ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "Installing the Debian package dataset-fashion-mnist"
    if ! { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
          dataset-fashion-mnist >/dev/null; }; then
      echo "warning: apt-get failed; the job will try a network download" >&2
    fi
  else
    echo "note: $debian_dir is missing. For offline data run" \
      "'sudo apt-get install -y dataset-fashion-mnist'; otherwise the job" \
      "downloads Fashion-MNIST through TensorFlow Datasets." >&2
  fi
fi

cd "$root"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"
exec "$root/.venv/bin/python" -m examples.fashion_mnist "$@"
