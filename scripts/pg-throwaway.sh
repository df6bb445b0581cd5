# shellcheck shell=bash
# Sourced by scripts/test.sh and bench/pg.sh: `pg_throwaway [server options…]` installs PostgreSQL
# if it is missing (Debian's postgresql package), starts a throwaway server in a temporary
# directory on a free loopback port — as the `postgres` user when run as root, since the server
# refuses to run as root — and exports PG_ADMIN_URL (a superuser URL with a random password),
# PG_BIN (the server's bin directory), PG_PSQL, PG_DIR and PG_CA_FILE (the certificate of the
# throwaway CA that signed the server's TLS certificate). `pg_stop` stops it and removes the
# directory; callers trap it on EXIT.

pg_find_bin() {
  local name=$1 dir
  if command -v "$name" >/dev/null 2>&1; then dirname "$(command -v "$name")"; return 0; fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/$name" ] && { echo "$dir"; return 0; }
  done
  return 1
}

pg_as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_throwaway() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! pg_find_bin initdb >/dev/null || ! pg_find_bin pg_ctl >/dev/null || ! command -v psql >/dev/null; then
    echo "==> installing PostgreSQL (apt-get install -y postgresql)" >&2
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  fi
  PG_BIN=$(pg_find_bin initdb)
  PG_PSQL=$(command -v psql || echo "$PG_BIN/psql")
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres; fi
  PG_DIR=$(mktemp -d /tmp/kore-notify-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  local port password
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  password="kn-$RANDOM$RANDOM$RANDOM"
  printf '%s\n' "$password" >"$PG_DIR/pw"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$PG_DIR"
  pg_as_server "$PG_BIN/initdb" -D "$PG_DIR/data" -U kore --pwfile="$PG_DIR/pw" --auth-local=trust \
    --auth-host=scram-sha-256 --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # TLS with a certificate of its own (for 127.0.0.1 and localhost), so clients can be tested
  # verifying it against PG_CA_FILE.
  command -v openssl >/dev/null || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssl >/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PG_DIR/ext"
  { openssl req -new -x509 -days 2 -nodes -subj /CN=kore-notify-test-ca -keyout "$PG_DIR/ca.key" -out "$PG_DIR/ca.crt" &&
    openssl req -new -nodes -subj /CN=localhost -keyout "$PG_DIR/server.key" -out "$PG_DIR/server.csr" &&
    openssl x509 -req -in "$PG_DIR/server.csr" -CA "$PG_DIR/ca.crt" -CAkey "$PG_DIR/ca.key" -CAcreateserial -days 2 \
      -extfile "$PG_DIR/ext" -out "$PG_DIR/server.crt"; } >/dev/null 2>&1 || { echo "openssl failed" >&2; return 1; }
  chmod 600 "$PG_DIR/server.key"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR/server.key" "$PG_DIR/server.crt"
  pg_as_server "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=200 -c ssl=on -c ssl_cert_file=$PG_DIR/server.crt -c ssl_key_file=$PG_DIR/server.key $*" start >/dev/null \
    || { cat "$PG_DIR/server.log" >&2; return 1; }
  PG_CA_FILE=$PG_DIR/ca.crt
  export PG_ADMIN_URL="postgres://kore:$password@127.0.0.1:$port/postgres" PG_BIN PG_PSQL PG_DIR PG_CA_FILE
  echo "==> PostgreSQL on 127.0.0.1:$port (data in $PG_DIR, removed afterwards)" >&2
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  pg_as_server "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
