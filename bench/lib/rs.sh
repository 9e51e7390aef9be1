#!/usr/bin/env bash
# rsync -a of SRC/ into DEST/ on the benchmark user's account, over the given sshd instance, with
# the host key pinned exactly as deployguard pins it. Usage: rs.sh FLEET_DIR PORT SRC DEST
set -euo pipefail
fleet=$1 port=$2 src=$3 dest=$4
exec rsync -a -e "ssh -i $fleet/user_key -p $port -o UserKnownHostsFile=$fleet/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes" \
  "$src/" "deployguard-sandbox@127.0.0.1:$dest/"
