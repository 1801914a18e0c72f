#!/usr/bin/env bash
# Checks that GET /openapi.json describes exactly what the server accepts and answers:
# schemathesis (a tool written by others, pinned in schemathesis-requirements.txt) fuzzes a
# ticket-server on memory with every check (`--checks all`) through the phases examples,
# coverage, fuzzing and stateful (following the document's OpenAPI links to real hold,
# payment and session ids), for SCHEMATHESIS_MAX_TIME seconds (default 170), as an admin.
# Any failure fails the script (exit code of `st run`).
#
#   examples/ticket-server/schemathesis.sh            # release build, as CI runs it
#   examples/ticket-server/schemathesis.sh --debug    # debug build, quicker to iterate
#   SCHEMATHESIS_MAX_TIME=60 examples/ticket-server/schemathesis.sh --debug --seed 1
#
# Arguments other than --debug go to `st run` (e.g. --seed N, --include-path /api/holds,
# --report junit). The virtual environment lives in SCHEMATHESIS_VENV (default
# <cargo target dir>/schemathesis-venv) and is reused while it has the pinned version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

profile=release
st_args=()
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug ;;
    *) st_args+=("$arg") ;;
  esac
done
max_time="${SCHEMATHESIS_MAX_TIME:-170}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
venv="${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}"
requirements="$here/schemathesis-requirements.txt"

log() { printf '== schemathesis: %s\n' "$*"; }

# The pinned schemathesis in its own virtual environment (reused while it matches the pin).
pinned="$(sed -n 's/^schemathesis==//p' "$requirements")"
if [ "$("$venv/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$pinned" ]; then
  log "installing schemathesis $pinned into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
fi

if [ "$profile" = release ]; then
  log "cargo build --release -p ticket-server"
  cargo build --release -p ticket-server
else
  log "cargo build -p ticket-server"
  cargo build -p ticket-server
fi
bin="$target_dir/$profile/ticket-server"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
admin_email="schemathesis-admin@example.com"
admin_password="schemathesis-admin-1"
server_log="$(mktemp)"
# Memory backend, the in-process payment sandbox (slow cards settle quickly), the rate limits
# off so the fuzzer is never throttled, tokens that outlive the run.
"$bin" --store memory --listen "127.0.0.1:$port" \
  --jwt-secret "schemathesis-jwt-secret-of-at-least-32-bytes" \
  --admin-email "$admin_email" --admin-password "$admin_password" \
  --access-token-ttl-secs 3600 --sandbox-slow-delay-ms 200 \
  --rate-limit-per-minute 0 --rate-limit-per-ip-per-minute 0 \
  --login-limit-per-ip-per-minute 0 --refresh-limit-per-ip-per-minute 0 \
  --signup-limit-per-ip-per-hour 0 \
  >"$server_log" 2>&1 &
server_pid=$!
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -f "$server_log"
}
trap stop_server EXIT

for _ in $(seq 1 100); do
  curl -fsS "$base/healthz" >/dev/null 2>&1 && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$server_log" >&2
    echo "ticket-server did not start" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS "$base/healthz" >/dev/null

login() {
  curl -fsS -X POST "$base/api/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
# The admin's access token reaches every operation, admin routes included; logout gets a
# throwaway user's token (schemathesis.toml), so that logging out never ends the run's own.
SCHEMATHESIS_TOKEN="$(login "$admin_email" "$admin_password")"
curl -fsS -X POST "$base/api/auth/signup" -H 'content-type: application/json' \
  -d '{"email":"schemathesis-logout@example.com","password":"logout-user-1"}' >/dev/null
SCHEMATHESIS_LOGOUT_TOKEN="$(login schemathesis-logout@example.com logout-user-1)"
export SCHEMATHESIS_TOKEN SCHEMATHESIS_LOGOUT_TOKEN

log "st run $base/openapi.json for ${max_time}s"
status=0
"$venv/bin/st" --no-color --config-file "$here/schemathesis.toml" run "$base/openapi.json" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-time "$max_time" \
  --generation-database none \
  ${st_args[@]+"${st_args[@]}"} || status=$?
if [ "$status" -ne 0 ]; then
  log "FAILED (exit $status); the server's log follows"
  tail -n 50 "$server_log" >&2
fi
exit "$status"
