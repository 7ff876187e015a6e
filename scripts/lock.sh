#!/usr/bin/env bash
# Regenerates every lock file (exact versions and hashes) from its .in file: make lock.
# One universal lock per set, for Python 3.11 and up on any platform: the same file installs the developer's
# venv (x86_64 or arm64) and the arm64 Lambda layer that sam build makes.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv-tools/bin/uv}
compile() {  # compile IN OUT [extra uv args]
  local in=$1 out=$2; shift 2
  echo "[lock] $out" >&2
  "$UV" pip compile --quiet --universal --python-version 3.11 --generate-hashes --no-header \
    --custom-compile-command "make lock" "$@" "$in" -o "$out"
}
compile layers/couponcore/requirements.in layers/couponcore/requirements.txt
# The migration function ships beside the layer: the layer's pins constrain it.
compile migrations/requirements.in migrations/requirements.txt -c layers/couponcore/requirements.txt
compile requirements/dev.in requirements/dev.txt -c layers/couponcore/requirements.txt
compile requirements/tools.in requirements/tools.txt
compile requirements/checkov.in requirements/checkov.txt
compile requirements/docs.in requirements/docs.txt
# LocalStack runs only on 3.13 (its own venv, scripts/sqs_emulator.sh): resolved for 3.13 on Linux.
echo "[lock] requirements/localstack.txt" >&2
"$UV" pip compile --quiet --python-version 3.13 --python-platform linux --generate-hashes --no-header \
  --custom-compile-command "make lock" requirements/localstack.in -o requirements/localstack.txt
