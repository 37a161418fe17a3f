#!/usr/bin/env bash
# A local PostgreSQL 15 cluster for gabarit's PostgreSQL store, under var/postgres
# of the repository, on loopback only (Debian postgresql-15, see scripts/install-deps.sh).
#
#   scripts/postgres.sh start    create the cluster on first use, start it, wait until it accepts
#                                connections (does nothing more when it already runs)
#   scripts/postgres.sh stop     stop it (fast shutdown: sessions are ended, the data is kept)
#   scripts/postgres.sh url      print the store URL: export GABARIT_STORE=$(scripts/postgres.sh url)
#   scripts/postgres.sh status   say whether it runs (exit 0) or not (exit 3)
#
# Database and user "gabarit", with a generated password kept in var/postgres/password
# (mode 0600); port $GABARIT_PG_PORT (default 55432, chosen when the cluster is created);
# the Unix socket in var/postgres/run. PostgreSQL refuses to run as root: run as root, the
# script runs the server as the system user gabarit-pg (created if missing), which owns
# var/postgres; run as another user, it runs the server as that user.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=/usr/lib/postgresql/15/bin
# set_paths names the cluster's files under base. var/postgres may be a link
# to /var/lib/gabarit-pg/… (see create), followed here.
set_paths() {
  base=$1
  data=$base/data
  run=$base/run
  log=$base/postgres.log
  pwfile=$base/password
  portfile=$base/port
}
if [ -L "$root/var/postgres" ]; then set_paths "$(readlink -f "$root/var/postgres")"; else set_paths "$root/var/postgres"; fi
pg_user=gabarit-pg # the server's account when the script runs as root
db=gabarit

die() { echo "postgres.sh: $*" >&2; exit 1; }

if [ -f "$portfile" ]; then port=$(cat "$portfile"); else port=${GABARIT_PG_PORT:-55432}; fi
if [ -n "${GABARIT_PG_PORT:-}" ] && [ "$GABARIT_PG_PORT" != "$port" ]; then
  echo "postgres.sh: the cluster in $base was created on port $port; GABARIT_PG_PORT=$GABARIT_PG_PORT is ignored" >&2
fi

# as_pg runs a command as the server's account, in var/postgres (the
# caller's working directory may be closed to that account).
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$base" && runuser -u "$pg_user" -- "$@")
  else
    (cd "$base" && "$@")
  fi
}

# superuser is the cluster's superuser: the server's account, which signs
# in over the Unix socket by peer authentication.
superuser() { if [ "$(id -u)" = 0 ]; then echo "$pg_user"; else id -un; fi; }

running() { [ -f "$data/PG_VERSION" ] && as_pg "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; }

need_binaries() {
  [ -x "$bin/postgres" ] && [ -x "$bin/psql" ] ||
    die "PostgreSQL 15 is not installed ($bin): run scripts/install-deps.sh (Debian postgresql-15)"
}

# new_password writes a random password to the password file (mode 0600),
# unless it holds one; ensure_db gives it to the database user.
new_password() {
  if [ ! -s "$pwfile" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$pwfile")
  fi
  chmod 0600 "$pwfile"
}

# create makes the account (as root), var/postgres, the password and the cluster.
create() {
  if [ "$(id -u)" = 0 ] && ! id -u "$pg_user" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$pg_user"
  fi
  mkdir -p "$base"
  chmod 0700 "$base"
  if [ "$(id -u)" = 0 ]; then
    chown "$pg_user:" "$base"
    if ! runuser -u "$pg_user" -- test -x "$base"; then
      # A directory above the repository is closed to other users (a
      # checkout under /root): the cluster lives under /var/lib/gabarit-pg
      # instead, one folder per repository, and var/postgres links to it.
      rmdir "$base"
      mkdir -p -m 0755 /var/lib/gabarit-pg
      target=/var/lib/gabarit-pg/$(printf '%s' "$root" | sha256sum | cut -c1-16)
      mkdir -p -m 0700 "$target"
      chown "$pg_user:" "$target"
      ln -s "$target" "$root/var/postgres"
      set_paths "$target"
      echo "postgres.sh: $root is closed to $pg_user: the cluster lives in $target (var/postgres links to it)" >&2
    fi
  fi
  # The socket's path must fit in 107 bytes.
  [ ${#run} -le 90 ] || die "$run is too long a path for the server's Unix socket: move the repository to a shorter path"
  new_password
  echo "$port" >"$portfile"
  echo "postgres.sh: creating a PostgreSQL 15 cluster in $data (port $port)" >&2
  as_pg mkdir -p -m 0700 "$run"
  as_pg "$bin/initdb" -D "$data" -U "$(superuser)" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C >"$base/initdb.log" 2>&1 || die "initdb failed: see $base/initdb.log"
  # Loopback and the socket under var/ only.
  as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/postgres.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$run'
EOF
}

# psql_super runs SQL from stdin as the superuser over the Unix socket.
psql_super() { as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$run" -p "$port" -U "$(superuser)" -d postgres "$@"; }

# ensure_db creates the role and database when missing and sets the role's
# password from the password file (fed on stdin, never on a command line).
ensure_db() {
  local pw
  pw=$(cat "$pwfile")
  psql_super <<EOF
SELECT 'CREATE ROLE $db LOGIN CREATEDB' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$db')\gexec
ALTER ROLE $db LOGIN CREATEDB PASSWORD '$pw';
SELECT 'CREATE DATABASE $db OWNER $db' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
EOF
}

start() {
  need_binaries
  [ -f "$data/PG_VERSION" ] || create
  new_password
  if ! running; then
    [ "$(id -u)" != 0 ] || chown "$pg_user:" "$base" "$data" "$run"
    as_pg "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 60 >/dev/null ||
      die "the server did not start: see $log"
  fi
  local i
  for i in $(seq 1 60); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -d postgres; then break; fi
    [ "$i" -lt 60 ] || die "the server does not accept connections on 127.0.0.1:$port: see $log"
    sleep 1
  done
  ensure_db
  echo "postgres.sh: PostgreSQL 15 runs on 127.0.0.1:$port (data $data); the store URL: scripts/postgres.sh url" >&2
}

stop() {
  if running; then
    as_pg "$bin/pg_ctl" stop -D "$data" -m fast -w -t 60 >/dev/null
    echo "postgres.sh: stopped" >&2
  else
    echo "postgres.sh: not running" >&2
  fi
}

url() {
  [ -s "$pwfile" ] || die "no cluster in $base yet: run scripts/postgres.sh start"
  echo "postgres://$db:$(cat "$pwfile")@127.0.0.1:$port/$db?sslmode=disable"
}

status() {
  if running; then
    echo "running on 127.0.0.1:$port (data $data)"
  else
    echo "not running"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  status) status ;;
  *) echo "usage: scripts/postgres.sh start|stop|url|status" >&2; exit 2 ;;
esac
