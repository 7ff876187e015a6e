#!/usr/bin/env bash
# Starts Prometheus scraping the local server's /metrics (observability/prometheus.yml) on 127.0.0.1:9090.
# Uses an installed `prometheus`; as root on Debian/Ubuntu, installs the distribution's package first.
# Usage: scripts/prometheus.sh up | down
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.local/prometheus"
say() { printf '[prometheus] %s\n' "$*" >&2; }

up() {
  mkdir -p "$STATE"
  if curl -sf -o /dev/null --max-time 1 http://127.0.0.1:9090/-/ready; then say "already answers on :9090"; return; fi
  local bin
  bin=$(command -v prometheus || true)
  if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing the distribution's prometheus package"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
    bin=$(command -v prometheus || true)
  fi
  [ -n "$bin" ] || { say "ERROR: prometheus is not installed (Debian: apt-get install prometheus)"; exit 1; }
  setsid "$bin" --config.file="$ROOT/observability/prometheus.yml" --storage.tsdb.path="$STATE/data" \
    --web.listen-address=127.0.0.1:9090 </dev/null >"$STATE/prometheus.log" 2>&1 &
  echo $! >"$STATE/prometheus.pid"
  say "started on http://127.0.0.1:9090 (scraping http://127.0.0.1:3000/metrics every 5 s)"
}

down() {
  [ -f "$STATE/prometheus.pid" ] && kill "$(cat "$STATE/prometheus.pid")" 2>/dev/null && say "stopped" || true
  rm -f "$STATE/prometheus.pid"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) say "usage: $0 up|down"; exit 2 ;;
esac
