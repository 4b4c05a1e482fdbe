// Package integration runs the vmnet binary as a user would, as root, inside
// network namespaces that each test makes and removes. It needs
// VMNET_INTEGRATION=1; VMNET_BIN names the binary (built here otherwise).
package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestMain runs the whole package under umask 077, as on CIS-hardened hosts
// and many CI images: every vmnet command the tests exec inherits it, so the
// whole tiny and capstone flow is integration-tested once under umask 077
// (issue 7: QEMU, as libvirt-qemu, could not open a VM's overlay then).
func TestMain(m *testing.M) {
	syscall.Umask(0o077)
	os.Exit(m.Run())
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// vmnetBin returns the vmnet binary under test, skipping when integration
// tests are not asked for or cannot run.
func vmnetBin(t testing.TB) string {
	t.Helper()
	if os.Getenv("VMNET_INTEGRATION") != "1" {
		t.Skip("set VMNET_INTEGRATION=1 to run integration tests (scripts/test.sh does)")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root for network namespaces")
	}
	buildOnce.Do(func() {
		if p := os.Getenv("VMNET_BIN"); p != "" {
			binPath = p
			return
		}
		dir, err := os.MkdirTemp("", "vmnet-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "vmnet")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/vmnet").CombinedOutput()
		if err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "build vmnet: " + e.err.Error() + "\n" + e.out }

// newNetns makes a named network namespace with only lo (up) in it, removed
// when the test ends.
func newNetns(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "vmnetit-" + hex.EncodeToString(b)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// run runs a command that must succeed and returns its stdout.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// vmnetJSON runs `bin -o json ARGS` on the host (a listing: no namespace
// needed) and decodes its output into v; it returns the output for messages.
func vmnetJSON(tb testing.TB, bin string, v any, args ...string) []byte {
	tb.Helper()
	cmd := "vmnet -o json " + strings.Join(args, " ")
	out, err := exec.Command(bin, append([]string{"-o", "json"}, args...)...).Output()
	if err != nil {
		tb.Fatalf("%s: %v", cmd, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		tb.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return out
}

// result is one vmnet run.
type result struct {
	stdout, stderr string
	code           int
}

// vmnet runs the binary inside namespace ns.
func vmnet(t *testing.T, ns string, args ...string) result {
	t.Helper()
	bin := vmnetBin(t)
	var out, errb bytes.Buffer
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run vmnet %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	t.Logf("vmnet %s → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return result{out.String(), errb.String(), code}
}

// mustVmnet runs vmnet and fails the test unless it exits 0.
func mustVmnet(t *testing.T, ns string, args ...string) result {
	t.Helper()
	r := vmnet(t, ns, args...)
	if r.code != 0 {
		t.Fatalf("vmnet %s exited %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// bridgeJSON is what "vmnet bridge show -o json" prints.
type bridgeJSON struct {
	Name        string   `json:"name"`
	State       string   `json:"state"`
	MAC         string   `json:"mac"`
	MTU         int      `json:"mtu"`
	STP         bool     `json:"stp"`
	Addresses   []string `json:"addresses"`
	Ports       []string `json:"ports"`
	Uplink      string   `json:"uplink"`
	Managed     bool     `json:"managed"`
	Persistence string   `json:"persistence"`
	Files       []string `json:"files"`
}

func show(t *testing.T, ns, name string, extra ...string) bridgeJSON {
	t.Helper()
	r := mustVmnet(t, ns, append([]string{"-o", "json", "bridge", "show", name}, extra...)...)
	var b bridgeJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("bridge show JSON: %v\n%s", err, r.stdout)
	}
	return b
}

// linkState is the namespace's links and addresses as ip prints them, for
// "nothing changed" checks made from outside vmnet.
func linkState(t *testing.T, ns string) string {
	t.Helper()
	return run(t, "ip", "-n", ns, "-o", "link") + run(t, "ip", "-n", ns, "-o", "addr") + run(t, "ip", "-n", ns, "route")
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
}
