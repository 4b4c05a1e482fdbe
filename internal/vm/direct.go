package vm

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
)

// checkParents refuses, before anything changes, a direct (macvtap) NIC
// whose parent does not exist where libvirtd runs: vmnet makes no parent,
// and libvirt would only fail when the domain starts.
func checkParents(e Env, spec vmspec.Spec) error {
	var list vmspec.Errors
	for i, n := range spec.NICs {
		if n.Direct.Parent == "" {
			continue
		}
		_, err := e.Bridges.LinkByName(n.Direct.Parent)
		var nf netlink.LinkNotFoundError
		switch {
		case errors.As(err, &nf):
			list = append(list, &errs.FieldError{Form: errs.PathForm, Field: fmt.Sprintf("nics[%d].direct.parent", i), Value: n.Direct.Parent,
				Problem: "does not exist where libvirtd runs: a macvtap NIC sits on an interface that is there",
				Fix:     "name an interface 'ip -br link' lists (vmnet makes none for a direct NIC)"})
		case err != nil:
			return fmt.Errorf("look up macvtap parent %s: %w", n.Direct.Parent, err)
		}
	}
	if len(list) > 0 {
		return list
	}
	return nil
}
