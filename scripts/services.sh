#!/usr/bin/env bash
# Makes sure MariaDB and Redis answer on DB_HOST:DB_PORT and REDIS_HOST:REDIS_PORT.
#   1. a server that already answers is used as it is;
#   2. otherwise one is started from the installed binaries, with a private data directory under .local/;
#   3. otherwise, as root with apt-get, the Debian packages are installed first;
#   4. otherwise this script says exactly what is missing and fails.
# Usage: scripts/services.sh up | down | status | wrk | browser
#   wrk: the benchmark's load generator; browser: headless Chromium for the Swagger UI test
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.local"
PY="${PY:-$ROOT/.venv/bin/python}"
DB_HOST=${DB_HOST:-127.0.0.1}
DB_PORT=${DB_PORT:-3306}
DB_USER=${DB_USER:-root}
DB_PASSWORD=${DB_PASSWORD:-}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

mariadb_answers() {
  DB_HOST=$DB_HOST DB_PORT=$DB_PORT DB_USER=$DB_USER DB_PASSWORD=$DB_PASSWORD "$PY" - <<'PYEOF' 2>/dev/null
import os, pymysql
pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]), user=os.environ["DB_USER"],
                password=os.environ["DB_PASSWORD"], connect_timeout=1).close()
PYEOF
}

redis_answers() {
  REDIS_HOST=$REDIS_HOST REDIS_PORT=$REDIS_PORT "$PY" - <<'PYEOF' 2>/dev/null
import os, redis
redis.Redis(host=os.environ["REDIS_HOST"], port=int(os.environ["REDIS_PORT"]), socket_timeout=1).ping()
PYEOF
}

wait_for() {  # wait_for NAME CHECK SECONDS
  local name=$1 check=$2 deadline=$((SECONDS + $3))
  until $check; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
  say "$name answers"
}

find_binary() {  # first of the names found on PATH or in the sbin folders
  local name
  for name in "$@"; do
    for candidate in "$(command -v "$name" 2>/dev/null)" "/usr/sbin/$name" "/usr/bin/$name" "/usr/local/sbin/$name"; do
      [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
    done
  done
  return 1
}

install_packages() {  # install_packages PKG... when we are root on a Debian-like system
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing $* from the distribution's packages"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
  else
    return 1
  fi
}

local_host() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ]; }

start_mariadb() {
  local server installer
  server=$(find_binary mariadbd mysqld) || { install_packages mariadb-server && server=$(find_binary mariadbd mysqld); } \
    || die "MariaDB is not answering on $DB_HOST:$DB_PORT and no server is installed. Install it (Debian: apt-get install mariadb-server) or point DB_HOST/DB_PORT/DB_USER/DB_PASSWORD at one."
  installer=$(find_binary mariadb-install-db mysql_install_db) || die "mariadb-install-db not found beside $server"
  local dir="$STATE/mariadb"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    say "initialising a private MariaDB data directory in $dir/data"
    "$installer" --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=normal \
      >"$dir/install.log" 2>&1 || die "mariadb-install-db failed, see $dir/install.log"
  fi
  say "starting $server on port $DB_PORT"
  setsid "$server" --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --innodb-buffer-pool-size=256M --max-connections=500 </dev/null >/dev/null 2>&1 &
  wait_for MariaDB mariadb_answers 30 || die "MariaDB did not answer within 30 s, see $dir/error.log"
}

start_redis() {
  local server
  server=$(find_binary redis-server) || { install_packages redis-server && server=$(find_binary redis-server); } \
    || die "Redis is not answering on $REDIS_HOST:$REDIS_PORT and redis-server is not installed. Install it (Debian: apt-get install redis-server) or point REDIS_HOST/REDIS_PORT at one."
  local dir="$STATE/redis"
  mkdir -p "$dir"
  say "starting $server on port $REDIS_PORT"
  "$server" --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
  wait_for Redis redis_answers 10 || die "Redis did not answer within 10 s, see $dir/redis.log"
}

up() {
  [ -x "$PY" ] || die "$PY is missing: run 'make venv' first"
  if mariadb_answers; then say "MariaDB answers on $DB_HOST:$DB_PORT"
  elif local_host "$DB_HOST"; then start_mariadb
  else die "MariaDB does not answer on $DB_HOST:$DB_PORT (a remote host: start it there)"; fi
  if redis_answers; then say "Redis answers on $REDIS_HOST:$REDIS_PORT"
  elif local_host "$REDIS_HOST"; then start_redis
  else die "Redis does not answer on $REDIS_HOST:$REDIS_PORT (a remote host: start it there)"; fi
}

down() {  # stops only what this script started
  local pidfile
  for pidfile in "$STATE/mariadb/mysqld.pid" "$STATE/redis/redis.pid"; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null && say "stopped $(basename "$(dirname "$pidfile")")" || true
      rm -f "$pidfile"
    fi
  done
}

status() {
  mariadb_answers && say "MariaDB: up on $DB_HOST:$DB_PORT" || say "MariaDB: down on $DB_HOST:$DB_PORT"
  redis_answers && say "Redis: up on $REDIS_HOST:$REDIS_PORT" || say "Redis: down on $REDIS_HOST:$REDIS_PORT"
}

wrk_installed() {
  command -v wrk >/dev/null && return
  install_packages wrk && command -v wrk >/dev/null \
    || die "wrk (the benchmark's HTTP load generator) is missing. Install it (Debian: apt-get install wrk)."
}

browser_installed() {
  command -v chromium >/dev/null && return
  say "installing Debian's chromium for the Swagger UI test (once)"
  install_packages chromium && command -v chromium >/dev/null \
    || die "chromium (headless, for tests/e2e/test_swagger_ui.py) is missing. Install it (Debian: apt-get install chromium)."
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  wrk) wrk_installed ;;
  browser) browser_installed ;;
  *) die "usage: $0 up|down|status|wrk|browser" ;;
esac
