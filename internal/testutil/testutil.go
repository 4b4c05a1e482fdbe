// Package testutil holds the helpers that the tests of several packages
// share: the way into a sandbox's libvirtd from outside it, golden files,
// and a fake Debian kernel package. Only tests import it; it is a package
// of its own because one package's _test.go files are not visible to
// another's tests. It imports internal/sandbox (for SandboxURI), so the
// tests of sandbox and of what sandbox imports (errs, fsperm, valid) cannot
// use it.
package testutil

import (
	"fmt"

	"vmnet/internal/errs"
	"vmnet/internal/sandbox"
)

// SandboxURI returns a libvirt URI that reaches sandbox name's libvirtd from
// outside it: /proc/PID/root shows the daemon's own mount namespace, socket
// included (virt.Netns knows this form and finds the daemon's namespace by
// its pid). Tests use it to drive a real, sandboxed libvirtd without
// entering it.
func SandboxURI(name string) (string, error) {
	if err := sandbox.ValidateName(name); err != nil {
		return "", err
	}
	infos, err := sandbox.List()
	if err != nil {
		return "", err
	}
	for _, in := range infos {
		if in.Name != name {
			continue
		}
		if !in.LibvirtdAlive {
			return "", errs.WithHint(fmt.Errorf("sandbox %q has no running libvirtd", name), "repair it with: vmnet sandbox up "+name)
		}
		return fmt.Sprintf("qemu:///system?socket=/proc/%d/root/run/libvirt/libvirt-sock", in.LibvirtdPID), nil
	}
	return "", &sandbox.NotFoundError{Name: name}
}
