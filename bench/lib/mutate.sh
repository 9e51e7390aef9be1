#!/usr/bin/env bash
# Changes 30 small files (1% of the tree) of DIR; each call is a new, deterministic round.
# Usage: mutate.sh DIR
set -euo pipefail
counter="$BENCH_WORK/mutate-counter"
n=$(($(cat "$counter" 2>/dev/null || echo 0) + 1))
echo "$n" >"$counter"
exec node "$(dirname "$0")/fixture.mjs" mutate "$1" "$n"
