// Package hostctr runs a lab's containers on the lab host itself (nodes of
// kind container): each is a podman container with no network of its own
// (--network none) running from vmnet's exploded Debian rootfs (--rootfs
// DIR:O, an overlay, so the shared tree stays clean), and vmnet gives it
// its one interface with netlink: a veth pair with one end a port of the
// lab's bridge and the other moved into the container's namespace as eth0
// (or a macvlan or ipvlan child of the bridge), its address and a default
// route via the host's address on the bridge.
//
// Each lab has its own podman storage under vmnet's state directory
// (STATE/labs/LAB/podman: --root, --runroot, --tmpdir), cgroupfs and file
// events (no systemd here), and every container carries the labels
// vmnet.lab=LAB and vmnet.hash=HASH: down finds them by the lab's name
// alone, and up recreates one whose plan changed.
package hostctr

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"vmnet/internal/domain"
	"vmnet/internal/lab"
)

// Labels on every host container.
const (
	LabelLab  = "vmnet.lab"  // the lab's name: down removes what carries it
	LabelNode = "vmnet.node" // the node's name
	LabelHash = "vmnet.hash" // Spec.Hash: up recreates a container whose hash changed
)

// Spec is one host container as up makes it.
type Spec struct {
	Lab     string
	Node    string
	Bridge  string       // the lab bridge it is attached to
	Mode    string       // lab.HostVeth, lab.HostMacvlan or lab.HostIPvlan
	Address netip.Prefix // eth0's address
	Gateway netip.Addr   // the default route: the host's address on Bridge
	Argv    []string     // what it runs
	Rootfs  string       // the exploded rootfs directory (podman --rootfs DIR:O)
}

// Plan is the spec of each of l's host containers, in file order; rootfs
// is the directory of the ctr image (lab.HostRootfsImage). It is pure.
func Plan(l lab.Lab, rootfs string) []Spec {
	out := make([]Spec, 0, len(l.HostOrder))
	for _, name := range l.HostOrder {
		c := l.HostContainers[name]
		out = append(out, Spec{Lab: l.Name, Node: name, Bridge: c.Network, Mode: c.Mode, Address: c.Address,
			Gateway: l.HostGateway(name), Argv: c.Argv(), Rootfs: rootfs})
	}
	return out
}

// Hash sums up everything of s that a running container cannot change in
// place: a changed hash means remove and create again.
func (s Spec) Hash() string {
	h := sha256.Sum256([]byte(strings.Join([]string{s.Lab, s.Node, s.Bridge, s.Mode, s.Address.String(),
		s.Gateway.String(), strings.Join(s.Argv, "\x00"), s.Rootfs}, "\n")))
	return hex.EncodeToString(h[:8])
}

// HostLink is the name of the container's link on the host side: the
// veth's end in the bridge (the netns end is eth0), within the 15 bytes of
// an interface name and the same on every up.
func (s Spec) HostLink() string { return linkName("vc", s.Lab, s.Node) }

// tmpLink is the name the netns end has on the host before it moves.
func (s Spec) tmpLink() string { return linkName("vp", s.Lab, s.Node) }

// linkName is prefix and a short hash of the lab and node names.
func linkName(prefix, labName, node string) string {
	h := sha256.Sum256([]byte(labName + "/" + node))
	return prefix + hex.EncodeToString(h[:5])
}

// Guest is the name of the container's interface inside its namespace.
const Guest = "eth0"

// StorageDir is lab name's podman storage: its images' layers (none: it
// runs from a rootfs), containers and their writable layers, run state.
func StorageDir(stateDir, name string) string {
	if stateDir == "" {
		stateDir = domain.DefaultStateDir
	}
	return filepath.Join(stateDir, "labs", name, "podman")
}

// String names the spec in messages: container web (veth on lab0, 192.0.2.20/24).
func (s Spec) String() string {
	return fmt.Sprintf("container %s (%s on %s, %s)", s.Node, s.Mode, s.Bridge, s.Address)
}
