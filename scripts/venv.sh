#!/usr/bin/env bash
# Creates .venv and installs the development requirements. Python 3.13 first: it is the Lambda runtime
# the template deploys (python3.13); 3.12 and 3.11 also run everything locally.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

pick_python() {
  local candidate
  # pyenv installs versions it does not put on PATH: look in its folder too.
  for candidate in "${PYTHON:-}" python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 python3.12 \
      "$HOME"/.pyenv/versions/3.12*/bin/python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

PYTHON_BIN=$(pick_python) || {
  echo "[venv] ERROR: Python 3.11 or newer is required (python3.13 matches the Lambda runtime). Install it, or set PYTHON=/path/to/python3.11." >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "[venv] creating .venv with $($PYTHON_BIN --version)" >&2
  "$PYTHON_BIN" -m venv .venv || { echo "[venv] ERROR: '$PYTHON_BIN -m venv' failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# The lock file (exact versions, hashes: make lock writes it from requirements/dev.in), then the layer's own
# package, editable and without dependencies (the lock has them).
.venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements/dev.txt
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e ./layers/couponcore
echo "[venv] packages installed" >&2
