#!/usr/bin/env bash
# Runs every benchmark of deployguard and writes BENCHMARKS.md at the repository root.
#
#   bash bench/run.sh          figures 1-5 and 7 (7-9 minutes on a 2-core VM)
#   bash bench/run.sh 1 4      only figures 1 and 4
#   bash bench/run.sh 6        figure 6, zero-downtime deploys behind nginx (about 4 minutes; not in
#                              the default run). It prints its own section for BENCHMARKS.md and
#                              leaves BENCHMARKS.md alone; its raw numbers are results/fig6.json.
#
# Each figure is a ratio against a baseline measured side by side in the same run: rsync -a, the
# OpenSSH client, one host. Everything runs against sshd instances on loopback that this script
# starts (as root, letting only the unprivileged deployguard-sandbox user in) and stops again;
# fixtures, keys and results live in one temporary directory that is removed at the end
# (BENCH_KEEP=1 keeps it). Knobs: see "Reproducing" in BENCHMARKS.md.
set -euo pipefail

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_ROOT
export BENCH_RUNS=${BENCH_RUNS:-5}
export BENCH_WARMUP=${BENCH_WARMUP:-1}
figures=("$@")
[ ${#figures[@]} -gt 0 ] || figures=(1 2 3 4 5 7)
# An environment that names extra CA certificates for Node (NODE_EXTRA_CA_CERTS; the VM these
# figures come from sets it to the system bundle) makes Node 20 parse that whole bundle at every
# start, before any code runs: 30 to 55 ms more there, as long again as the rest of Node's start
# or longer. Node 24 waits for the first TLS connection. No command of the bench uses TLS, and the
# variable belongs to the machine, not to deployguard: every figure runs without it, and figure 4
# measures what it costs a start where it is set (BENCH_EXTRA_CA_CERTS keeps the path for that).
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  export BENCH_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi

die() {
  echo "bench: error: $*" >&2
  exit 1
}
log() {
  echo "[bench $(date +%H:%M:%S)] $*" >&2
}

# ---- what the run needs ----
[ "$(id -u)" -eq 0 ] || die "run as root: the benchmarks start sshd instances and log in as deployguard-sandbox"
need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing. $2"
}
need hyperfine "Install it with: apt-get install -y hyperfine"
need rsync "Install it with: apt-get install -y rsync"
need ssh "Install it with: apt-get install -y openssh-client"
need ssh-keygen "Install it with: apt-get install -y openssh-client"
need unshare "It comes with util-linux."
need node "Node 20 or newer is needed."
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing. Install it with: apt-get install -y openssh-server"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing. Install it with: apt-get install -y time"
for f in "${figures[@]}"; do
  ls "$BENCH_ROOT"/bench/"$f"-*.sh >/dev/null 2>&1 || die "no figure $f (figures: 1 2 3 4 5 6 7)"
done

# ---- a private working area, removed on every exit path ----
BENCH_WORK=$(mktemp -d /tmp/deployguard-bench.XXXXXX)
chmod 755 "$BENCH_WORK" # sshd reads authorized_keys in here as the benchmark user
export BENCH_WORK
export BENCH_RESULTS="$BENCH_WORK/results"
mkdir -p "$BENCH_RESULTS/dg"
BENCH_REMOTE=""
BENCH_MOUNTED=""

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  for ports in "$BENCH_WORK"/*/ports; do
    [ -f "$ports" ] && node "$BENCH_ROOT/bench/lib/fleet.mjs" stop "$(dirname "$ports")" || true
  done
  if [ -n "${BENCH_MOUNTED:-}" ]; then umount "$BENCH_REMOTE" 2>/dev/null || umount -l "$BENCH_REMOTE" || true; fi
  if [ -n "$BENCH_REMOTE" ]; then rm -rf "$BENCH_REMOTE" || true; fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "kept $BENCH_WORK"
  else
    rm -rf "$BENCH_WORK"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the code under test: a snapshot of dist/, so a rebuild during the run cannot change it ----
# (dist/ may be rebuilt by someone else while this runs; every figure measures this one copy.)
# Copied only once nothing in dist/ has changed for 15 s, and only if the CLI then starts.
copy_dist() {
  [ -f "$BENCH_ROOT/dist/cli/index.cjs" ] || return 1
  [ -z "$(find "$BENCH_ROOT/dist" -newermt '-15 seconds' -print -quit)" ] || return 1
  rm -rf "$BENCH_WORK/dist"
  cp -a "$BENCH_ROOT/dist" "$BENCH_WORK/dist" 2>/dev/null &&
    node "$BENCH_WORK/dist/cli/index.cjs" --help >/dev/null 2>&1
}
for attempt in $(seq 1 12); do
  if copy_dist; then break; fi
  [ "$attempt" -lt 12 ] ||
    die "dist/cli/index.cjs is missing or keeps changing: build the bundles first (npm run bundle)"
  log "dist/ is missing or changed in the last 15 s (being rebuilt?); waiting"
  sleep 10
done
export BENCH_DG="$BENCH_WORK/dist/cli/index.cjs"
# The Node that runs deployguard's CLI: the system Node unless BENCH_NODE names another. (Figure 4
# measures Node 24 too, figure 2 adds a Node 24 row, when the dev dependency that ships it is installed.)
export BENCH_NODE=${BENCH_NODE:-node}

# ---- the host: one sshd for figures 1, 2, 4 and 5 (figures 3 and 7 start their own fleets) ----
log "starting sshd on loopback"
export BENCH_SOLO="$BENCH_WORK/solo"
node "$BENCH_ROOT/bench/lib/fleet.mjs" start "$BENCH_SOLO" 1 >/dev/null
home=$(getent passwd deployguard-sandbox | cut -d: -f6)
[ -d "$home" ] || die "the home directory of deployguard-sandbox ($home) does not exist"
BENCH_REMOTE=$(mktemp -d "$home/bench.XXXXXX")
# The hosts' disk: a journaled ext4, as on a server (BENCH_HOST_FS=root writes to the root file
# system instead). This VM's root is ext4 without a journal; there, each new inode is found by
# skipping, one by one, every inode freed in the last minutes (the kernel's find_inode_bit and
# recently_deleted, which perf showed as the largest cost of a small-file deploy right after the
# clean-up between two runs, for rsync and deployguard alike). With a journal that check is off.
# What the file system under the home is, for the report: its type, and whether it keeps a
# journal (jbd2 names its journals after the kernel's name of the device, e.g. dm-0 for LVM).
home_dev=$(basename "$(readlink -f "/sys/dev/block/$(findmnt -n -o MAJ:MIN -T "$BENCH_REMOTE" | tr -d " ")")")
root_fs="$(findmnt -n -o FSTYPE -T "$BENCH_REMOTE") $(if ls /proc/fs/jbd2 2>/dev/null | grep -q "^$home_dev-"; then echo with; else echo without; fi) a journal"
host_fs="the root file system ($root_fs)"
if [ "${BENCH_HOST_FS:-ext4}" = ext4 ]; then
  img="$BENCH_WORK/hosts.ext4"
  # Room for figure 5 (two releases and an rsync copy of its artifact) and the rest; a sparse
  # file, mounted with discard so deleted files give their blocks back to $BENCH_WORK's disk.
  img_gib=$((${BENCH_BIG_GIB:-1} * 4 + 4))
  [ "$img_gib" -ge 8 ] || img_gib=8
  free_gib=$(($(df --output=avail -k "$BENCH_WORK" | tail -n 1 | tr -d ' ') / 1048576))
  # Marked first: an interrupt between the mount and the mark must still unmount it.
  BENCH_MOUNTED=1
  # Inode tables and journal written now, so no background initialisation runs during the figures.
  if [ "$free_gib" -gt "$img_gib" ] && truncate -s "${img_gib}G" "$img" &&
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$img" &&
    mount -o loop,discard "$img" "$BENCH_REMOTE"; then
    host_fs="ext4 with a journal (an image of ${img_gib} GiB on a loop device, made for the run)"
  else
    BENCH_MOUNTED=""
    log "could not make and mount a ${img_gib} GiB ext4 image in $BENCH_WORK ($free_gib GiB free): the hosts write to the root file system"
  fi
fi
chown deployguard-sandbox: "$BENCH_REMOTE"
chmod 755 "$BENCH_REMOTE"
export BENCH_REMOTE
port=$(head -n 1 "$BENCH_SOLO/ports")
ssh -i "$BENCH_SOLO/user_key" -p "$port" -o UserKnownHostsFile="$BENCH_SOLO/known_hosts" \
  -o StrictHostKeyChecking=yes -o BatchMode=yes deployguard-sandbox@127.0.0.1 "test -w $BENCH_REMOTE" ||
  die "cannot log in to the benchmark sshd, or $BENCH_REMOTE is not writable there (see $BENCH_SOLO/sshd-0.log)"

# ---- fixtures ----
log "generating the fixtures"
export BENCH_TREE="$BENCH_WORK/tree"
export BENCH_SMALL="$BENCH_WORK/small"
tree_line=$(node "$BENCH_ROOT/bench/lib/fixture.mjs" tree "$BENCH_TREE")
node "$BENCH_ROOT/bench/lib/fixture.mjs" small "$BENCH_SMALL" >/dev/null

# ---- the machine ----
node24=""
if [ -x "$BENCH_ROOT/node_modules/.bin/node" ]; then node24="Node $("$BENCH_ROOT/node_modules/.bin/node" --version)"; fi
dirty=$(cd "$BENCH_ROOT" && git status --porcelain -- src dist 2>/dev/null | wc -l)
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1) ($(uname -m)$(lscpu | grep -q '^Hypervisor vendor' && echo ", VM: $(lscpu | sed -n 's/^Hypervisor vendor: *//p')" || true))"
  echo "cores=$(nproc)"
  echo "ram=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "node=$(node --version)"
  echo "node24=$node24"
  echo "cli_node=$("$BENCH_NODE" --version)"
  echo "openssh=$(ssh -V 2>&1 | cut -d, -f1)"
  echo "rsync=$(rsync --version | head -n 1 | awk '{ print $3 }')"
  echo "hyperfine=$(hyperfine --version | awk '{ print $2 }')"
  echo "host_fs=$host_fs"
  echo "root_fs=$root_fs"
  echo "load_start=$(cut -d' ' -f1 /proc/loadavg)"
  echo "extra_ca=${BENCH_EXTRA_CA_CERTS:-}"
  echo "commit=$(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ "$dirty" -gt 0 ]; then echo "dirty=$dirty file(s) under src/ and dist/ differ from that commit"; fi
  # The loader (cli/index.cjs) rarely changes: the code under test is the bundle it loads.
  echo "bundle=$(date -u -r "$BENCH_WORK/dist/bundle/index.cjs" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$BENCH_WORK/dist/bundle/index.cjs" | cut -c1-12)"
  echo "tree=$(echo "$tree_line" | sed 's/ in .*//')"
} >"$BENCH_RESULTS/machine.txt"

# ---- the figures, each in its own process so one failure does not stop the others ----
failed=0
for f in "${figures[@]}"; do
  script=$(ls "$BENCH_ROOT"/bench/"$f"-*.sh)
  start=$SECONDS
  if bash "$script" 2>&1 | tee "$BENCH_RESULTS/fig$f.log"; then
    echo ok >"$BENCH_RESULTS/fig$f.status"
    log "figure $f done in $((SECONDS - start)) s"
  else
    reason=$(grep -m1 'bench: error' "$BENCH_RESULTS/fig$f.log" | sed 's/^bench: error: //' || true)
    echo "failed: ${reason:-see the output of bench/run.sh}" >"$BENCH_RESULTS/fig$f.status"
    log "figure $f FAILED after $((SECONDS - start)) s"
    failed=$((failed + 1))
  fi
done
echo "load_end=$(cut -d' ' -f1 /proc/loadavg)" >>"$BENCH_RESULTS/machine.txt"

# BENCHMARKS.md is made from figures 1-5 and 7 (report.mjs keeps the section figure 6 printed);
# a run of figure 6 alone must not replace it with a page of "not run".
report=0
for f in "${figures[@]}"; do case "$f" in [1-57]) report=1 ;; esac; done
if [ "$report" = 1 ]; then
  node "$BENCH_ROOT/bench/lib/report.mjs" "$BENCH_RESULTS" "$BENCH_ROOT/BENCHMARKS.md"
  # The project's lint checks formatting: write the file the way its prettier would.
  if [ -x "$BENCH_ROOT/node_modules/.bin/prettier" ]; then
    "$BENCH_ROOT/node_modules/.bin/prettier" --log-level warn --write "$BENCH_ROOT/BENCHMARKS.md" || true
  fi
  sed -n '/^## Summary/,/^## Machine/p' "$BENCH_ROOT/BENCHMARKS.md" | sed '$d'
fi
[ "$failed" -eq 0 ] || die "$failed figure(s) failed to run; their output is above (BENCH_KEEP=1 keeps all logs)"
