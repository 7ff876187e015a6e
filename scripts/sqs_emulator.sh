#!/usr/bin/env bash
# Makes sure the AWS APIs the functions call (SQS, Secrets Manager) answer on $SQS_EMULATOR_PORT (4566):
#   1. one that already answers is used;
#   2. otherwise LocalStack's open runtime is started on the host, from its own Python 3.13 venv
#      (.venv-localstack, created on first use: LocalStack runs only on 3.13 and pins its own boto3);
#   3. otherwise, without a Python 3.13, moto server is started from .venv, with a loud warning: its
#      SQS slows badly as a queue fills, so load tests and the flash-sale demo will crawl.
# Usage: scripts/sqs_emulator.sh up | down | status
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.local/sqs"
PORT=${SQS_EMULATOR_PORT:-4566}
URL="http://127.0.0.1:$PORT"
LOCALSTACK_VENV="$ROOT/.venv-localstack"
LOCALSTACK_LOCK="$ROOT/requirements/localstack.txt"  # exact versions and hashes (make lock)

say() { printf '[sqs] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

sqs_answers() {
  # Any SQS API: ListQueues over the query protocol answers 200 on LocalStack and moto alike.
  curl -sf -o /dev/null --max-time 2 -X POST "$URL/" -d 'Action=ListQueues&Version=2012-11-05' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=x'
}

secrets_answer() {
  curl -sf -o /dev/null --max-time 2 -X POST "$URL/" -d '{}' -H 'X-Amz-Target: secretsmanager.ListSecrets' \
    -H 'Content-Type: application/x-amz-json-1.1' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x'
}

answers() { sqs_answers && secrets_answer; }

wait_for() {
  local deadline=$((SECONDS + $1))
  until answers; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}

python313() {
  local candidate
  for candidate in "${PYTHON313:-}" python3.13 "$HOME/.pyenv/versions/3.13"*/bin/python3.13; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
    "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo "$candidate"; return 0; }
  done
  return 1
}

start_localstack() {
  if [ ! -x "$LOCALSTACK_VENV/bin/python" ] || ! "$LOCALSTACK_VENV/bin/python" -c 'import localstack' 2>/dev/null; then
    local py
    py=$(python313) || return 1
    say "installing LocalStack's runtime into $LOCALSTACK_VENV (about 40 s, once)"
    "$py" -m venv "$LOCALSTACK_VENV"
    "$LOCALSTACK_VENV/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r "$LOCALSTACK_LOCK" >"$STATE/install.log" 2>&1 \
      || die "LocalStack install failed, see $STATE/install.log"
  fi
  say "starting LocalStack (SQS and Secrets Manager) on $URL"
  # No DNS server, no certificate download, no analytics: nothing leaves this machine. Only the two services
  # the functions call, and without the CloudWatch metrics LocalStack's SQS would publish about itself:
  # after a load test they kept a core busy and tripled every call's latency.
  GATEWAY_LISTEN="127.0.0.1:$PORT" LOCALSTACK_VOLUME_DIR="$STATE/localstack" SERVICES=sqs,secretsmanager \
    SQS_DISABLE_CLOUDWATCH_METRICS=1 EAGER_SERVICE_LOADING=1 SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 DISABLE_EVENTS=1 \
    setsid "$LOCALSTACK_VENV/bin/python" -m localstack.runtime.main </dev/null >"$STATE/localstack.log" 2>&1 &
  echo $! >"$STATE/emulator.pid"
  wait_for 60 || die "LocalStack did not answer within 60 s, see $STATE/localstack.log"
  say "LocalStack answers"
}

start_moto() {
  local moto="$ROOT/.venv/bin/moto_server"
  [ -x "$moto" ] || die "no SQS emulator: neither Python 3.13 (for LocalStack) nor $moto (run 'make venv')"
  say "WARNING: no Python 3.13 for LocalStack; starting moto server instead. Its SQS slows badly as a queue"
  say "WARNING: fills: fine for functional tests, far too slow for load tests (install python3.13 for LocalStack)."
  setsid "$moto" -H 127.0.0.1 -p "$PORT" </dev/null >"$STATE/moto.log" 2>&1 &
  echo $! >"$STATE/emulator.pid"
  wait_for 20 || die "moto server did not answer within 20 s, see $STATE/moto.log"
  say "moto server answers"
}

up() {
  mkdir -p "$STATE"
  if answers; then say "SQS and Secrets Manager answer on $URL"; return; fi
  if sqs_answers; then
    # An emulator of ours from before Secrets Manager was needed: start it again with both.
    [ -f "$STATE/emulator.pid" ] || die "an SQS API on $URL has no Secrets Manager: stop it, or set SQS_EMULATOR_PORT"
    down
    sleep 1
  fi
  start_localstack || start_moto
}

down() {
  if [ -f "$STATE/emulator.pid" ]; then
    kill -- "-$(cat "$STATE/emulator.pid")" 2>/dev/null || kill "$(cat "$STATE/emulator.pid")" 2>/dev/null || true
    rm -f "$STATE/emulator.pid"
    say "stopped the SQS emulator"
  fi
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) answers && say "up on $URL" || say "down on $URL" ;;
  *) die "usage: $0 up|down|status" ;;
esac
