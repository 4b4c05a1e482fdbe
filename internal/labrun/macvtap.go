package labrun

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/internal/vmspec"
)

// linkFinder is what checkParents needs of the kernel: 'ip link show NAME'
// where libvirtd runs.
type linkFinder interface {
	LinkByName(name string) (netlink.Link, error)
}

// checkParents refuses, before anything changes, a macvtap network whose
// parent does not exist where libvirtd runs: vmnet does not make a parent
// (it is the host's own interface), and libvirt would only fail at the
// first node's start, after the lab's other networks were made.
func checkParents(k linkFinder, l lab.Lab, specs []vmspec.Spec) error {
	var list vmspec.Errors
	seen := map[string]bool{}
	for _, name := range l.NetworkOrder {
		n := l.Networks[name]
		if n.Kind != lab.KindMacvtap || seen[n.Parent] || !usesParent(specs, n.Parent) {
			continue
		}
		seen[n.Parent] = true
		_, err := k.LinkByName(n.Parent)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(err, &nf):
			list = append(list, &errs.FieldError{Form: errs.PathForm, Field: "networks." + name + ".parent", Value: n.Parent,
				Problem: "does not exist where libvirtd runs: vmnet puts macvtap guests on an interface that is there, and makes none",
				Fix:     fmt.Sprintf("name an interface 'ip -br link' lists, or make one first (in a sandbox: ip link add %s type veth peer name %s && ip link set %s up && ip link set %s up)", n.Parent, peerName(n.Parent), n.Parent, peerName(n.Parent))})
		case err != nil:
			return fmt.Errorf("look up macvtap parent %s of network %s: %w", n.Parent, name, err)
		}
	}
	if len(list) > 0 {
		return &lab.Errors{List: list}
	}
	return nil
}

// usesParent reports whether one of specs has a direct NIC on parent.
func usesParent(specs []vmspec.Spec, parent string) bool {
	for _, s := range specs {
		for _, p := range s.Parents() {
			if p == parent {
				return true
			}
		}
	}
	return false
}

// peerName is a name for the other end of a veth made as parent, within
// the 15 bytes of an interface name.
func peerName(parent string) string {
	if len(parent) > 11 {
		parent = parent[:11]
	}
	return parent + "-lan"
}
