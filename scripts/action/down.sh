#!/usr/bin/env bash
# The action's last step (if: always(), skipped with keep: true): lab down
# inside the sandbox, then the sandbox itself. Both are no-ops when already
# gone, so this runs after any earlier failure; with no vmnet built there is
# nothing to remove.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

if [ ! -x "$VMNET_BIN" ]; then
  say "no vmnet at $VMNET_BIN: nothing was brought up"
  exit 0
fi
name=$(cat "$VMNET_WORK/lab-name" 2>/dev/null || true)
if [ -z "$name" ] && [ ! -f "$VMNET_LAB" ]; then name=$VMNET_LAB; fi
rc=0
if [ -n "$name" ] && as_root "$VMNET_BIN" sandbox exec "$VMNET_SANDBOX" -- true 2>/dev/null; then
  say "vmnet lab down $name"
  in_sandbox "$VMNET_BIN" lab down "$name" || rc=$?
fi
# The sandbox goes even when lab down failed: with it go its libvirtd, its
# network namespace and everything the lab made inside them.
say "vmnet sandbox down $VMNET_SANDBOX"
as_root "$VMNET_BIN" sandbox down "$VMNET_SANDBOX" || rc=$?
exit "$rc"
