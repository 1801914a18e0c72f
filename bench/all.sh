#!/usr/bin/env bash
# bench/all.sh — every performance target of docs/BENCHMARKS.md, measured beside its raw
# baseline in the same run, in one command:
#
#   bench/all.sh                      # every section, ROUNDS rounds each
#   bench/all.sh redis_rush pg_rush   # only these sections
#
# Sections (in order): redis_hold redis_rush pg_rush pg_spread pg_position memory_rush
# http locks. Each section runs ours and then its raw baseline right after it (a few seconds
# apart), so a busy moment of the machine hits both sides of a ratio; ratios are medians of
# the per-round ratios. The summary table goes to stdout and to $OUT/summary.md; raw logs and
# JSON reports stay in $OUT.
#
# Needs: Redis on $REDIS_URL (db 9 must be empty: the raw scripts run there and it is
# flushed after), PostgreSQL on $DATABASE_URL (trust auth), redis-benchmark, pgbench, jq.
# Knobs: ROUNDS (3), OUT (bench/out/<UTC time>), REDIS_URL, DATABASE_URL,
# RUSH_USERS_REDIS (100000), RUSH_UNITS_REDIS (5000), RUSH_USERS_PG (10000),
# RUSH_UNITS_PG (500), MEMORY_USERS (1000000), MEMORY_UNITS (50000), HTTP_SECS (10),
# PG_SECS (10), CARGO_TARGET_DIR. BENCH_SMALL=1 checks the script itself in a few minutes:
# debug builds, tiny sizes, one round, the criterion-style `cargo bench` sections skipped
# (their figures mean nothing then; scripts/doc_commands.py runs it this way).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SMALL=${BENCH_SMALL:-0}
if [ "$SMALL" = 1 ]; then
  ROUNDS=1 PROFILE=debug BUILD_FLAGS=()
  : "${RUSH_USERS_REDIS:=2000}" "${RUSH_UNITS_REDIS:=100}" "${RUSH_USERS_PG:=500}" "${RUSH_UNITS_PG:=50}"
  : "${MEMORY_USERS:=2000}" "${MEMORY_UNITS:=100}" "${HTTP_SECS:=1}" "${PG_SECS:=1}" "${LOCK_UNITS:=50}"
else
  PROFILE=release BUILD_FLAGS=(--release)
fi
BIN=$TARGET/$PROFILE
RAW_DB=9
REDIS_HOSTPORT=${REDIS_URL#redis://}
REDIS_HOSTPORT=${REDIS_HOSTPORT%%/*}
REDIS_HOST=${REDIS_HOSTPORT%%:*}
REDIS_PORT=${REDIS_HOSTPORT##*:}
export REDIS_URL DATABASE_URL
mkdir -p "$OUT"
SUMMARY=$OUT/summary.md
ALL_SECTIONS=(redis_hold redis_rush pg_rush pg_spread pg_position memory_rush http locks)
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=("${ALL_SECTIONS[@]}")

need() { command -v "$1" >/dev/null || { echo "bench/all.sh needs $1" >&2; exit 2; }; }
for tool in redis-cli redis-benchmark pgbench psql jq cargo; do need "$tool"; done
[ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping)" = PONG ] \
  || { echo "Redis is not answering at $REDIS_URL" >&2; exit 2; }
psql "$DATABASE_URL" -Atqc 'select 1' >/dev/null \
  || { echo "PostgreSQL is not answering at $DATABASE_URL" >&2; exit 2; }

rcli() { redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" -n "$RAW_DB" "$@"; }
raw_cleanup() { rcli flushdb >/dev/null 2>&1 || true; }
trap raw_cleanup EXIT

# The median of the numbers on stdin.
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"} else if (NR%2) {print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b+0==0) print "nan"; else printf "%.2f", a/b}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
# A number with two decimals ("nan" stays).
fmt() { awk -v v="$1" 'BEGIN {if (v=="nan" || v=="null" || v=="") print "nan"; else printf "%.2f", v}'; }
# summary <measure> <target> <measured> <met: yes|no|—>
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" | tee -a "$SUMMARY"; }
meets() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {if (v=="nan") {print "no"} else if (op==">=") {print (v>=t)?"yes":"no"} else {print (v<t)?"yes":"no"}}'; }

# The raw conditional decrement of shared/bench/raw-limits.sh, by EVALSHA on one hot key,
# `-c <clients>`: ops/s.
DEC='local v=tonumber(redis.call("GET",KEYS[1])); if v and v>=tonumber(ARGV[1]) then return redis.call("DECRBY",KEYS[1],ARGV[1]) else return -1 end'
raw_cond_decr() {
  local clients=$1 sha
  [ "$(rcli dbsize)" = 0 ] || { echo "Redis db $RAW_DB is not empty" >&2; exit 2; }
  sha=$(rcli script load "$DEC")
  rcli set rl:stock 1000000000000000 >/dev/null
  redis-benchmark -h "$REDIS_HOST" -p "$REDIS_PORT" --dbnum "$RAW_DB" -q --csv -n 200000 \
    -c "$clients" evalsha "$sha" 1 rl:stock 1 | tail -1 | tr -d '"' | cut -d, -f2
  raw_cleanup
}

# pgbench running the one-statement hold (`hold_cte.sql`) on `rows` inventory rows with
# `clients` clients for PG_SECS seconds, in a scratch schema: TPS.
raw_hold_cte() {
  local rows=$1 clients=$2 schema="bench_raw_$$"
  psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages=warning;
DROP SCHEMA IF EXISTS $schema CASCADE;
CREATE SCHEMA $schema;
CREATE TABLE $schema.inventory(id int PRIMARY KEY, remaining int NOT NULL CHECK (remaining >= 0));
CREATE TABLE $schema.holds(id uuid PRIMARY KEY DEFAULT gen_random_uuid(), inventory_id int NOT NULL,
  qty int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO $schema.inventory SELECT g, 2000000000 FROM generate_series(1, $rows) g;
VACUUM ANALYZE $schema.inventory;
CHECKPOINT;
SQL
  PGOPTIONS="-c search_path=$schema" PGSSLMODE=disable pgbench -n -M prepared -c "$clients" \
    -j 2 -T "${PG_SECS:-10}" -D nrows="$rows" -f ticket-store-pg/benches/pgbench/hold_cte.sql \
    "$DATABASE_URL" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | tail -1
  PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -qXc "DROP SCHEMA $schema CASCADE" >/dev/null
}

# Library calls per second of a rush report (join and sale phases; the sandbox's own
# refunds are not library calls).
rush_calls_per_s() {
  jq '([.ops[] | select(.op != "refund") | .calls] | add) / (.stages.join_s + .stages.sale_s)' "$1"
}
# Every correctness counter of a rush report, summed (0 in a good run).
rush_bad() { jq '[.checks | to_entries[] | select(.value | type == "number") | .value] | add' "$1"; }

echo "# bench/all.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, $(git rev-parse --short HEAD), rounds $ROUNDS" | tee "$SUMMARY"
echo "# logs in $OUT" | tee -a "$SUMMARY"
echo | tee -a "$SUMMARY"
echo "| measure | target | measured (median, range; load average) | met |" | tee -a "$SUMMARY"
echo "|---|---|---|---|" | tee -a "$SUMMARY"

cargo build ${BUILD_FLAGS[@]+"${BUILD_FLAGS[@]}"} -q -p rush -p ticket-server

# A `cargo bench` section, or the row saying it was skipped in small mode.
skipped_small() {
  [ "$SMALL" = 1 ] || return 1
  row "$1" "$2" "skipped (BENCH_SMALL=1)" "—"
}

redis_hold() {
  skipped_small "Redis hold bench, 64 tasks ÷ raw EVALSHA cond-decr" "≥ 1.0 ×" && return
  # The bench runs raw and ours back to back per round and prints medians of the ratios.
  BENCH_CLIENTS=64 BENCH_REPEAT=$ROUNDS BENCH_OPS=${REDIS_HOLD_OPS:-100000} REDIS_URL="redis://$REDIS_HOSTPORT/$RAW_DB" \
    cargo bench -q -p ticket-store-redis --bench throughput >"$OUT/redis_hold.txt" 2>&1
  local line r
  line=$(grep '^| 64 |' "$OUT/redis_hold.txt" | tail -1)
  r=$(echo "$line" | awk -F'|' '{gsub(/ /,"",$5); print $5}')
  row "Redis hold bench, 64 tasks ÷ raw EVALSHA cond-decr" "≥ 1.0 ×" "$r × ($line; load $(load))" "$(meets "$r" 1.0 '>=')"
}

# rush_vs_raw <section> <label> <target ratio> <store> <users> <units> <workers> <raw
# command…>: ROUNDS rounds of the whole-flow rush, each followed by the raw baseline (ops/s
# or TPS); logs each round and adds the summary row (median ratio, each round's ratio, the
# summed correctness counters).
rush_vs_raw() {
  local section=$1 label=$2 target=$3 store=$4 users=$5 units=$6 workers=$7
  shift 7
  local i ratios=() f ours raw bad=0
  for i in $(seq 1 "$ROUNDS"); do
    f=$OUT/${section}_$i.json
    "$BIN/rush" --users "$users" --units "$units" --store "$store" --sim-clock \
      --workers "$workers" --json >"$f" 2>"$OUT/${section}_$i.err"
    ours=$(rush_calls_per_s "$f")
    raw=$("$@")
    bad=$((bad + $(rush_bad "$f")))
    ratios+=("$(ratio "$ours" "$raw")")
    echo "$section round $i: $ours calls/s, raw ($*) $raw/s, load $(load)" >>"$OUT/rounds.txt"
  done
  local m; m=$(fmt "$(printf '%s\n' "${ratios[@]}" | median)")
  row "$label" "≥ $target ×" "$m × (${ratios[*]}; counters $bad; load $(load))" "$(meets "$m" "$target" '>=')"
}

redis_rush() {
  rush_vs_raw redis_rush "Redis whole-flow rush, calls/s ÷ raw EVALSHA cond-decr (64)" 0.8 \
    redis "${RUSH_USERS_REDIS:-100000}" "${RUSH_UNITS_REDIS:-5000}" 64 raw_cond_decr 64
}

pg_rush() {
  rush_vs_raw pg_rush "PostgreSQL whole-flow rush ÷ pgbench hold_cte hot row (32)" 3 \
    pg "${RUSH_USERS_PG:-10000}" "${RUSH_UNITS_PG:-500}" 32 raw_hold_cte 1 32
}

pg_spread() {
  skipped_small "PostgreSQL spread holds (1 000 sessions), 32 tasks ÷ pgbench spread hold_cte" "≥ 0.9 ×" && return
  BENCH_ONLY=spread BENCH_CLIENTS=32 BENCH_REPEAT=$ROUNDS BENCH_SECONDS=${PG_SECS:-10} \
    cargo bench -q -p ticket-store-pg --bench throughput >"$OUT/pg_spread.txt" 2>&1
  local line r
  line=$(grep '^| spread' "$OUT/pg_spread.txt" | tail -1)
  r=$(echo "$line" | awk -F'|' '{gsub(/ /,"",$7); print $7}')
  row "PostgreSQL spread holds (1 000 sessions), 32 tasks ÷ pgbench spread hold_cte" "≥ 0.9 ×" "$r × ($line; load $(load))" "$(meets "$r" 0.9 '>=')"
}

pg_position() {
  local what="PostgreSQL queue position, tail of 1 000 000 waiting (median µs, after / before)"
  skipped_small "$what" "O(log n) or amortised O(1)" && return
  if ! cargo bench -q -p ticket-store-pg --bench positions >"$OUT/pg_position.txt" 2>&1; then
    row "$what" "O(log n) or amortised O(1)" "bench failed: see $OUT/pg_position.txt" "no"
    return
  fi
  local after before
  after=$(awk -F'|' '$2 ~ /after/ && $3 ~ /position read, tail/ {gsub(/ /,"",$5); print $5}' "$OUT/pg_position.txt" | head -1)
  before=$(awk -F'|' '$2 ~ /before/ && $3 ~ /position read, tail/ {gsub(/ /,"",$5); print $5}' "$OUT/pg_position.txt" | head -1)
  row "$what" "O(log n) or amortised O(1)" "$after / $before µs (load $(load))" "—"
}

memory_rush() {
  local i walls=() rss=() f
  for i in $(seq 1 "$ROUNDS"); do
    f=$OUT/memory_rush_$i.json
    /usr/bin/time -f '%M' -o "$OUT/memory_rush_$i.rss" "$BIN/rush" --users "${MEMORY_USERS:-1000000}" \
      --units "${MEMORY_UNITS:-50000}" --store memory --sim-clock --json >"$f" 2>"$OUT/memory_rush_$i.err"
    walls+=("$(fmt "$(jq '.stages.total_s' "$f")")")
    rss+=("$(awk '{printf "%.0f", $1/1024}' "$OUT/memory_rush_$i.rss")")
    echo "memory_rush round $i: ${walls[-1]} s, ${rss[-1]} MiB, max join $(jq '[.ops[] | select(.op == "join") | .max_us] | max' "$f") µs, counters $(rush_bad "$f")" >>"$OUT/rounds.txt"
  done
  local w r; w=$(fmt "$(printf '%s\n' "${walls[@]}" | median)"); r=$(printf '%s\n' "${rss[@]}" | median)
  local size="${MEMORY_USERS:-1000000} users / ${MEMORY_UNITS:-50000} units"
  row "memory rush $size, wall" "< 3 s" "$w s (${walls[*]}; load $(load))" "$(meets "$w" 3 '<')"
  row "memory rush $size, peak resident" "< 1 GB" "$r MiB (${rss[*]})" "$(meets "$r" 954 '<')"
}

http() {
  local port=18481 secret ns pid
  secret="bench-all-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  ns="benchall_$$"
  "$BIN/ticket-server" --listen 127.0.0.1:$port --store redis --redis-url "$REDIS_URL" \
    --namespace "$ns" --no-demo --jwt-secret "$secret" --rate-limit-per-minute 0 \
    --rate-limit-per-ip-per-minute 0 >"$OUT/http_server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/api/ping" >/dev/null && break; sleep 0.1; done
  local i reads=() holds=() p99s=() f
  for i in $(seq 1 "$ROUNDS"); do
    f=$OUT/http_$i.json
    "$BIN/rush-http-bench" --url "http://127.0.0.1:$port" --jwt-secret "$secret" --clients 64 \
      --duration-secs "${HTTP_SECS:-10}" --warmup-secs 2 --json >"$f" 2>"$OUT/http_$i.err" || true
    reads+=("$(fmt "$(jq -r '[.results[] | select(.scenario == "read") | .ratio_to_ping] | first // "nan"' "$f")")")
    holds+=("$(fmt "$(jq -r '[.results[] | select(.scenario == "hold") | .ratio_to_ping] | first // "nan"' "$f")")")
    p99s+=("$(fmt "$(jq -r '[.results[] | select(.scenario == "hold") | .p99_ms] | first // "nan"' "$f")")")
  done
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$ns*" | xargs -r -n 500 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" unlink >/dev/null
  local r h p
  r=$(fmt "$(printf '%s\n' "${reads[@]}" | median)"); h=$(fmt "$(printf '%s\n' "${holds[@]}" | median)"); p=$(fmt "$(printf '%s\n' "${p99s[@]}" | median)")
  row "HTTP GET /api/sessions/{id} ÷ ping, 64 clients, Redis" "≥ 0.5 ×" "$r × (${reads[*]}; load $(load))" "$(meets "$r" 0.5 '>=')"
  row "HTTP hold ÷ ping, 64 clients, Redis" "≥ 0.25 ×" "$h × (${holds[*]})" "$(meets "$h" 0.25 '>=')"
  row "HTTP hold p99, 64 clients, Redis" "< 25 ms" "$p ms (${p99s[*]})" "$(meets "$p" 25 '<')"
}

locks() {
  if ! "$BIN/lock-strategies" --units "${LOCK_UNITS:-1000}" --clients 64 >"$OUT/locks.md" 2>"$OUT/locks.err"; then
    row "lock strategies (docs/LOCKS.md)" "the table" "failed: see $OUT/locks.err" "no"
    return
  fi
  row "lock strategies (docs/LOCKS.md), 64 clients" "the table" "$OUT/locks.md" "—"
  cat "$OUT/locks.md"
}

for s in "${SECTIONS[@]}"; do
  case " ${ALL_SECTIONS[*]} " in *" $s "*) ;; *) echo "unknown section $s (one of: ${ALL_SECTIONS[*]})" >&2; exit 2 ;; esac
  echo "== $s ($(date -u +%H:%M:%S), load $(load))" >&2
  "$s"
done
echo | tee -a "$SUMMARY"
echo "rounds: $OUT/rounds.txt" | tee -a "$SUMMARY"
