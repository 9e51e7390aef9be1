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

# hyperfine with the settings every figure shares; results go to $BENCH_RESULTS/NAME.json, in
# hyperfine's own format. Takes hyperfine's arguments (--runs N and --warmup W among them).
#
# The commands take turns: each of N rounds is one hyperfine call running every command once, in
# the order given, and bench/lib/rounds.mjs merges the rounds into one result per command. Run
# N times in a row instead (hyperfine's way), a command would get a quiet minute and the next one a
# busy one, and on this shared VM that moved the ratios between them by more than the changes they
# measure. W rounds before the first are warmups, not kept.
#
# Every --prepare ends with `sync`, and the figure's setup is synced before the first run: the
# kernel writes dirty pages back some 30 s after they were written, so without it the writes of one
# run (or of the previous figure: a full deploy writes 97 MB) land in the time of a later one.
bench_hyperfine() {
  local name=$1
  shift
  local args=() runs=1 warmup=0 prepare=0 a
  while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
    --runs) runs=$1; shift; continue ;;
    --warmup) warmup=$1; shift; continue ;;
    esac
    if [ "$prepare" = 1 ]; then a="$a && sync"; fi
    prepare=0
    if [ "$a" = --prepare ]; then prepare=1; fi
    args+=("$a")
  done
  local rounds="$BENCH_RESULTS/$name.rounds" i
  rm -rf "$rounds"
  mkdir -p "$rounds"
  sync
  for ((i = 1; i <= warmup; i++)); do
    hyperfine --style none --runs 1 "${args[@]}" >/dev/null 2>&1 || die "$name: a warmup round failed"
  done
  : >"$BENCH_RESULTS/$name.hyperfine.txt"
  for ((i = 1; i <= runs; i++)); do
    if ! hyperfine --style basic --runs 1 --export-json "$rounds/$(printf %03d "$i").json" "${args[@]}" \
      >>"$BENCH_RESULTS/$name.hyperfine.txt" 2>&1; then
      tail -n 20 "$BENCH_RESULTS/$name.hyperfine.txt" >&2
      die "$name: round $i failed"
    fi
  done
  node "$BENCH_LIB/rounds.mjs" "$rounds" "$BENCH_RESULTS/$name.json"
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
