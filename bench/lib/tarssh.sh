#!/usr/bin/env bash
# tar -c of SRC piped through ssh into tar -x in DEST: the shape of deployguard's upload (one
# tar stream over one SSH channel) built from C tools. Usage: tarssh.sh FLEET_DIR PORT SRC DEST
set -euo pipefail
fleet=$1 port=$2 src=$3 dest=$4
tar -c -f - -C "$src" . |
  ssh -i "$fleet/user_key" -p "$port" -o UserKnownHostsFile="$fleet/known_hosts" \
    -o StrictHostKeyChecking=yes -o BatchMode=yes deployguard-sandbox@127.0.0.1 \
    "mkdir -p '$dest' && tar -x -f - -C '$dest' --no-same-owner"
