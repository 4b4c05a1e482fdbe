#!/usr/bin/env bash
# Shared by the GitHub Action's steps (action.yml at the repository root):
# where vmnet and the run's files live, and how to run a command as root.
# The runner's user is not root but has passwordless sudo; the test suite
# runs these scripts as root, where sudo is not needed.

# The action's inputs, as action.yml passes them.
VMNET_LAB=${VMNET_LAB:-capstone}
VMNET_ACCEL=${VMNET_ACCEL:-auto}
VMNET_SANDBOX=${VMNET_SANDBOX:-gha}
# The run's files: vmnet's binary, lab up's JSON, Markdown and log.
VMNET_WORK=${VMNET_WORK:-${RUNNER_TEMP:?RUNNER_TEMP is not set: run inside GitHub Actions, or set it to a scratch directory}/vmnet}
VMNET_BIN=${VMNET_BIN:-$VMNET_WORK/vmnet}
VMNET_JUNIT=${VMNET_JUNIT:-$RUNNER_TEMP/vmnet-junit.xml}
export VMNET_LAB VMNET_ACCEL VMNET_SANDBOX VMNET_WORK VMNET_BIN VMNET_JUNIT

# as_root runs a command as root: directly when this is root, else with
# sudo, keeping PATH and the Debian mirrors a workflow may choose for image
# builds (VMNET_DEBIAN_MIRROR, VMNET_DEBIAN_SECURITY_MIRROR).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo --preserve-env=PATH,VMNET_DEBIAN_MIRROR,VMNET_DEBIAN_SECURITY_MIRROR "$@"
  fi
}

# in_sandbox runs a command inside the action's sandbox, as root.
in_sandbox() {
  as_root "$VMNET_BIN" sandbox exec "$VMNET_SANDBOX" -- "$@"
}

# say prints a timestamped line, as the job's log shows it.
say() { printf '== %s %s\n' "$(date -u +%H:%M:%S)" "$*"; }
