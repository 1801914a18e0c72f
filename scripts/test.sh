#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine, installing and starting what
# they need when it is missing:
#   * PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) and Redis on 127.0.0.1:6379
#     (no persistence), from Debian's packages, started when they are down;
#   * Chromium and ChromeDriver for the demo page's browser test;
#   * schemathesis (pinned, in a virtual environment under the target dir) for the API
#     document.
# then `cargo test --workspace` and the schemathesis run (examples/ticket-server/schemathesis.sh
# on the debug build the tests made). `.ci/run` calls this script, then the format, lint and
# packaging gates.
#
#   scripts/test.sh                       # everything
#   scripts/test.sh -p ticket-store-pg    # arguments replace `--workspace` in `cargo test`
#   SKIP_SCHEMATHESIS=1 scripts/test.sh   # the Rust tests only
#
# Installing needs root (or sudo). The tests read DATABASE_URL and REDIS_URL (the defaults
# above); pointing them elsewhere skips starting the local services. Under CI=true (which
# this script sets unless told otherwise) a backend test whose service is unreachable fails
# with a message that says how to start it; it never passes silently.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

log() { printf '== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  log "installing $*"
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi

# PostgreSQL on 127.0.0.1:5432 with the database `test`, unless DATABASE_URL points elsewhere.
case "$DATABASE_URL" in
  postgres://postgres@127.0.0.1:5432/* | postgresql://postgres@127.0.0.1:5432/*)
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
      command -v pg_ctlcluster >/dev/null || apt_install postgresql postgresql-client
      log "starting PostgreSQL"
      version="$(ls /etc/postgresql | sort -V | tail -1)"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
      pg_isready -h 127.0.0.1 -p 5432
    fi
    if ! psql -h 127.0.0.1 -U postgres -d test -qtAc 'select 1' >/dev/null 2>&1; then
      log "creating database test (trust auth for local connections is assumed)"
      as_root runuser -u postgres -- createdb test 2>/dev/null ||
        psql -h 127.0.0.1 -U postgres -qc 'create database test'
    fi
    ;;
  *) log "DATABASE_URL points elsewhere: not starting a local PostgreSQL" ;;
esac

# Redis on 127.0.0.1:6379 without persistence, unless REDIS_URL points elsewhere.
case "$REDIS_URL" in
  redis://127.0.0.1:6379*)
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
      command -v redis-server >/dev/null || apt_install redis-server
      log "starting Redis"
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
      for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
      redis-cli -h 127.0.0.1 -p 6379 ping
    fi
    ;;
  *) log "REDIS_URL points elsewhere: not starting a local Redis" ;;
esac

# Headless Chromium and its WebDriver for examples/ticket-server/tests/browser.rs.
if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  apt_install chromium chromium-driver
fi
# python3 with venv for schemathesis.
if [ -z "${SKIP_SCHEMATHESIS:-}" ] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3 python3-venv
fi

if [ $# -eq 0 ]; then set -- --workspace; fi
log "cargo test $*"
cargo test "$@"

if [ -z "${SKIP_SCHEMATHESIS:-}" ]; then
  log "examples/ticket-server/schemathesis.sh --debug (${SCHEMATHESIS_MAX_TIME:-120} s)"
  SCHEMATHESIS_MAX_TIME="${SCHEMATHESIS_MAX_TIME:-120}" examples/ticket-server/schemathesis.sh --debug
fi
log "all tests passed"
