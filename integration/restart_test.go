package integration

import (
	"strings"
	"testing"
)

// A VM that exists but is shut off (a host reboot, a virsh destroy, an up
// killed between define and start) is started again by vm up, as many
// times as it happens; down then leaves no file of it behind.
func TestVMRestartAfterDestroy(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	if u := vmUp(t, s, "tiny"); u.Outcome != "created" {
		t.Fatalf("first up: outcome %q, want created", u.Outcome)
	}
	for round := 1; round <= 3; round++ {
		if r := sb(t, s, "virsh", "-c", "qemu:///system", "destroy", "tiny"); r.code != 0 {
			t.Fatalf("round %d: virsh destroy tiny: exit %d\n%s%s", round, r.code, r.stdout, r.stderr)
		}
		u := vmUp(t, s, "tiny")
		if u.Outcome != "started" {
			t.Errorf("round %d: up of a shut-off VM: outcome %q, want started", round, u.Outcome)
		}
		ping(t, s, "192.0.2.10")
		ping(t, s, u.NICs[0].Address)
	}
	// libvirt's own log of the domain is there before down (so the check
	// after it can fail), and gone after.
	if r := sb(t, s, "test", "-s", "/var/log/libvirt/qemu/tiny.log"); r.code != 0 {
		t.Errorf("libvirt's /var/log/libvirt/qemu/tiny.log is missing before down (exit %d)", r.code)
	}
	sbVmnet(t, s, "vm", "down", "tiny")
	noVMFiles(t, s)
}

// noVMFiles fails the test if any file is left under vmnet's state
// directory or libvirt's QEMU log directory inside sandbox s.
func noVMFiles(t *testing.T, s string) {
	t.Helper()
	// /var/lib/vmnet itself may stay: in a sandbox it is a mount point.
	r := sb(t, s, "sh", "-c", "find /var/log/libvirt/qemu -mindepth 1 && if [ -e /var/lib/vmnet ]; then find /var/lib/vmnet -mindepth 1; fi")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("files left after down, or the check failed (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}
