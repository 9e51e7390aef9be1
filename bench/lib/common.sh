# shellcheck shell=bash disable=SC2034
# Sourced by every benchmark script (BENCH_LIB and BENCH_USER are for them). Expects the environment that bench/run.sh exports.
set -euo pipefail

die() {
  echo "bench: error: $*" >&2
  exit 1
}

log() {
  echo "[bench $(date +%H:%M:%S)] $*" >&2
}

for v in BENCH_ROOT BENCH_DG BENCH_WORK BENCH_REMOTE BENCH_RESULTS BENCH_SOLO BENCH_TREE BENCH_RUNS BENCH_WARMUP; do
  [ -n "${!v:-}" ] || die "$v is not set: run the benchmarks through bench/run.sh"
done

BENCH_LIB="$BENCH_ROOT/bench/lib"
BENCH_USER=deployguard-sandbox

# The port of instance I (default 0) of the sshd fleet in directory DIR.
fleet_port() {
  sed -n "$((${2:-0} + 1))p" "$1/ports"
}

# hyperfine with the settings every figure shares; results go to $BENCH_RESULTS/NAME.json.
# Every --prepare ends with `sync`, and the figure's setup is synced before the first run: the
# kernel writes dirty pages back some 30 s after they were written, so without it the writes of one
# run (or of the previous figure: a full deploy writes 97 MB) land in the time of a later one, and
# hyperfine runs each command's runs in a row, so that would fall on whichever command came next.
bench_hyperfine() {
  local name=$1
  shift
  local args=() prepare=0 a
  for a in "$@"; do
    if [ "$prepare" = 1 ]; then a="$a && sync"; fi
    prepare=0
    if [ "$a" = --prepare ]; then prepare=1; fi
    args+=("$a")
  done
  sync
  hyperfine --style basic --export-json "$BENCH_RESULTS/$name.json" "${args[@]}" 2>&1 |
    tee "$BENCH_RESULTS/$name.hyperfine.txt"
}

# A remote directory owned by the benchmark user (we are root: plain mkdir + chown, no ssh).
remote_dir() {
  mkdir -p "$1"
  chown "$BENCH_USER:" "$1"
}

# Writes a deployguard.yml: FILE ARTIFACT TARGET_PATH KEEP PORT... (one host per port).
# EXTRA_YAML, when set, is appended verbatim (e.g. a deploy: section).
write_config() {
  local file=$1 artifact=$2 target=$3 keep=$4
  shift 4
  {
    echo "version: 1"
    echo "artifact: $artifact"
    echo "target:"
    echo "  path: $target"
    echo "  keep-releases: $keep"
    echo "hosts:"
    local i=0 port
    for port in "$@"; do
      i=$((i + 1))
      echo "  - name: h$(printf %02d $i)"
      echo "    host: 127.0.0.1"
      echo "    port: $port"
      echo "    user: $BENCH_USER"
    done
    echo "service: { manager: none }"
    echo "pre-deploy: { gitleaks: false }"
    echo "post-deploy: { stability-window: 0s }"
    echo "report: { comment: none }"
    if [ -n "${EXTRA_YAML:-}" ]; then echo "$EXTRA_YAML"; fi
  } >"$file"
}

# The two configs of a fleet figure: $BENCH_WORK/NAME-one.yml (the first port only) and
# NAME-all.yml (every port, max-parallel PARALLEL). Usage: write_fleet_configs NAME ARTIFACT TARGET PARALLEL PORT...
write_fleet_configs() {
  local name=$1 artifact=$2 target=$3 parallel=$4
  shift 4
  write_config "$BENCH_WORK/$name-one.yml" "$artifact" "$target" 2 "$1"
  EXTRA_YAML="deploy: { max-parallel: $parallel }" write_config "$BENCH_WORK/$name-all.yml" "$artifact" "$target" 2 "$@"
}
