#!/usr/bin/env bash
# Build (once) the Debian root that the integration tests boot with systemd as PID 1.
#
# Usage: rootfs.sh [--print-path]
#   Prints the absolute path of the ready root as the LAST line of stdout; progress goes to stderr.
#   --print-path only prints where the root lives (it may not exist yet) and builds nothing.
#
# The root is cached outside the repository, keyed by a hash of its recipe (suite, variant, package
# list, RECIPE_REV), so a changed package list builds a new root and an unchanged one is reused.
# It is built in a temporary directory next to its final place and renamed into place only when
# complete: rename(2) of a directory is atomic, so an interrupted build can never leave a root that
# looks ready. A lock serialises concurrent builders (two jest runs, or a run and a manual build).
#
# Environment:
#   DEPLOYGUARD_TEST_CACHE  cache directory (default /var/cache/deployguard-tests)
#   DEPLOYGUARD_MIRROR      Debian mirror (default: first "URIs:" line of
#                           /etc/apt/sources.list.d/debian.sources, else http://deb.debian.org/debian)
set -euo pipefail
# debootstrap, chroot and mount live in sbin, which a non-login root shell may not have on PATH.
export PATH="$PATH:/usr/sbin:/sbin"

SUITE=bookworm
VARIANT=minbase
# nginx: the reverse proxy of blue-green deploys. Debian's plain `nginx` package is the lightest
# that has the proxy and upstream modules (nginx-light only adds the echo module on top of it).
PACKAGES=systemd,systemd-sysv,openssh-server,dbus,iproute2,curl,nodejs,procps,sudo,nginx
# Bump when the post-processing below changes: it is part of the cache key.
RECIPE_REV=3

CACHE_DIR=${DEPLOYGUARD_TEST_CACHE:-/var/cache/deployguard-tests}
KEY=$(printf '%s\n' "$SUITE" "$VARIANT" "$PACKAGES" "$RECIPE_REV" | sha256sum | cut -c1-16)
ROOT="$CACHE_DIR/rootfs-$KEY"

if [[ "${1:-}" == "--print-path" ]]; then
  echo "$ROOT"
  exit 0
fi

log() { echo "[rootfs] $*" >&2; }

# The marker is written last, inside the temp dir, before the rename: a root without it was not
# made by this script (or by an older, broken one) and is not trusted.
MARKER=.deployguard-rootfs
if [[ -f "$ROOT/$MARKER" ]]; then
  # Records when the root was last used, for pruning (below); harmless if it fails.
  touch "$ROOT/$MARKER" 2>/dev/null || true
  echo "$ROOT"
  exit 0
fi

if [[ $EUID -ne 0 ]]; then
  log "building the test root needs root (debootstrap, chroot, mounts)"
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  log "debootstrap is not installed: run  apt-get install -y openssh-server debootstrap"
  exit 1
fi

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/.build.lock"
log "waiting for the build lock $CACHE_DIR/.build.lock"
flock 9

# Another builder may have finished while we waited for the lock.
if [[ -f "$ROOT/$MARKER" ]]; then
  echo "$ROOT"
  exit 0
fi
# A directory at the final path without the marker was not completed by this script (builds are
# renamed into place only when done): never trust it.
if [[ -e "$ROOT" ]]; then
  log "removing untrusted $ROOT (no $MARKER)"
  rm -rf --one-file-system "$ROOT"
fi

# Leftovers of interrupted builds (we hold the lock, so none of them is in progress). debootstrap
# bind-mounts nothing on its own, but if it was killed during its chroot phase /proc or /sys may
# still be mounted inside; unmount before deleting so rm never descends into the real /proc or /sys.
for stale in "$CACHE_DIR"/.building-*; do
  [[ -e "$stale" ]] || continue
  log "removing interrupted build $stale"
  awk -v p="$stale/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$stale"
done

MIRROR=${DEPLOYGUARD_MIRROR:-}
if [[ -z "$MIRROR" && -f /etc/apt/sources.list.d/debian.sources ]]; then
  MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
MIRROR=${MIRROR:-http://deb.debian.org/debian}

TMP=$(mktemp -d "$CACHE_DIR/.building-$KEY.XXXXXX")
cleanup() {
  awk -v p="$TMP/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$TMP"
}
trap cleanup EXIT

log "debootstrap --variant=$VARIANT --include=$PACKAGES $SUITE from $MIRROR (a few minutes)"
start=$SECONDS
debootstrap --variant="$VARIANT" --include="$PACKAGES" "$SUITE" "$TMP" "$MIRROR" >"$TMP.log" 2>&1 || {
  log "debootstrap failed; last lines of its log:"
  tail -n 30 "$TMP.log" >&2
  rm -f "$TMP.log"
  exit 1
}
rm -f "$TMP.log"

# --- post-processing: things every booted host needs, done once here instead of per boot ---

# Host keys made by openssh-server's postinst would be shared by every copy; the harness writes a
# fresh key per host instead, so each host has its own identity (as real hosts do).
rm -f "$TMP"/etc/ssh/ssh_host_*
# The machine id made at build time is left in place (an empty one means "first boot" to systemd,
# which then runs systemd-firstboot and may prompt on the console); the harness overwrites it with
# a fresh one per host.
# Downloaded .debs are 100+ MB that every per-host copy would otherwise carry.
rm -f "$TMP"/var/cache/apt/archives/*.deb
# Units that make no sense, or do harm, in a chrooted namespace that shares the machine's kernel,
# network and /dev. Masking (not just disabling) also stops other units from pulling them in.
#  - kernel-global state: sysctl settings (net.* too: the network namespace is the machine's),
#    kernel modules, binfmt_misc registrations, pstore;
#  - consoles: a getty would take over the machine's console or ttys;
#  - the machine's network is configured already; timers that would do I/O in the background.
for unit in \
  systemd-sysctl.service systemd-modules-load.service modprobe@.service kmod-static-nodes.service \
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
  systemd-pstore.service \
  getty@.service serial-getty@.service console-getty.service \
  systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  systemd-firstboot.service; do
  ln -sf /dev/null "$TMP/etc/systemd/system/$unit"
done
# nginx: hosts share the machine's network, so an nginx started at boot with Debian's default site
# would take port 80 on the machine itself, once per booted host. Tests write their own site and
# start nginx when they need it. Disabled, not masked: `systemctl start/reload nginx` must work.
rm -f "$TMP/etc/nginx/sites-enabled/default"
rm -f "$TMP/etc/systemd/system/multi-user.target.wants/nginx.service"
if [[ -n $(find "$TMP/etc/systemd/system" -name nginx.service -path '*.wants/*' 2>/dev/null) ]]; then
  log "nginx.service is still pulled in at boot:"
  find "$TMP/etc/systemd/system" -name nginx.service -path '*.wants/*' >&2
  exit 1
fi
# journald: keep the journal in memory (/run) so copies start empty and never grow on disk.
mkdir -p "$TMP/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' >"$TMP/etc/systemd/journald.conf.d/deployguard.conf"

printf 'suite=%s\nvariant=%s\npackages=%s\nrecipe=%s\nmirror=%s\n' \
  "$SUITE" "$VARIANT" "$PACKAGES" "$RECIPE_REV" "$MIRROR" >"$TMP/$MARKER"
# debootstrap makes a 0755 root; mktemp made ours 0700. Sshd and services inside expect 0755.
chmod 0755 "$TMP"
sync -f "$TMP/$MARKER"
mv -T "$TMP" "$ROOT"
trap - EXIT
log "built $ROOT in $((SECONDS - start)) s"

# Roots of other recipes (an older package list, another branch) are 300+ MB each. Remove those
# unused for a week, unless something still has one mounted as an overlay lower layer.
for other in "$CACHE_DIR"/rootfs-*; do
  [[ "$other" == "$ROOT" || ! -d "$other" ]] && continue
  if [[ -z $(find "$other/$MARKER" -mtime -7 2>/dev/null) ]] && ! grep -qF "$other" /proc/self/mountinfo; then
    log "removing unused old root $other"
    rm -rf --one-file-system "$other"
  fi
done
echo "$ROOT"
