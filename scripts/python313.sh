#!/usr/bin/env bash
# Prints the folder of a python3.13, the Lambda runtime's Python that `sam build` needs on PATH whatever
# Python the venv has: on PATH, in pyenv's folder, or installed with uv (python-build-standalone) as a last
# resort.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
for candidate in python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
  # The interpreter's own folder (a pyenv shim on PATH may refuse to run a version that is not selected).
  found=$("$candidate" -c 'import sys; print(sys.executable if sys.version_info[:2] == (3, 13) else "")' 2>/dev/null) || continue
  [ -n "$found" ] && { dirname "$found"; exit 0; }
done
UV="$ROOT/.venv-tools/bin/uv"
[ -x "$UV" ] || { echo "[python313] no python3.13 and no uv: run make check-template's tools install first" >&2; exit 1; }
echo "[python313] installing Python 3.13 with uv (sam build of the python3.13 runtime needs it)" >&2
"$UV" python install 3.13 >&2
dirname "$("$UV" python find 3.13)"
