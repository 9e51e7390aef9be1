#!/usr/bin/env bash
# Figure 1: a full deploy with verification vs rsync -a of the same tree to an empty directory
# (and, for reference, tar piped through ssh: the transport deployguard's upload resembles).
# Both targets are emptied before each run: deployguard hard-links files it already holds from the
# previous release, so redeploying the same tree onto a kept target would send nothing.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

port=$(fleet_port "$BENCH_SOLO")
base="$BENCH_REMOTE/full"
remote_dir "$base"
cfg="$BENCH_WORK/fig1.yml"
write_config "$cfg" "$BENCH_TREE" "$base/app" 2 "$port"

log "figure 1: deployguard full deploy vs rsync -a ($BENCH_RUNS runs, $BENCH_WARMUP warmup)"
bench_hyperfine fig1 --runs "$BENCH_RUNS" --warmup "$BENCH_WARMUP" \
  -n "deployguard deploy (upload, SHA-256 verify, switch)" \
  --prepare "rm -rf $base/app" \
  "$BENCH_LIB/dg.sh fig1 $cfg $BENCH_SOLO" \
  -n "rsync -a to an empty directory" \
  --prepare "rm -rf $base/rsync" \
  "$BENCH_LIB/rs.sh $BENCH_SOLO $port $BENCH_TREE $base/rsync" \
  -n "tar -c | ssh tar -x (reference: one tar stream over one channel, in C)" \
  --prepare "rm -rf $base/tar" \
  "$BENCH_LIB/tarssh.sh $BENCH_SOLO $port $BENCH_TREE $base/tar"

# The copies must be complete and identical, or the timings mean nothing.
diff -r "$BENCH_TREE" "$base/app/current/" >/dev/null || die "figure 1: the deployed release differs from the tree"
diff -r "$BENCH_TREE" "$base/rsync/" >/dev/null || die "figure 1: the rsync copy differs from the tree"
diff -r "$BENCH_TREE" "$base/tar/" >/dev/null || die "figure 1: the tar copy differs from the tree"
rm -rf "$base"

# Round trips, counted rather than timed: a separate sshd logging at DEBUG1 records every channel
# request, so one full deploy, then one deploy of the same tree (incremental: nothing to send),
# one after 1% of the files changed, and one rsync -a show how many remote commands (exec
# channels) each needs. None of these deploys has anything to undo.
log "figure 1: counting remote commands per deploy (untimed)"
counter="$BENCH_WORK/count-sshd"
FLEET_LOGLEVEL=DEBUG1 node "$BENCH_LIB/fleet.mjs" start "$counter" 1 >/dev/null
cport=$(fleet_port "$counter")
remote_dir "$base"
write_config "$BENCH_WORK/fig1-count.yml" "$BENCH_TREE" "$base/app" 2 "$cport"
count_execs() { # LABEL COMMAND...: runs the command, appends LABEL=<exec requests it caused>
  local label=$1 before after
  shift
  before=$(grep -c 'request exec' "$counter/sshd-0.log" || true)
  "$@"
  sleep 0.5 # the session processes write their last log lines
  after=$(grep -c 'request exec' "$counter/sshd-0.log" || true)
  echo "$label=$((after - before))" >>"$BENCH_RESULTS/fig1-execs.txt"
}
count_execs full "$BENCH_LIB/dg.sh" fig1-count "$BENCH_WORK/fig1-count.yml" "$counter"
count_execs unchanged "$BENCH_LIB/dg.sh" fig1-count "$BENCH_WORK/fig1-count.yml" "$counter"
# The same target again, after 1% of the files changed (figure 2's change): an incremental deploy.
changed="$BENCH_WORK/tree-count"
rm -rf "$changed"
cp -a "$BENCH_TREE" "$changed"
"$BENCH_LIB/mutate.sh" "$changed"
write_config "$BENCH_WORK/fig1-count-changed.yml" "$changed" "$base/app" 2 "$cport"
count_execs changed "$BENCH_LIB/dg.sh" fig1-count "$BENCH_WORK/fig1-count-changed.yml" "$counter"
rm -rf "$changed"
count_execs rsync "$BENCH_LIB/rs.sh" "$counter" "$cport" "$BENCH_TREE" "$base/rsync"
node "$BENCH_LIB/fleet.mjs" stop "$counter"
rm -rf "$base"
