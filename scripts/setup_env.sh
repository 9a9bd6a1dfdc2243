#!/usr/bin/env bash
# Creates or updates the virtual environment in .venv/ at the repository root.
#
# Installs keras_opt[dev] (editable) with the exact tested versions of
# constraints.txt. Idempotent: a stamp file keyed on setup.py, constraints.txt
# and the interpreter version makes a second run return at once. Set PYTHON
# to choose the interpreter (3.11+).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.keras_opt_setup"
python="${PYTHON:-python3}"

mkdir -p "$venv"
exec 9>"$venv/.setup.lock"
flock 9 2>/dev/null || true

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    2>/dev/null; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: keras_opt needs Python 3.11 or newer; $python is" \
      "$("$python" -V 2>&1). Set PYTHON=/path/to/python3.11." >&2
    exit 1
  fi
  echo "Creating $venv with $("$python" -V 2>&1)"
  "$python" -m venv "$venv"
fi

key="$( { cat "$root/setup.py" "$root/constraints.txt"; "$venv/bin/python" -VV; } |
  sha256sum)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$key" ]]; then
  exit 0
fi

echo "Installing keras_opt[dev] and its pinned dependencies into .venv" \
  "(about 1-2 minutes on a fresh machine)"
start=$SECONDS
"$venv/bin/python" -m pip install --disable-pip-version-check -q \
  -e "$root[dev]" -c "$root/constraints.txt"
echo "$key" > "$stamp"
echo "Installed in $((SECONDS - start)) s"
