#!/usr/bin/env bash
# The whole test suite, with its own PostgreSQL: installs the server if it is missing (Debian's
# postgresql package), starts a throwaway one in a temporary directory on a free loopback port
# (as the `postgres` user when run as root: the server refuses to run as root), runs
# `cargo test --locked` against it (KORE_NOTIFY_TEST_PG), and removes it afterwards.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh postgres::).
set -euo pipefail
cd "$(dirname "$0")/.."

find_bin() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$name" ] && { echo "$dir/$name"; return 0; }
  done
  return 1
}

if ! find_bin initdb >/dev/null || ! find_bin pg_ctl >/dev/null; then
  echo "==> installing PostgreSQL (apt-get install -y postgresql)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)

# The server runs as an unprivileged user: ourselves, or `postgres` when we are root.
as_server() { "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_server() { runuser -u postgres -- "$@"; }
fi

dir=$(mktemp -d /tmp/kore-notify-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
password="kn-test-$RANDOM$RANDOM"

stop() {
  as_server "$PG_CTL" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

printf '%s\n' "$password" >"$dir/pw"
[ "$(id -u)" -eq 0 ] && chown postgres "$dir/pw"
as_server "$INITDB" -D "$dir/data" -U kore --pwfile="$dir/pw" --auth-local=trust --auth-host=scram-sha-256 \
  --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
as_server "$PG_CTL" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }
echo "==> PostgreSQL on 127.0.0.1:$port (data in $dir, removed afterwards)" >&2

export KORE_NOTIFY_TEST_PG="postgres://kore:$password@127.0.0.1:$port/postgres"
cargo test --locked "$@"
