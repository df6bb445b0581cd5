#!/usr/bin/env bash
# The whole test suite, with its own PostgreSQL: installs the server if it is missing (Debian's
# postgresql package), starts a throwaway one in a temporary directory on a free loopback port
# (as the `postgres` user when run as root: the server refuses to run as root), runs
# `cargo test --locked` against it (KORE_NOTIFY_TEST_PG), and removes it afterwards. Installs
# Chromium and jq the same way when they are missing (Debian's packages): the HTML report is
# rendered by a real headless browser in the tests (KORE_NOTIFY_TEST_CHROMIUM), and the CI report
# script (scripts/ci-report.sh, run by a test) reads JSON with jq, as on GitHub's runners.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh postgres::).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg-throwaway.sh
. scripts/pg-throwaway.sh
trap pg_stop EXIT
# Durability is not what the suite tests on the server side (kill -9 hits the client).
pg_throwaway -c fsync=off
export KORE_NOTIFY_TEST_PG=$PG_ADMIN_URL KORE_NOTIFY_TEST_PG_CA=$PG_CA_FILE
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v jq >/dev/null 2>&1 || missing+=(jq)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]} (apt-get install -y ${missing[*]})" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
KORE_NOTIFY_TEST_CHROMIUM=$(command -v chromium)
export KORE_NOTIFY_TEST_CHROMIUM
# The whole output as cargo prints it, then one total over every test binary (cargo's own last
# line is the doc-tests' "0 passed").
log=$(mktemp)
set +e
cargo test --locked "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ {
       for (i = 2; i <= NF; i++) {
         if ($i == "passed;") p += $(i - 1)
         if ($i == "failed;") f += $(i - 1)
         if ($i == "ignored;") s += $(i - 1)
       }
     }
     END { printf "%d passed, %d failed", p, f; if (s) printf ", %d skipped", s; printf "\n" }' "$log"
rm -f "$log"
exit "$status"
