//go:build tools

// This file pins modules that the design card names before code imports
// them: libvirt.org/go/libvirt v1.9000.0 is the only version the module proxy
// serves (it builds against Debian 12's libvirt 9.0), and libvirtxml is the
// libvirt XML layer. The build tag keeps it out of every build; go mod tidy
// still keeps the requirements. Remove a line once a package imports it.
package vmnet

import (
	_ "libvirt.org/go/libvirt"
	_ "libvirt.org/go/libvirtxml"
)
