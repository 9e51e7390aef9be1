#!/usr/bin/env bash
# One deployguard deploy with a release id never used before (the target keeps working across
# runs). Usage: dg.sh SCENARIO CONFIG FLEET_DIR [NODE_BINARY]
# The key comes from DEPLOYGUARD_SSH_KEY, the host key is pinned with --known-hosts. The JSON
# result (per-step timings) is kept in $BENCH_RESULTS/dg/; set DG_TIME_FILE to wrap the CLI in
# /usr/bin/time -v.
set -euo pipefail
scenario=$1 config=$2 fleet=$3 node_bin=${4:-${BENCH_NODE:-node}}
counter="$BENCH_WORK/release-counter"
n=$(($(cat "$counter" 2>/dev/null || echo 0) + 1))
echo "$n" >"$counter"
out="$BENCH_RESULTS/dg/$scenario-$(printf %03d "$n")"
wrap=()
if [ -n "${DG_TIME_FILE:-}" ]; then wrap=(/usr/bin/time -v -o "$DG_TIME_FILE"); fi
cd "$BENCH_WORK"
if ! DEPLOYGUARD_SSH_KEY="$(cat "$fleet/user_key")" "${wrap[@]}" "$node_bin" \
  "$BENCH_DG" deploy --config "$config" --release-id "b$n" \
  --known-hosts "$(cat "$fleet/known_hosts")" --json >"$out.json" 2>"$out.log"; then
  echo "bench: deployguard deploy failed (scenario $scenario, release b$n); its output:" >&2
  tail -n 25 "$out.log" >&2
  exit 1
fi
