#!/usr/bin/env bash
# Figure 4: process start to the first SSH byte (median of 10), and the size of each bundle.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

node_bins=(node)
# The runtime GitHub gives actions (node24), when the dev dependency that ships it is installed.
if [ -x "$BENCH_ROOT/node_modules/.bin/node" ]; then node_bins+=("$BENCH_ROOT/node_modules/.bin/node"); fi
log "figure 4: process start to first SSH byte (${BENCH_STARTUP_RUNS:-10} runs each)"
node "$BENCH_LIB/firstbyte.mjs" "$BENCH_SOLO" "$BENCH_TREE" "$BENCH_SMALL" "$BENCH_REMOTE/firstbyte/app" \
  "${BENCH_STARTUP_RUNS:-10}" "$BENCH_RESULTS/fig4.json" "${node_bins[@]}"
ls -l "$BENCH_WORK"/dist/*/index.cjs >"$BENCH_RESULTS/fig4-bundles.txt"

# What loading the bundle costs by itself: the CLI printing its version vs an empty Node program.
# (--version, not --help: the CLI keeps no compiled code for its help, so --help would compile the
# whole bundle every time; --version's code cache is warm after the warmup run, as a command's is.)
log "figure 4: loading the CLI bundle (--version) vs an empty node process"
# With the machine's NODE_EXTRA_CA_CERTS (run.sh takes it out of every other command), when it has one.
extra_ca_row=()
if [ -n "${BENCH_EXTRA_CA_CERTS:-}" ]; then
  # hyperfine hands the command to a shell: the path quoted for it.
  printf -v ca %q "$BENCH_EXTRA_CA_CERTS"
  extra_ca_row=(-n "node -e 0, NODE_EXTRA_CA_CERTS set" "env NODE_EXTRA_CA_CERTS=$ca node -e 0")
fi
bench_hyperfine fig4-load --runs "${BENCH_STARTUP_RUNS:-10}" --warmup 1 \
  -n "node -e 0" "node -e 0" \
  -n "node dist/cli/index.cjs --version" "node $BENCH_DG --version" \
  "${extra_ca_row[@]}"
