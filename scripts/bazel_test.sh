#!/usr/bin/env bash
# Sets up .venv and Bazel (Debian bazel-bootstrap), then runs
# `bazel test` with the virtual environment's python3 first on PATH.
# Arguments are target patterns and options; default: //...
# e.g. `./scripts/bazel_test.sh //:tests/examples_test`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup_env.sh"

if ! command -v bazel >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "Installing the Debian package bazel-bootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap \
      >/dev/null
  else
    echo "error: bazel not found. Run" \
      "'sudo apt-get install -y bazel-bootstrap' (Bazel 4.2)." >&2
    exit 1
  fi
fi

cd "$root"
if [[ $# -eq 0 ]]; then
  set -- //...
fi
PATH="$root/.venv/bin:$PATH" exec bazel --batch test "$@"
