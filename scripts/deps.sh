#!/usr/bin/env bash
# Installs the Debian packages vmnet builds, tests and runs with. Idempotent:
# it calls apt-get only when a package is missing.
set -euo pipefail

packages=(
  # build: cgo against libvirt
  gcc pkg-config libvirt-dev
  # netlink tests and the sandbox
  iproute2 util-linux iputils-ping curl
  # the GitHub Action's report reads lab up's JSON, and its scripts run as a
  # non-root user with sudo, as on GitHub's runners (integration: TestActionScripts)
  jq sudo
  # the persistence backends' own tools, which check vmnet's files
  netplan.io network-manager ifupdown bridge-utils
  # a private libvirtd inside the sandbox, QEMU, NAT networks
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables
  # dhcp_release: vm down releases the guest's lease in libvirt's dnsmasq
  dnsmasq-utils
  # lab graph: SVG and PNG through Graphviz's dot
  graphviz
  # virt-xml-validate needs xmllint
  libxml2-utils
  # guest images: Debian root file systems and ext4 images without loop mounts
  mmdebstrap e2fsprogs
  # the capstone app's real parts, tested on the host in a throwaway netns,
  # its firewall (nft -c) and its cloud-init seed (schema check, ISO read-back)
  postgresql-15 nginx-light python3-flask python3-psycopg2 nftables cloud-init genisoimage
  # the lint of every shell script (scripts/lint_test.go)
  shellcheck
  # GitHub's Markdown renderer: the --output markdown table renders as a
  # table (internal/report's TestMarkdownRendersAsGitHubTable)
  cmark-gfm
  # vmnet perf: the host's end of each host <-> VM pair (the tiny image has its own)
  iperf3
  # containers on the lab host (kind: container): podman with its OCI runtime,
  # monitor and init; netavark is not needed (vmnet wires --network none itself)
  podman crun conmon catatonit
  # the modes lab's integration test: a registry in the sandbox that a guest
  # container pulls from (image:, insecure:), serving a busybox-static image
  docker-registry busybox-static
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (sudo) to install them" >&2
  exit 1
fi

# Installing network-manager or libvirt must not start daemons that would
# manage this host's network: policy-rc.d (exit 101) forbids service starts.
cleanup_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  cleanup_policy=1
fi
trap '[ -n "$cleanup_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} packages"
