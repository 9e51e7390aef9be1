#!/usr/bin/env bash
# Figure 5: peak RSS of deployguard while it ships a 1 GiB artifact (4 files of 256 MiB), from
# /usr/bin/time -v; rsync -a of the same artifact, measured the same way, for reference.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

gib=${BENCH_BIG_GIB:-1}
parts=${BENCH_BIG_PARTS:-4}
need_kb=$(((gib * 4 + 1) * 1024 * 1024)) # the artifact here; two releases and an rsync copy there
for d in "$BENCH_WORK" "$BENCH_REMOTE"; do
  avail=$(df --output=avail -k "$d" | tail -n 1 | tr -d ' ')
  echo "df $d: ${avail} KiB free" >>"$BENCH_RESULTS/fig5-meta.txt"
  [ "$avail" -ge "$need_kb" ] || die "figure 5: $d has $((avail / 1024)) MiB free; this figure needs $((need_kb / 1024)) MiB"
done

big="$BENCH_WORK/big"
log "figure 5: writing a ${gib} GiB artifact in $parts files"
node "$BENCH_LIB/fixture.mjs" big "$big" "$gib" "$parts" >>"$BENCH_RESULTS/fig5-meta.txt"
port=$(fleet_port "$BENCH_SOLO")
base="$BENCH_REMOTE/big"
remote_dir "$base"
cfg="$BENCH_WORK/fig5.yml"
write_config "$cfg" "$big" "$base/app" 1 "$port"

log "figure 5: deployguard deploy of ${gib} GiB under /usr/bin/time -v"
DG_TIME_FILE="$BENCH_RESULTS/fig5-deployguard.time" "$BENCH_LIB/dg.sh" fig5 "$cfg" "$BENCH_SOLO"
log "figure 5: deployguard deploy of the 97 MB tree under /usr/bin/time -v (does the peak grow with the artifact?)"
write_config "$BENCH_WORK/fig5-tree.yml" "$BENCH_TREE" "$base/tree" 1 "$port"
DG_TIME_FILE="$BENCH_RESULTS/fig5-deployguard-tree.time" "$BENCH_LIB/dg.sh" fig5-tree "$BENCH_WORK/fig5-tree.yml" "$BENCH_SOLO"
node24="$BENCH_ROOT/node_modules/.bin/node"
if [ -x "$node24" ]; then
  log "figure 5: the same deploy under Node 24 (reference), to a target of its own"
  write_config "$BENCH_WORK/fig5-node24.yml" "$big" "$base/app24" 1 "$port"
  DG_TIME_FILE="$BENCH_RESULTS/fig5-deployguard-node24.time" "$BENCH_LIB/dg.sh" fig5-node24 "$BENCH_WORK/fig5-node24.yml" "$BENCH_SOLO" "$node24"
  rm -rf "$base/app24"
fi
log "figure 5: rsync -a of ${gib} GiB under /usr/bin/time -v"
/usr/bin/time -v -o "$BENCH_RESULTS/fig5-rsync.time" "$BENCH_LIB/rs.sh" "$BENCH_SOLO" "$port" "$big" "$base/rsync"
cmp "$big/part0.bin" "$base/app/current/part0.bin" || die "figure 5: the deployed file differs"
rm -rf "$base" "$big"
