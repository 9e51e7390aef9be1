#!/usr/bin/env bash
# rsync -a of SRC/ to DEST/ on every instance of a fleet, PARALLEL at a time (the baseline for
# "20 hosts, 10 at once"). Usage: rs-fleet.sh FLEET_DIR PARALLEL SRC DEST
set -euo pipefail
fleet=$1 parallel=$2 src=$3 dest=$4
xargs -P "$parallel" -I PORT "$(dirname "$0")/rs.sh" "$fleet" PORT "$src" "$dest" <"$fleet/ports"
