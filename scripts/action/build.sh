#!/usr/bin/env bash
# Builds vmnet from the action's own checkout (cgo, against libvirt-dev)
# into the run's work directory.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

mkdir -p "$VMNET_WORK"
say "go build ./cmd/vmnet -> $VMNET_BIN"
(cd "$(dirname "$0")/../.." && go build -o "$VMNET_BIN" ./cmd/vmnet)
"$VMNET_BIN" --version
