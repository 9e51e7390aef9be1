#!/usr/bin/env bash
# Figure 3: one deploy to 20 hosts with deploy.max-parallel: 10 vs the same deploy to one host.
# Every host is its own sshd on its own port, with its own target directory (a mount namespace
# per sshd binds a directory of its own on the one target path of the config). Baseline: rsync -a
# to the 20 hosts, 10 at a time, vs rsync -a to one host.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

hosts=${BENCH_FLEET_HOSTS:-20}
parallel=${BENCH_FLEET_PARALLEL:-10}
runs=${BENCH_FLEET_RUNS:-$BENCH_RUNS}
artifact=${BENCH_FLEET_ARTIFACT:-$BENCH_SMALL}
fleet="$BENCH_WORK/fleet"
mnt="$BENCH_REMOTE/fleet-target"
remote_dir "$mnt"
remote_dir "$BENCH_REMOTE/fleet-hosts"

log "figure 3: starting $hosts sshd instances"
node "$BENCH_LIB/fleet.mjs" start "$fleet" "$hosts" "$mnt" "$BENCH_REMOTE/fleet-hosts" >/dev/null
mapfile -t ports <"$fleet/ports"

one_cfg="$BENCH_WORK/fig3-one.yml"
all_cfg="$BENCH_WORK/fig3-all.yml"
write_fleet_configs fig3 "$artifact" "$mnt/app" "$parallel" "${ports[@]}"

# The first deploy to the fleet doubles as the check that the CLI accepts max-parallel.
meta="$BENCH_RESULTS/fig3-meta.txt"
{
  echo "hosts=$hosts"
  echo "parallel=$parallel"
  echo "artifact=$artifact"
  echo "artifact_files=$(find "$artifact" -type f | wc -l)"
  echo "artifact_bytes=$(du -sb "$artifact" | cut -f1)"
} >"$meta"
log "figure 3: first deploy to all $hosts hosts (checks that max-parallel is accepted)"
if "$BENCH_LIB/dg.sh" fig3-setup "$all_cfg" "$fleet" 2>"$BENCH_WORK/fig3-setup.err"; then
  echo "max_parallel=accepted" >>"$meta"
else
  setup_log=$(ls -t "$BENCH_RESULTS"/dg/fig3-setup-*.log | head -n 1)
  if grep -q 'max-parallel' "$setup_log"; then
    log "figure 3: the CLI rejects deploy.max-parallel; measuring its default (sequential) instead"
    echo "max_parallel=rejected" >>"$meta"
    echo "max_parallel_error=$(grep -m1 'max-parallel' "$setup_log" | tr -d '\r' | cut -c1-300)" >>"$meta"
    write_config "$all_cfg" "$artifact" "$mnt/app" 2 "${ports[@]}"
    "$BENCH_LIB/dg.sh" fig3-setup "$all_cfg" "$fleet"
  else
    cat "$BENCH_WORK/fig3-setup.err" >&2
    die "figure 3: the first deploy to the fleet failed"
  fi
fi
"$BENCH_LIB/dg.sh" fig3-setup "$one_cfg" "$fleet"

log "figure 3: 1 host vs $hosts hosts ($runs runs each)"
bench_hyperfine fig3 --runs "$runs" --warmup 0 \
  -n "deployguard deploy, 1 host" \
  --prepare true \
  "$BENCH_LIB/dg.sh fig3-one $one_cfg $fleet" \
  -n "deployguard deploy, $hosts hosts" \
  --prepare true \
  "$BENCH_LIB/dg.sh fig3-all $all_cfg $fleet" \
  -n "rsync -a, 1 host" \
  --prepare "rm -rf $BENCH_REMOTE/fleet-hosts/host-*/rsync" \
  "$BENCH_LIB/rs.sh $fleet ${ports[0]} $artifact $mnt/rsync" \
  -n "rsync -a, $hosts hosts, $parallel at a time" \
  --prepare "rm -rf $BENCH_REMOTE/fleet-hosts/host-*/rsync" \
  "$BENCH_LIB/rs-fleet.sh $fleet $parallel $artifact $mnt/rsync"

# Every host must hold its own complete copy: the 20 deploys really went to 20 places.
# (current is an absolute link valid inside the host's mount namespace: follow it by hand.)
for d in "$BENCH_REMOTE"/fleet-hosts/host-*; do
  live="$d/app/releases/$(basename "$(readlink "$d/app/current")")"
  diff -r "$artifact" "$live" >/dev/null || die "figure 3: $live differs from the artifact"
  diff -r "$artifact" "$d/rsync/" >/dev/null || die "figure 3: $d/rsync differs from the artifact"
done
echo "verified_hosts=$(ls -d "$BENCH_REMOTE"/fleet-hosts/host-* | wc -l)" >>"$meta"
node "$BENCH_LIB/fleet.mjs" stop "$fleet"
