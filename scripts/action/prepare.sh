#!/usr/bin/env bash
# Builds the lab's guest images (outside the sandbox: it has no way out to
# Debian's mirror; a cached image is not built again), makes the sandbox the
# lab runs in (its own network namespace and libvirtd: the runner's network
# is untouched), and runs vmnet doctor inside it for the log.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

lab=$VMNET_LAB
if [ -f "$lab" ]; then lab=$(realpath "$lab"); fi
say "vmnet image build --lab $VMNET_LAB"
as_root "$VMNET_BIN" image build --lab "$lab"
say "vmnet sandbox up $VMNET_SANDBOX"
as_root "$VMNET_BIN" sandbox up "$VMNET_SANDBOX"
say "vmnet doctor (inside the sandbox)"
# A FAIL here is reported, not fatal: lab up says what stops it, and why.
in_sandbox "$VMNET_BIN" doctor ||
  echo "::warning::vmnet doctor found a problem (see its fixes above); trying the lab anyway"
