#!/usr/bin/env bash
# Figure 2: a deploy after 1% of the files changed (30 small files), against rsync -a of the same
# change onto the previous version, and against a full deploy to an empty target.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

port=$(fleet_port "$BENCH_SOLO")
base="$BENCH_REMOTE/incremental"
remote_dir "$base"
tree="$BENCH_WORK/tree-incremental"
rm -rf "$tree"
cp -a "$BENCH_TREE" "$tree"
inc_cfg="$BENCH_WORK/fig2-incremental.yml"
full_cfg="$BENCH_WORK/fig2-full.yml"
write_config "$inc_cfg" "$tree" "$base/app" 2 "$port"
write_config "$full_cfg" "$BENCH_TREE" "$base/fresh/app" 2 "$port"

log "figure 2: setting up the previous version on the host"
"$BENCH_LIB/dg.sh" fig2-setup "$inc_cfg" "$BENCH_SOLO"
"$BENCH_LIB/rs.sh" "$BENCH_SOLO" "$port" "$tree" "$base/rsync"

log "figure 2: 30 changed files: deployguard vs rsync -a vs a full deploy ($BENCH_RUNS runs, $BENCH_WARMUP warmup)"
# Each run first changes 30 other files. The rsync copy is brought up to date (untimed) before
# the change, so every timed rsync sees exactly the 30 files the deploys see; each deploy already
# leaves the host at the previous version. The full deploy goes to an emptied target, and so does
# the full rsync beside it: rsync's own speed-up from the change is the reference for figure 2b.
# The same incremental deploy under Node 24 (the runtime action.yml declares), for reference, when the
# dev dependency that ships it is installed: its compile cache is warm after the warmup run.
node24_row=()
node24="$BENCH_ROOT/node_modules/.bin/node"
if [ -x "$node24" ]; then
  node24_row=(-n "deployguard deploy, 30 files changed, Node $("$node24" --version) (reference)"
    --prepare "$BENCH_LIB/mutate.sh $tree" "$BENCH_LIB/dg.sh fig2-node24 $inc_cfg $BENCH_SOLO $node24")
fi
bench_hyperfine fig2 --runs "$BENCH_RUNS" --warmup "$BENCH_WARMUP" \
  -n "deployguard deploy, 30 files changed" \
  --prepare "$BENCH_LIB/mutate.sh $tree" \
  "$BENCH_LIB/dg.sh fig2-incremental $inc_cfg $BENCH_SOLO" \
  -n "rsync -a, 30 files changed" \
  --prepare "$BENCH_LIB/rs.sh $BENCH_SOLO $port $tree $base/rsync && $BENCH_LIB/mutate.sh $tree" \
  "$BENCH_LIB/rs.sh $BENCH_SOLO $port $tree $base/rsync" \
  -n "deployguard deploy, full (empty target)" \
  --prepare "rm -rf $base/fresh && mkdir $base/fresh && chown $BENCH_USER: $base/fresh" \
  "$BENCH_LIB/dg.sh fig2-full $full_cfg $BENCH_SOLO" \
  -n "rsync -a, full (empty directory)" \
  --prepare "rm -rf $base/rsync-fresh" \
  "$BENCH_LIB/rs.sh $BENCH_SOLO $port $BENCH_TREE $base/rsync-fresh" \
  "${node24_row[@]}"

# The reference row changed the tree once more after the last rsync: one more (untimed) brings it level.
"$BENCH_LIB/rs.sh" "$BENCH_SOLO" "$port" "$tree" "$base/rsync"
diff -r "$tree" "$base/rsync/" >/dev/null || die "figure 2: the rsync copy differs from the tree"
# The last deploy of the changing tree happened before the rsync runs changed it further.
[ -d "$base/app/current/" ] || die "figure 2: no release is live"
diff -r "$BENCH_TREE" "$base/fresh/app/current/" >/dev/null || die "figure 2: the full deploy differs from the tree"
diff -r "$BENCH_TREE" "$base/rsync-fresh/" >/dev/null || die "figure 2: the full rsync copy differs from the tree"
rm -rf "$base" "$tree"
