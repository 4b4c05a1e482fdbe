package lab

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestPure: validating and drawing a lab changes nothing on the host, so
// this package must not reach libvirt, netlink or the packages that use
// them; a lab is planned in full before any of those run.
func TestPure(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", "vmnet/internal/lab").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		for _, bad := range []string{"libvirt", "netlink", "vmnet/internal/bridge", "vmnet/internal/network", "vmnet/internal/virt", "vmnet/internal/vm"} {
			if p == bad || strings.Contains(p, bad) && !strings.HasPrefix(p, "vmnet/internal/vmspec") {
				t.Errorf("internal/lab depends on %s (through %q); keep it pure", bad, p)
			}
		}
	}
}
