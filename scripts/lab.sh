#!/usr/bin/env bash
# The main job: builds vmnet and runs the lab inside a sandbox (its own network
# namespace with no way out, its own libvirtd), so this host is untouched.
# As root on Debian 12: bash scripts/lab.sh
#
# What runs: a persistent bridge br0 made with netlink (its reboot config
# rendered for every backend and accepted by that backend's own tool), a NAT
# network, the tiny guest pinged both ways, then the capstone lab: a Debian
# guest running nginx -> Flask -> PostgreSQL in podman behind nftables, which
# `vmnet lab up capstone` ends by proving with every connectivity check green;
# then a teardown that leaves nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
say() { printf '\n== %s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

say "Debian packages"
bash scripts/deps.sh
say "build"
mkdir -p bin
go build -o bin/vmnet ./cmd/vmnet
vmnet="$PWD/bin/vmnet"
lab=${VMNET_LAB:-lab}
preview=$(mktemp -d /tmp/vmnet-lab-etc.XXXXXX)
cleanup() {
  say "teardown"
  "$vmnet" sandbox down "$lab"
  rm -rf "$preview"
}
trap cleanup EXIT

say "guest images tiny and capstone (from Debian's packages, built once, cached; here, outside the sandbox: it has no way out)"
"$vmnet" image build tiny
"$vmnet" image build capstone

say "sandbox $lab"
"$vmnet" sandbox up "$lab"
in_lab() { "$vmnet" sandbox exec "$lab" -- "$@"; }

say "bridge br0 (netlink), twice: the second run changes nothing"
in_lab "$vmnet" bridge create br0 --address 192.0.2.1/24 --address 2001:db8::1/64
in_lab "$vmnet" bridge create br0 --address 192.0.2.1/24 --address 2001:db8::1/64
in_lab "$vmnet" bridge show br0
in_lab ping -c 1 -W 2 192.0.2.1

say "reboot config for each backend, under $preview/BACKEND, checked by the backend's own tool"
for backend in networkd netplan networkmanager ifupdown; do
  in_lab "$vmnet" bridge create br0 --address 192.0.2.1/24 --address 2001:db8::1/64 --persist "$backend" --root "$preview/$backend"
done
netplan generate --root-dir "$preview/netplan" && echo "netplan generate: accepted"
nmcli --offline connection modify connection.autoconnect yes \
  < "$preview/networkmanager/etc/NetworkManager/system-connections/vmnet-br0.nmconnection" >/dev/null \
  && echo "nmcli --offline: accepted"
ifquery -i "$preview/ifupdown/etc/network/interfaces.d/vmnet-br0" br0 >/dev/null && echo "ifquery: accepted"
cat "$preview"/networkd/etc/systemd/network/10-vmnet-br0.netdev
for backend in networkd netplan networkmanager ifupdown; do
  in_lab "$vmnet" bridge delete br0 --root "$preview/$backend" >/dev/null
done
say "NAT network nat0 and the tiny guest on nat0 and br0"
in_lab "$vmnet" net create nat0 --mode nat --cidr 198.51.100.0/24
in_lab "$vmnet" vm up tiny
in_lab "$vmnet" vm list
nat_ip=$(in_lab "$vmnet" -o json vm list | sed -n 's/.*"address": "\(198\.51\.100\.[0-9]*\)".*/\1/p' | head -1)
say "host -> VM and VM -> host, on both networks"
in_lab ping -c 1 -W 3 "$nat_ip"
in_lab ping -c 1 -W 3 192.0.2.10
in_lab "$vmnet" vm exec tiny -- ping -c 1 -W 3 198.51.100.1
in_lab "$vmnet" vm exec tiny -- ping -c 1 -W 3 192.0.2.1
in_lab "$vmnet" vm down tiny

say "the capstone lab: lab up ends with the check matrix (exit 0 only when every check passes)"
in_lab "$vmnet" lab up capstone --junit "$preview/capstone-junit.xml"
in_lab curl -sS --noproxy '*' --max-time 10 http://192.0.2.10:8080/
echo
in_lab "$vmnet" lab inspect capstone
in_lab "$vmnet" lab check capstone >/dev/null && echo "vmnet lab check capstone: all green again"
in_lab "$vmnet" lab down capstone
in_lab "$vmnet" net delete nat0
say "lab ok"
