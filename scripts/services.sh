#!/usr/bin/env bash
# Makes sure the project's own MariaDB and Redis answer on 127.0.0.1:DB_PORT (3307) and :REDIS_PORT (6380)
# over TLS only, with certificates from the user's local CA (~/.local/share/coupon-local/tls, shared by every
# checkout; as RDS and ElastiCache: verified TLS).
#   1. servers of ours that already answer are used as they are;
#   2. otherwise they are started from the installed binaries, with private data directories under .local/;
#   3. otherwise, as root with apt-get, the Debian packages are installed first;
#   4. otherwise this script says exactly what is missing and fails.
# Servers already running on the usual ports (3306, 6379) are left alone: they speak no TLS.
# Usage: scripts/services.sh up | down | status | wrk | browser | iam
#   wrk: the benchmark's load generator; browser: headless Chromium for the Swagger UI test;
#   iam: Node.js for the IAM policy evaluator (localdev/iam_simulator)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.local"
PY="${PY:-$ROOT/.venv/bin/python}"
DB_PORT=${DB_PORT:-3307}
REDIS_PORT=${REDIS_PORT:-6380}
TLS="${XDG_DATA_HOME:-$HOME/.local/share}/coupon-local/tls"

say() { printf '[services] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

mariadb_answers() {  # over TLS, verified against the local CA
  DB_PORT=$DB_PORT CA="$TLS/ca.pem" "$PY" - <<'PYEOF' 2>/dev/null
import os, ssl, pymysql
context = ssl.create_default_context(cafile=os.environ["CA"])
pymysql.connect(host="127.0.0.1", port=int(os.environ["DB_PORT"]), user="root", ssl=context, connect_timeout=1).close()
PYEOF
}

redis_answers() {
  REDIS_PORT=$REDIS_PORT CA="$TLS/ca.pem" "$PY" - <<'PYEOF' 2>/dev/null
import os, redis
redis.Redis(host="127.0.0.1", port=int(os.environ["REDIS_PORT"]), ssl=True, ssl_ca_certs=os.environ["CA"], socket_timeout=1).ping()
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

start_mariadb() {
  local server installer
  server=$(find_binary mariadbd mysqld) || { install_packages mariadb-server && server=$(find_binary mariadbd mysqld); } \
    || die "MariaDB is not installed. Install it (Debian: apt-get install mariadb-server)."
  installer=$(find_binary mariadb-install-db mysql_install_db) || die "mariadb-install-db not found beside $server"
  local dir="$STATE/mariadb"
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    say "initialising a private MariaDB data directory in $dir/data"
    "$installer" --no-defaults --user="$(id -un)" --datadir="$dir/data" --auth-root-authentication-method=normal \
      >"$dir/install.log" 2>&1 || die "mariadb-install-db failed, see $dir/install.log"
  fi
  say "starting $server on port $DB_PORT (TLS only)"
  setsid "$server" --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
    --innodb-buffer-pool-size=256M --max-connections=500 --skip-log-bin \
    --ssl-ca="$TLS/ca.pem" --ssl-cert="$TLS/server.pem" --ssl-key="$TLS/server-key.pem" \
    --require-secure-transport=ON </dev/null >/dev/null 2>&1 &
  wait_for MariaDB mariadb_answers 30 || die "MariaDB did not answer within 30 s, see $dir/error.log"
  # As on RDS, no anonymous accounts: ''@'localhost' would shadow every user@'%' logging in from here.
  "$PY" - "$dir/mysqld.sock" <<'PYEOF' || die "could not drop MariaDB's anonymous accounts"
import sys, pymysql
connection = pymysql.connect(unix_socket=sys.argv[1], user="root")
with connection.cursor() as cursor:
    cursor.execute("SELECT host FROM mysql.user WHERE user = ''")
    for (host,) in cursor.fetchall():
        cursor.execute("DROP USER ''@%s", (host,))
connection.close()
PYEOF
}

start_redis() {
  local server
  server=$(find_binary redis-server) || { install_packages redis-server && server=$(find_binary redis-server); } \
    || die "redis-server is not installed. Install it (Debian: apt-get install redis-server)."
  local dir="$STATE/redis"
  mkdir -p "$dir"
  say "starting $server on port $REDIS_PORT (TLS only)"
  "$server" --port 0 --tls-port "$REDIS_PORT" --tls-cert-file "$TLS/server.pem" --tls-key-file "$TLS/server-key.pem" \
    --tls-ca-cert-file "$TLS/ca.pem" --tls-auth-clients no --bind 127.0.0.1 --daemonize yes --save '' \
    --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null \
    || die "redis-server did not start with TLS (a build without TLS support?), see $dir/redis.log"
  wait_for Redis redis_answers 10 || die "Redis did not answer within 10 s, see $dir/redis.log"
}

port_taken() { "$PY" -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', int(sys.argv[1]))) != 0)" "$1"; }

up() {
  [ -x "$PY" ] || die "$PY is missing: run 'make venv' first"
  "$PY" -m localdev.tls "$TLS" >/dev/null || die "could not write the local CA into $TLS"
  if mariadb_answers; then say "MariaDB answers on 127.0.0.1:$DB_PORT (TLS)"
  elif port_taken "$DB_PORT"; then die "something on 127.0.0.1:$DB_PORT is not a MariaDB with a certificate of $TLS: stop it, or set DB_PORT"
  else start_mariadb; fi
  if redis_answers; then say "Redis answers on 127.0.0.1:$REDIS_PORT (TLS)"
  elif port_taken "$REDIS_PORT"; then die "something on 127.0.0.1:$REDIS_PORT is not a Redis with a certificate of $TLS: stop it, or set REDIS_PORT"
  else start_redis; fi
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
  mariadb_answers && say "MariaDB: up on 127.0.0.1:$DB_PORT" || say "MariaDB: down on 127.0.0.1:$DB_PORT"
  redis_answers && say "Redis: up on 127.0.0.1:$REDIS_PORT" || say "Redis: down on 127.0.0.1:$REDIS_PORT"
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

node_installed() {
  command -v node >/dev/null && command -v npm >/dev/null && return
  say "installing Debian's nodejs and npm for the IAM policy evaluator (once)"
  install_packages nodejs npm && command -v node >/dev/null \
    || die "Node.js (for localdev/iam_simulator, the IAM policy evaluator) is missing. Install it (Debian: apt-get install nodejs npm)."
}

case "${1:-up}" in
  up) up ;;
  iam) node_installed ;;
  down) down ;;
  status) status ;;
  wrk) wrk_installed ;;
  browser) browser_installed ;;
  *) die "usage: $0 up|down|status|wrk|browser|iam" ;;
esac
