#!/usr/bin/env bash
# Lets the runner's user open /dev/kvm, with the udev rule GitHub's
# runner-images maintainers give (actions/runner-images#8542): /dev/kvm is
# there on the nested-virtualisation runners but not the user's to open, and
# vmnet would then fall back to TCG, about ten times slower. Without
# /dev/kvm it does nothing: vmnet's probe picks TCG and says why.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

if [ "$VMNET_ACCEL" = tcg ]; then
  say "accel tcg: /dev/kvm left as it is"
  exit 0
fi
if [ ! -e /dev/kvm ]; then
  say "no /dev/kvm on this runner: guests run under TCG"
  exit 0
fi
rule='KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"'
echo "$rule" | as_root tee /etc/udev/rules.d/99-kvm4all.rules >/dev/null
as_root udevadm control --reload-rules
as_root udevadm trigger --name-match=kvm
# udev applies the rule asynchronously; wait until it has.
as_root udevadm settle --timeout=10 || true
say "/dev/kvm: $(stat -c '%A %U:%G' /dev/kvm)"
