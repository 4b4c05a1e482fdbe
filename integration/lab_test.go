package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// labUpJSON is what vmnet lab up -o json prints (the fields tests read).
type labUpJSON struct {
	Lab     string   `json:"lab"`
	Outcome string   `json:"outcome"`
	Changes []string `json:"changes"`
	Nodes   []struct {
		Node    string `json:"node"`
		Outcome string `json:"outcome"`
	} `json:"nodes"`
	Seconds       float64   `json:"seconds"`
	ChecksSeconds float64   `json:"checks_seconds"`
	Check         checkJSON `json:"check"`
}

// labUp runs vmnet lab up -o json in sandbox s and decodes its output.
func labUp(t *testing.T, s string, args ...string) (labUpJSON, result) {
	t.Helper()
	up, r, err := labUpE(t, s, args...)
	if err != nil {
		t.Fatal(err)
	}
	return up, r
}

// labUpE is labUp for a test's own goroutines: it returns what would end
// the test, and uses t only to log.
func labUpE(t *testing.T, s string, args ...string) (labUpJSON, result, error) {
	t.Helper()
	start := time.Now()
	bin := vmnetBin(t)
	r, err := sbE(bin, s, append([]string{bin, "-o", "json", "lab", "up"}, args...)...)
	if err != nil {
		return labUpJSON{}, r, err
	}
	t.Logf("lab up %v: exit %d after %s\n%s", args, r.code, time.Since(start).Round(time.Second), lastLines(r.stderr, 30))
	var up labUpJSON
	if err := json.Unmarshal([]byte(r.stdout), &up); err != nil && r.code == 0 {
		return up, r, fmt.Errorf("lab up JSON: %v\n%s", err, r.stdout)
	}
	for _, res := range up.Check.Results {
		if !res.Pass {
			t.Logf("failing check %s: %s → %s (%s): %s; hop %s; cause %s", res.ID, res.Source, res.Target, res.Method, res.Actual, res.Hop, res.Cause)
		}
	}
	return up, r, nil
}

// labResidue fails the test if anything a lab made is left in sandbox s:
// domains, taps, links, vmnet's libvirt networks, dnsmasq's lease and
// status files, vmnet's state files, anything under /run/vmnet (a fresh
// tmpfs in a sandbox) and libvirt's per-domain QEMU logs.
func labResidue(t *testing.T, s string) {
	t.Helper()
	checks := []struct{ what, cmd string }{
		{"domains", "virsh -c qemu:///system list --all --name"},
		{"links other than lo", "ip -o link | grep -vE ': lo[:@]' || true"},
		{"libvirt networks", "virsh -c qemu:///system net-list --all --name"},
		{"dnsmasq leases and status", "find /var/lib/libvirt/dnsmasq -mindepth 1 -name '*.leases' -o -mindepth 1 -name '*.status' -size +2c 2>/dev/null || true"},
		{"vmnet state files", "find /var/lib/vmnet -mindepth 1 2>/dev/null || true"},
		{"vmnet runtime files", "find /run/vmnet -mindepth 1 2>/dev/null || true"},
		{"libvirt's qemu logs", "find /var/log/libvirt/qemu -mindepth 1 2>/dev/null || true"},
	}
	for _, c := range checks {
		r := sb(t, s, "sh", "-c", c.cmd)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("left behind (%s), or the check failed (exit %d):\n%s%s", c.what, r.code, r.stdout, r.stderr)
		}
	}
}

// Issue 9's acceptance for the example lab: examples/office.lab.yaml comes
// up green in a sandbox with its declared checks; a second up changes
// nothing; lab inspect lists both nodes with their addresses; with the file
// deleted, lab down leaves no domain, network, bridge, tap, lease or file,
// and a second down succeeds.
func TestOfficeLab(t *testing.T) {
	capstoneImage(t)
	tinyImage(t)
	s := newSandbox(t)
	file := filepath.Join(t.TempDir(), "office.lab.yaml")
	src, err := os.ReadFile("../examples/office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}

	up, r := labUp(t, s, file)
	if r.code != 0 || up.Outcome != "created" || len(up.Nodes) != 2 || up.Check.Failed != 0 || up.Check.Total == 0 {
		t.Fatalf("lab up office: exit %d, outcome %q, %d nodes, %d of %d checks passed\n%s", r.code, up.Outcome, len(up.Nodes), up.Check.Passed, up.Check.Total, r.stdout)
	}
	declared := map[string]bool{}
	for _, res := range up.Check.Results {
		for _, want := range []string{"client", "host"} {
			if res.Source == want && strings.HasPrefix(res.Target, "web:lan") {
				declared[res.Method] = true
			}
		}
	}
	for _, m := range []string{"ping", "http", "tcp"} {
		if !declared[m] {
			t.Errorf("no %s check to web:lan among the lab's checks: the declared checks did not run", m)
		}
	}
	t.Logf("lab up office: %d checks in %.1fs, every node ready after %.1fs", up.Check.Total, up.ChecksSeconds, up.Seconds)

	t.Run("second up changes nothing", func(t *testing.T) {
		again, r := labUp(t, s, file, "--no-check")
		if r.code != 0 || again.Outcome != "unchanged" {
			t.Errorf("second lab up: exit %d, outcome %q, changes %v", r.code, again.Outcome, again.Changes)
		}
	})

	t.Run("inspect lists both nodes with their addresses", func(t *testing.T) { inspectOffice(t, s) })

	t.Run("check by name runs the saved lab's checks", func(t *testing.T) {
		// --converge as lab up has it: on a loaded CI machine one probe of
		// a lab that was green a minute ago may time out once.
		r := sb(t, s, vmnetBin(t), "-o", "json", "lab", "check", "office", "--converge", "60s")
		var c checkJSON
		if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || r.code != 0 || c.Total != up.Check.Total || c.Failed != 0 {
			var failed []string
			for _, res := range c.Results {
				if !res.Pass {
					failed = append(failed, res.ID+" ("+res.Cause+")")
				}
			}
			t.Errorf("lab check office: exit %d, %d of %d failed (up had %d checks): %v; failed: %v\n%s", r.code, c.Failed, c.Total, up.Check.Total, err, failed, r.stderr)
		}
	})

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	down := sb(t, s, vmnetBin(t), "lab", "down", "office")
	if down.code != 0 || !strings.Contains(down.stdout, "removed") {
		t.Fatalf("lab down office (file deleted): exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	labResidue(t, s)
	if again := sb(t, s, vmnetBin(t), "lab", "down", "office"); again.code != 0 || !strings.Contains(again.stdout, "absent") {
		t.Errorf("second lab down: exit %d\n%s%s", again.code, again.stdout, again.stderr)
	}
}

// inspectOffice checks lab inspect office -o json: both nodes, running,
// with web's and client's static addresses and client's DHCP address on the
// isolated network.
func inspectOffice(t *testing.T, s string) {
	r := sb(t, s, vmnetBin(t), "-o", "json", "lab", "inspect", "office")
	var in struct {
		Nodes []struct {
			Node  string `json:"node"`
			State string `json:"state"`
			NICs  []struct {
				Address string `json:"address"`
			} `json:"nics"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || r.code != 0 {
		t.Fatalf("lab inspect office: exit %d: %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	addrs := map[string][]string{}
	for _, n := range in.Nodes {
		if n.State != "running" {
			t.Errorf("node %s is %s", n.Node, n.State)
		}
		for _, nic := range n.NICs {
			addrs[n.Node] = append(addrs[n.Node], nic.Address)
		}
	}
	if len(in.Nodes) != 2 || len(addrs["web"]) != 2 || addrs["web"][1] != "192.0.2.10" || len(addrs["client"]) != 2 ||
		addrs["client"][0] != "192.0.2.20" || !strings.HasPrefix(addrs["client"][1], "203.0.113.") || !strings.HasPrefix(addrs["web"][0], "198.51.100.") {
		t.Errorf("lab inspect office: nodes and addresses %v\n%s", addrs, r.stdout)
	}
}

// A lab file naming a network it does not declare exits 2 with the file's
// line and the field, before anything in the sandbox changes.
func TestLabMissingNetworkChangesNothing(t *testing.T) {
	s := newSandbox(t)
	file := filepath.Join(t.TempDir(), "bad.lab.yaml")
	bad := "name: bad\nnetworks:\n  lan: {kind: bridge, address: 192.0.2.1/24}\nnodes:\n  a:\n    image: tiny\n    nics: [{net: wan}]\n"
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		return sb(t, s, "sh", "-c", "ip -o link; ip -o addr; virsh -c qemu:///system list --all --name; virsh -c qemu:///system net-list --all --name; find /var/lib/vmnet 2>/dev/null").stdout
	}
	before := state()
	r := sb(t, s, vmnetBin(t), "lab", "up", file)
	if r.code != 2 || !strings.Contains(r.stderr, file+":7: nodes.a.nics[0].net") || !strings.Contains(r.stderr, "lan") {
		t.Errorf("lab up with a missing network: exit %d, want 2 with %s:7 and the field\n%s", r.code, file, r.stderr)
	}
	if after := state(); after != before {
		t.Errorf("the refused lab changed the sandbox:\nbefore %s\nafter  %s", before, after)
	}
}

// An up killed at any point leaves a half-made lab; lab down (without the
// file) removes all of it, found by the lab's tags. The up is killed when
// its stderr shows the point: right after the networks are made (the first
// line of a node), mid-boot (a node waits for its guest) and in the check
// phase (both nodes described). One sandbox serves the cases in turn: each
// down must leave it as clean as it was.
func TestLabDownAfterKilledUp(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	for _, tc := range []struct {
		name  string
		point func(line string) bool // the progress line to kill at
		made  string                 // a command that prints what the killed up left
	}{
		{"after the networks", func(l string) bool { return strings.HasPrefix(l, "left: ") || strings.HasPrefix(l, "right: ") },
			"virsh -c qemu:///system net-list --all --name; ip -o link show br0"},
		{"mid-boot", func(l string) bool { return strings.Contains(l, ": waiting for ") },
			"virsh -c qemu:///system list --all --name"},
		{"during the checks", func(l string) bool { return strings.HasPrefix(l, "checking lab duo: 2 of 2 nodes running") },
			"virsh -c qemu:///system list --all --name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			killUpAt(t, s, tc.point)
			if out := sb(t, s, "sh", "-c", tc.made).stdout; strings.TrimSpace(out) == "" {
				t.Fatalf("the killed up left nothing to clean up (%s: %q)", tc.made, out)
			}
			down := sb(t, s, vmnetBin(t), "lab", "down", "duo")
			if down.code != 0 {
				t.Fatalf("lab down duo after a killed up: exit %d\n%s%s", down.code, down.stdout, down.stderr)
			}
			labResidue(t, s)
		})
	}
}

// killUpAt starts lab up duo in sandbox s and kills it (sandbox exec and
// the vmnet inside it: the whole process group) at the first stderr line
// point matches; an up that ends first fails the test.
func killUpAt(t *testing.T, s string, point func(string) bool) {
	t.Helper()
	cmd := exec.Command(vmnetBin(t), "sandbox", "exec", s, "--", vmnetBin(t), "lab", "up", "duo")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if point(sc.Text()) {
			break
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait() // killed: its error says so
	if len(seen) == 0 || !point(seen[len(seen)-1]) {
		t.Fatalf("lab up duo ended before the point to kill it at:\n%s", strings.Join(seen, "\n"))
	}
	t.Logf("killed lab up duo at %q", seen[len(seen)-1])
}
