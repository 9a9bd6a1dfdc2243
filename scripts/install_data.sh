#!/usr/bin/env bash
# Installs the Debian package dataset-fashion-mnist (Fashion-MNIST, offline)
# unless /usr/share/datasets/fashion-mnist exists. Needs root and apt-get;
# otherwise prints how to get the data and returns 0, or 1 with --required.
set -uo pipefail

debian_dir=/usr/share/datasets/fashion-mnist
required=0
[[ "${1:-}" == --required ]] && required=1
if [[ -d "$debian_dir" ]]; then
  exit 0
fi
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "Installing the Debian package dataset-fashion-mnist"
  if apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        dataset-fashion-mnist >/dev/null; then
    exit 0
  fi
  echo "warning: apt-get install dataset-fashion-mnist failed" >&2
else
  echo "note: $debian_dir is missing. For offline data run" \
    "'sudo apt-get install -y dataset-fashion-mnist'; otherwise the main" \
    "job downloads Fashion-MNIST through TensorFlow Datasets." >&2
fi
exit "$required"
