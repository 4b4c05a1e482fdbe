#!/usr/bin/env bash
# The action's first step: installs the Ubuntu packages vmnet builds and runs
# a lab with, on GitHub's ubuntu-24.04 and ubuntu-22.04 runners. It follows
# scripts/deps.sh (Debian 12) without the packages only the test suite needs
# (the persistence backends' tools, the capstone app's host-side test parts,
# the shell lint, graphviz, iperf3).
#
# Every name below exists on ubuntu-24.04 (noble) and ubuntu-22.04 (jammy)
# and on Debian 12, so one list serves (mmdebstrap, debian-archive-keyring,
# genisoimage, podman, crun, conmon and catatonit are in Ubuntu's universe,
# which the runners enable). What differs is the version:
#   package                 Debian 12   ubuntu-24.04   ubuntu-22.04
#   qemu-system-x86         7.2         8.2            6.2
#   libvirt-daemon-system   9.0         10.0           8.0
#   mmdebstrap              1.3         1.4            0.8
#   podman                  4.3         4.9            3.4
#   debian-archive-keyring  2023.3      2023.4ubuntu1  2021.1.1ubuntu2
# Against Debian 12 (scripts/deps.sh), Ubuntu needs debian-archive-keyring
# in addition: vmnet resolves and downloads the guests' packages from
# Debian's bookworm through an apt state of its own (the image cache's .apt:
# its own sources.list, checked against
# /usr/share/keyrings/debian-archive-keyring.gpg), never the runner's
# Ubuntu sources, and mmdebstrap checks the same key. The mirror is
# deb.debian.org; $VMNET_DEBIAN_MIRROR and $VMNET_DEBIAN_SECURITY_MIRROR
# choose others (as_root keeps them through sudo). jammy's keyring predates
# bookworm's own keys: it verifies bookworm's lists only while Debian also
# signs them with the bullseye keys. libvirt's QEMU driver
# (libvirt-daemon-driver-qemu) comes as a dependency of libvirt-daemon on
# all three. podman, crun, conmon and catatonit: labs with containers on the
# lab host (kind: container, e.g. vm-container). None of this could be tried
# here (only Debian's archive is reachable): the release check below warns
# on any other system.
set -euo pipefail
# shellcheck source=scripts/action/lib.sh
. "$(dirname "$0")/lib.sh"

packages=(
  gcc pkg-config libvirt-dev
  iproute2 util-linux iputils-ping curl jq
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base dnsmasq-utils iptables
  mmdebstrap debian-archive-keyring e2fsprogs genisoimage libxml2-utils
  podman crun conmon catatonit
)
# shellcheck source=/dev/null
. /etc/os-release
case "${VERSION_ID:-}" in
  24.04 | 22.04) ;;
  *) echo "::warning::vmnet's action is made for ubuntu-24.04 and ubuntu-22.04; this is ${PRETTY_NAME:-an unknown system}" ;;
esac

# As scripts/deps.sh does: no service starts while installing (policy-rc.d
# exit 101), so the runner's own libvirtd does not start and make its
# default network; the lab gets a libvirtd of its own in the sandbox.
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
trap '[ -z "$made_policy" ] || as_root rm -f /usr/sbin/policy-rc.d' EXIT

say "installing ${#packages[@]} packages on ${PRETTY_NAME:-this runner}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
say "packages installed"
