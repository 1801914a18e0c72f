#!/usr/bin/env bash
# The rush simulator over HTTP, end to end, in one command: starts a payment sandbox and a
# ticket-server (release builds; RUSH_PROFILE=debug for debug ones) on Redis or PostgreSQL,
# runs `rush --url` against them, then stops both and removes everything the run wrote (the
# namespace's Redis keys or PostgreSQL schemas).
#
#   examples/rush/http-rush.sh redis --users 100000 --units 5000
#   examples/rush/http-rush.sh pg --users 10000 --units 500 --json
#
# The first argument is the store (redis or pg, default redis); the rest go to `rush`.
# Redis and PostgreSQL must be running (REDIS_URL, DATABASE_URL; defaults on 127.0.0.1).
# Knobs: SANDBOX_PORT (18090), SERVER_PORT (18080), HOLD_TTL_SECS (30; the server's hold
# TTL: abandoned holds come back after it), SERVER_THREADS (0: the server's default).
set -euo pipefail

STORE=${1:-redis}
[ $# -gt 0 ] && shift
case "$STORE" in redis | pg) ;; *) echo "usage: $0 [redis|pg] [rush flags...]" >&2; exit 2 ;; esac
SANDBOX_PORT=${SANDBOX_PORT:-18090}
SERVER_PORT=${SERVER_PORT:-18080}
HOLD_TTL_SECS=${HOLD_TTL_SECS:-30}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
NS="rushhttp_$(date +%s)_$$"
SECRET="rush-http-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The sandbox's API key, for the sandbox (--api-key), the server (--payment-sandbox-key) and
# rush (--sandbox-key), which all read it from the environment (never on a command line).
export PAYMENT_SANDBOX_KEY="sk_test_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

PROFILE=${RUSH_PROFILE:-release}
case "$PROFILE" in
  release) PROFILE_FLAG=(--release) ;;
  debug) PROFILE_FLAG=() ;;
  *) echo "RUSH_PROFILE must be release or debug" >&2; exit 2 ;;
esac
cargo build ${PROFILE_FLAG[@]+"${PROFILE_FLAG[@]}"} -q --manifest-path "$ROOT/Cargo.toml" \
  -p payment-sandbox --features payment-sandbox/cli -p ticket-server -p rush

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$STORE" = redis ]; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$NS:*" | xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null
  else
    psql "$DATABASE_URL" -qXc "DROP SCHEMA IF EXISTS $NS CASCADE; DROP SCHEMA IF EXISTS ${NS}_app CASCADE" 2>/dev/null
  fi
}
trap cleanup EXIT

wait_for() { # url
  for _ in $(seq 1 100); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "$1 did not answer" >&2
  exit 1
}

"$TARGET/$PROFILE/payment-sandbox" --listen "127.0.0.1:$SANDBOX_PORT" >/dev/null &
PIDS+=($!)
SANDBOX="http://127.0.0.1:$SANDBOX_PORT"
SERVER="http://127.0.0.1:$SERVER_PORT"
# The sandbox is up once it answers any route (without the key: a 401 with JSON).
for _ in $(seq 1 100); do curl -s -o /dev/null "$SANDBOX/v1/deliveries/stats" && break; sleep 0.1; done
KEY=$(curl -fsS -X POST "$SANDBOX/v1/webhook_endpoints" -H 'content-type: application/json' \
  -H @<(printf 'authorization: Bearer %s\n' "$PAYMENT_SANDBOX_KEY") \
  -d "{\"url\":\"$SERVER/api/payments/webhook\"}" | sed -n 's/.*"verification_key":"\([^"]*\)".*/\1/p')
[ -n "$KEY" ] || { echo "could not register the webhook endpoint" >&2; exit 1; }

"$TARGET/$PROFILE/ticket-server" --listen "127.0.0.1:$SERVER_PORT" --store "$STORE" \
  --redis-url "$REDIS_URL" --database-url "$DATABASE_URL" --namespace "$NS" \
  --jwt-secret "$SECRET" --payment-sandbox-url "$SANDBOX" --webhook-secret "$KEY" \
  --no-demo --rate-limit-per-minute 0 --rate-limit-per-ip-per-minute 0 \
  --request-timeout-secs 60 --hold-ttl-secs "$HOLD_TTL_SECS" \
  --payment-timeout-secs $((HOLD_TTL_SECS > 20 ? 15 : HOLD_TTL_SECS - 1)) \
  >/dev/null 2>&1 &
PIDS+=($!)
wait_for "$SERVER/healthz"

set +e
"$TARGET/$PROFILE/rush" --url "$SERVER" --store "$STORE" --redis-url "$REDIS_URL" \
  --database-url "$DATABASE_URL" --namespace "$NS" --jwt-secret "$SECRET" \
  --sandbox-url "$SANDBOX" "$@"
code=$?
exit $code
