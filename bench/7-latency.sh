#!/usr/bin/env bash
# Figure 7: the same deploys over a link with a 50 ms round trip (a userspace proxy delaying each
# direction by 25 ms: no netem on this machine). First deployguard vs rsync -a through the same
# proxy (the small artifact, to an emptied target), where every round trip costs 50 ms; then one
# deploy to 20 hosts (max-parallel: 20), each behind its own proxy port, vs the same deploy to one.
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

delay=${BENCH_DELAY_MS:-25}
hosts=${BENCH_LATENCY_HOSTS:-20}
runs=${BENCH_LATENCY_RUNS:-$BENCH_RUNS}
artifact=$BENCH_SMALL
fleet="$BENCH_WORK/latency-fleet"
proxy="$BENCH_WORK/latency-proxy"
mnt="$BENCH_REMOTE/latency-target"
remote_dir "$mnt"
remote_dir "$BENCH_REMOTE/latency-hosts"
mkdir -p "$proxy"

log "figure 7: starting $hosts sshd instances behind a proxy adding $delay ms each way"
node "$BENCH_LIB/fleet.mjs" start "$fleet" "$hosts" "$mnt" "$BENCH_REMOTE/latency-hosts" >/dev/null
node "$BENCH_LIB/delay-proxy.mjs" start "$proxy" "$fleet" "$delay"
trap 'node "$BENCH_LIB/delay-proxy.mjs" stop "$proxy" || true' EXIT
mapfile -t ports <"$proxy/ports"
{
  echo "delay_ms=$delay"
  echo "hosts=$hosts"
  echo "artifact_files=$(find "$artifact" -type f | wc -l)"
  echo "artifact_bytes=$(du -sb "$artifact" | cut -f1)"
  # What one round trip costs through the proxy: ssh's own login and a no-op command.
  start=$(date +%s%N)
  ssh -i "$proxy/user_key" -p "${ports[0]}" -o UserKnownHostsFile="$proxy/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes "$BENCH_USER@127.0.0.1" true
  echo "ssh_true_ms=$((($(date +%s%N) - start) / 1000000))"
} >"$BENCH_RESULTS/fig7-meta.txt"

one_cfg="$BENCH_WORK/fig7-one.yml"
all_cfg="$BENCH_WORK/fig7-all.yml"
write_fleet_configs fig7 "$artifact" "$mnt/app" "$hosts" "${ports[@]}"
host0="$BENCH_REMOTE/latency-hosts/host-00"

log "figure 7a: deployguard vs rsync -a over the delayed link ($runs runs)"
bench_hyperfine fig7a --runs "$runs" --warmup 1 \
  -n "deployguard deploy, 50 ms RTT" \
  --prepare "rm -rf $host0/app" \
  "$BENCH_LIB/dg.sh fig7-one $one_cfg $proxy" \
  -n "rsync -a, 50 ms RTT" \
  --prepare "rm -rf $host0/rsync" \
  "$BENCH_LIB/rs.sh $proxy ${ports[0]} $artifact $mnt/rsync"
live="$host0/app/releases/$(basename "$(readlink "$host0/app/current")")"
diff -r "$artifact" "$live" >/dev/null || die "figure 7: $live differs from the artifact"
diff -r "$artifact" "$host0/rsync/" >/dev/null || die "figure 7: the rsync copy differs from the artifact"

log "figure 7b: $hosts hosts vs 1 over the delayed link ($runs runs)"
bench_hyperfine fig7b --runs "$runs" --warmup 0 \
  -n "deployguard deploy, 1 host, 50 ms RTT" \
  --prepare "rm -rf $BENCH_REMOTE/latency-hosts/host-*/app" \
  "$BENCH_LIB/dg.sh fig7-one $one_cfg $proxy" \
  -n "deployguard deploy, $hosts hosts at once, 50 ms RTT" \
  --prepare "rm -rf $BENCH_REMOTE/latency-hosts/host-*/app" \
  "$BENCH_LIB/dg.sh fig7-all $all_cfg $proxy" \
  -n "rsync -a, 1 host, 50 ms RTT" \
  --prepare "rm -rf $BENCH_REMOTE/latency-hosts/host-*/rsync" \
  "$BENCH_LIB/rs.sh $proxy ${ports[0]} $artifact $mnt/rsync" \
  -n "rsync -a, $hosts hosts at once, 50 ms RTT" \
  --prepare "rm -rf $BENCH_REMOTE/latency-hosts/host-*/rsync" \
  "$BENCH_LIB/rs-fleet.sh $proxy $hosts $artifact $mnt/rsync"

# Where the CPU goes in one run of each fleet-wide command: the sshd side (every sshd and what it
# runs), the proxy and the client, each in a cpuacct cgroup of its own (cgroup v1, as on this machine).
cg=/sys/fs/cgroup/cpuacct
if [ -w "$cg" ]; then
  cpu_of() { # NAME COMMAND...: runs COMMAND in the client group; prints NAME and each group's CPU ms
    local name=$1 pid
    shift
    for pid in $(cat "$fleet"/sshd-*.pid); do echo "$pid" >"$cg/deployguard-bench-sshd/cgroup.procs"; done
    echo "$(cat "$proxy/pid")" >"$cg/deployguard-bench-proxy/cgroup.procs"
    for g in sshd proxy client; do echo 0 >"$cg/deployguard-bench-$g/cpuacct.usage"; done
    local t0 t1
    t0=$(date +%s%N)
    sh -c 'echo $$ >"$0/cgroup.procs"; exec "$@"' "$cg/deployguard-bench-client" "$@" >/dev/null
    t1=$(date +%s%N)
    echo "$name wall=$(((t1 - t0) / 1000000)) sshd=$(($(cat "$cg/deployguard-bench-sshd/cpuacct.usage") / 1000000)) proxy=$(($(cat "$cg/deployguard-bench-proxy/cpuacct.usage") / 1000000)) client=$(($(cat "$cg/deployguard-bench-client/cpuacct.usage") / 1000000))"
  }
  mkdir -p "$cg/deployguard-bench-sshd" "$cg/deployguard-bench-proxy" "$cg/deployguard-bench-client"
  {
    for what in one all; do
      rm -rf "$BENCH_REMOTE"/latency-hosts/host-*/app
      cpu_of "deployguard-$what" "$BENCH_LIB/dg.sh" "fig7-cpu-$what" "$BENCH_WORK/fig7-$what.yml" "$proxy"
      rm -rf "$BENCH_REMOTE"/latency-hosts/host-*/rsync
      if [ "$what" = one ]; then
        cpu_of "rsync-$what" "$BENCH_LIB/rs.sh" "$proxy" "${ports[0]}" "$artifact" "$mnt/rsync"
      else
        cpu_of "rsync-$what" "$BENCH_LIB/rs-fleet.sh" "$proxy" "$hosts" "$artifact" "$mnt/rsync"
      fi
    done
  } >"$BENCH_RESULTS/fig7-cpu.txt"
  # The processes go back to the root group, and the groups go.
  for g in sshd proxy client; do
    while read -r pid; do echo "$pid" >"$cg/cgroup.procs" 2>/dev/null || true; done <"$cg/deployguard-bench-$g/cgroup.procs"
    rmdir "$cg/deployguard-bench-$g" 2>/dev/null || true
  done
fi
for d in "$BENCH_REMOTE"/latency-hosts/host-*; do
  live="$d/app/releases/$(basename "$(readlink "$d/app/current")")"
  diff -r "$artifact" "$live" >/dev/null || die "figure 7: $live differs from the artifact"
done
node "$BENCH_LIB/delay-proxy.mjs" stop "$proxy"
trap - EXIT
node "$BENCH_LIB/fleet.mjs" stop "$fleet"
