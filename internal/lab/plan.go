package lab

import (
	"fmt"
	"slices"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

// The plan turns a lab into what the VM lifecycle already knows: one VM spec
// per node, each NIC on a libvirt network (nat, isolated) or directly on a
// Linux bridge (bridge) or on a host interface through macvtap (macvtap),
// and the networks and bridges the lab makes when they are missing (none
// for macvtap: its parent is the host's). Everything vmnet makes for the lab carries the lab's
// name (vmspec.Spec.Lab, and the Lab of the network and bridge specs).

// Requires is every network and bridge of the lab, in file order, as the
// VM lifecycle makes them.
func (l Lab) Requires() vmspec.Requires {
	var r vmspec.Requires
	for _, name := range l.NetworkOrder {
		n := l.Networks[name]
		switch n.Kind {
		case KindBridge:
			r.Bridges = append(r.Bridges, vmspec.BridgeReq{Name: name, Address: n.Address})
		case KindNAT:
			r.Networks = append(r.Networks, vmspec.NetworkReq{Name: name, Mode: vmspec.ModeNAT, CIDR: n.CIDR})
		case KindIsolated:
			r.Networks = append(r.Networks, vmspec.NetworkReq{Name: name, Mode: vmspec.ModeIsolated, CIDR: n.CIDR})
		}
	}
	return r
}

// Specs is the VM spec of every node, in file order (Spec).
func (l Lab) Specs() ([]vmspec.Spec, error) {
	out := make([]vmspec.Spec, 0, len(l.NodeOrder))
	for _, name := range l.NodeOrder {
		s, err := l.Spec(name)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Spec is the VM spec of node name: named for the node, with its image,
// size and NICs, the networks and bridges its NICs use as requirements,
// its app's readiness and provisioning, and the lab's tag. The spec is
// validated as a spec file would be; a problem is reported under the
// node's field path.
func (l Lab) Spec(name string) (vmspec.Spec, error) {
	n, ok := l.Nodes[name]
	if !ok {
		return vmspec.Spec{}, &errs.FieldError{Form: errs.PathForm, Field: "nodes", Value: name,
			Problem: "is not a node of lab " + l.Name, Fix: "use one of: " + strings.Join(l.NodeOrder, ", ")}
	}
	s := vmspec.Spec{Name: name, Image: n.Image, VCPUs: n.VCPUs, Memory: n.Memory, Lab: l.Name}
	all := l.Requires()
	for _, nic := range n.NICs {
		vn := vmspec.NIC{Address: nic.Address, Direct: l.Direct(nic.Net)}
		if !vn.Direct.IsZero() {
			// The parent exists on the host: nothing to require.
		} else if l.Networks[nic.Net].Kind == KindBridge {
			vn.Bridge = nic.Net
			s.Requires.Bridges = appendOnce(s.Requires.Bridges, all.Bridges, nic.Net, func(b vmspec.BridgeReq) string { return b.Name })
		} else {
			vn.Network = nic.Net
			s.Requires.Networks = appendOnce(s.Requires.Networks, all.Networks, nic.Net, func(r vmspec.NetworkReq) string { return r.Name })
		}
		s.NICs = append(s.NICs, vn)
	}
	if err := applyApp(&s, n.App); err != nil {
		return vmspec.Spec{}, err
	}
	applyContainers(&s, n)
	s.Defaults()
	if err := s.Validate(); err != nil {
		return vmspec.Spec{}, fmt.Errorf("nodes.%s: %w", name, err)
	}
	return s, nil
}

// appendOnce appends the entry of all named name to list, unless list has it.
func appendOnce[T any](list, all []T, name string, nameOf func(T) string) []T {
	if slices.ContainsFunc(list, func(x T) bool { return nameOf(x) == name }) {
		return list
	}
	if i := slices.IndexFunc(all, func(x T) bool { return nameOf(x) == name }); i >= 0 {
		list = append(list, all[i])
	}
	return list
}

// applyApp gives s what its built-in app needs from the guest: the
// capstone app's readiness (the guest agent), its boot timeout and its
// provisioning (the database password, starting the containers and
// waiting until they are healthy), all from the capstone profile.
func applyApp(s *vmspec.Spec, app string) error {
	if app == "" {
		return nil
	}
	data, err := templates.Profile(app)
	if err != nil {
		return fmt.Errorf("app %s: %w", app, err)
	}
	p, err := vmspec.Parse(data, "")
	if err != nil {
		return fmt.Errorf("app %s: built-in profile: %w", app, err)
	}
	s.Ready, s.Timeout, s.Provision = p.Ready, p.Timeout, p.Provision
	return nil
}

// Images lists the images the lab's nodes boot, once each, in node order.
func (l Lab) Images() []string {
	var out []string
	for _, name := range l.NodeOrder {
		if img := l.Nodes[name].Image; !slices.Contains(out, img) {
			out = append(out, img)
		}
	}
	return out
}

// AppImages are the images an app runs on: its containers are baked into
// them at build time.
var AppImages = apps.Images()
