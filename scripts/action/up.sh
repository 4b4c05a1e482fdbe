#!/usr/bin/env bash
# Brings the lab up inside the sandbox and runs its checks: lab up writes its
# JSON, the checks as Markdown and as JUnit into the run's work directory.
# It always exits 0: report.sh turns the result into the step summary and
# the outputs, and fails the job when the lab did not pass.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

lab=$VMNET_LAB
if [ -f "$lab" ]; then lab=$(realpath "$lab"); fi
mkdir -p "$VMNET_WORK" "$(dirname "$VMNET_JUNIT")"
rm -f "$VMNET_WORK"/up.json "$VMNET_WORK"/up.log "$VMNET_WORK"/up.rc "$VMNET_WORK"/checks.md "$VMNET_JUNIT"
say "vmnet lab up $VMNET_LAB --accel $VMNET_ACCEL (in sandbox $VMNET_SANDBOX)"
rc=0
in_sandbox "$VMNET_BIN" -o json lab up "$lab" --accel "$VMNET_ACCEL" \
  --junit "$VMNET_JUNIT" --markdown "$VMNET_WORK/checks.md" \
  >"$VMNET_WORK/up.json" 2> >(tee "$VMNET_WORK/up.log" >&2) || rc=$?
echo "$rc" >"$VMNET_WORK/up.rc"
say "lab up exited $rc"
