package valid

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestOnlyBridgeManagersImportBridge: packages that only check input (a
// spec, a network, a seed, an accelerator) get their checks from this
// package, not from internal/bridge, which opens netlink handles and
// manages bridges. The list is the packages that check bridge names.
func TestOnlyBridgeManagersImportBridge(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	pkgs := []string{"vmnet/internal/vmspec", "vmnet/internal/network", "vmnet/internal/cloudinit", "vmnet/internal/accel",
		"vmnet/internal/valid", "vmnet/internal/errs"}
	out, err := exec.Command(goBin, append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "vmnet/internal/bridge" {
			t.Errorf("%v depend on vmnet/internal/bridge; take the checks from vmnet/internal/valid and the errors from vmnet/internal/errs", pkgs)
		}
	}
}

func TestIsHostname(t *testing.T) {
	for s, want := range map[string]bool{"web1": true, "a.b-c.d": true, "": false, "-a": false, "a-": false, "a..b": false,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false, strings.Repeat("a.", 126) + "a": true, strings.Repeat("a.", 127) + "a": false} {
		if got := IsHostname(s); got != want {
			t.Errorf("IsHostname(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestIsDebPackage(t *testing.T) {
	for s, want := range map[string]bool{"libc6": true, "g++": true, "python3.11": true, "a": false, "Foo": false, "-x": false, "x y": false} {
		if got := IsDebPackage(s); got != want {
			t.Errorf("IsDebPackage(%q) = %v, want %v", s, got, want)
		}
	}
}
