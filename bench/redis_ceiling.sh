#!/usr/bin/env bash
# What one Redis shard does per second here with the reservation script (the V2 path's only Redis call
# before a sell-out), with it refusing a sold-out coupon, and with a plain GET (the cached view), from
# redis-benchmark (C, 50 connections, pipelining off). Uses db 13 of REDIS_HOST:REDIS_PORT and empties it.
#   bench/redis_ceiling.sh [requests=200000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
HOST=${REDIS_HOST:-127.0.0.1}; PORT=${REDIS_PORT:-6379}
cli() { redis-cli -h "$HOST" -p "$PORT" -n 13 "$@"; }
script=$(PYTHONPATH=layers/couponcore .venv/bin/python -c 'from couponcore.adapters.reservations import RESERVE_SCRIPT; print(RESERVE_SCRIPT)')
sha=$(cli SCRIPT LOAD "$script")
keys=(3 'coupon:{1}:reserved' 'coupon:{1}:pending' 'coupon:{1}:rejected')
rate() {  # rate LABEL COMMAND...
  local line
  line=$(redis-benchmark -h "$HOST" -p "$PORT" --dbnum 13 -c 50 -n "$N" -r 100000000 -q "${@:2}" | tr '\r' '\n' | grep 'requests per second' | tail -1)
  printf '| %s | %s |\n' "$1" "$(echo "$line" | sed -E 's/.*: ([0-9.]+) requests per second.*/\1/')"
}
cli FLUSHDB >/dev/null
echo "| one shard, $N calls, 50 connections (redis-benchmark) | calls/s |"
echo "|---|---:|"
rate "reservation script, seats left (SISMEMBER, SCARD, SADD, HSET, SREM)" EVALSHA "$sha" "${keys[@]}" __rand_int__ 1000000000 token 1
cli FLUSHDB >/dev/null
cli SADD 'coupon:{1}:reserved' taken >/dev/null
rate "reservation script, sold out (SISMEMBER, SCARD)" EVALSHA "$sha" "${keys[@]}" __rand_int__ 1 token 1
cli SET 'coupon:{1}:view' "$(printf '%0300d' 0)" >/dev/null
rate "GET of the cached coupon view (300 bytes)" GET 'coupon:{1}:view'
cli FLUSHDB >/dev/null
