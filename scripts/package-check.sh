#!/usr/bin/env bash
# Packages the five published crates as crates.io would receive them, and builds each
# package from its own .crate contents (cargo's verification step), before any of them is on
# crates.io: `cargo package` with several `-p` (cargo >= 1.90) packages them together and
# resolves their path dependencies on each other (ticket-core) from a local overlay
# registry under target/package, so nothing needs publishing first and `--no-verify` is not
# needed.
#
# Also checks that no other workspace member can be published by mistake (examples and the
# e2e tests carry `publish = false`).
#
# Usage: scripts/package-check.sh [extra `cargo package` flags, e.g. --allow-dirty]
# Output: target/package/<crate>-<version>.crate
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(ticket-core ticket-store-redis ticket-store-pg payment-sandbox payment-stripe)

# Publishable members (publish unset, or a list of registries) must be exactly the four.
publishable=$(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
print(" ".join(sorted(p["name"] for p in meta["packages"]
                      if p["id"] in members and p.get("publish") != [])))')
expected=$(printf '%s\n' "${crates[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$publishable" != "$expected" ]; then
  echo "publishable members: '$publishable'; expected '$expected'" >&2
  echo "(give every other member publish = false, or add it here)" >&2
  exit 1
fi

args=()
for crate in "${crates[@]}"; do args+=(-p "$crate"); done

echo "== files in each package"
for crate in "${crates[@]}"; do
  echo "-- $crate: $(cargo package -p "$crate" --list "$@" | wc -l) files"
done

echo "== cargo package ${args[*]} $*"
cargo package "${args[@]}" "$@"
ls -l target/package/*.crate
