package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// sandboxState is the sandbox's links, libvirt networks and domains, and
// vmnet's state files, for "nothing changed" checks.
func sandboxState(t *testing.T, s string) string {
	t.Helper()
	r := sb(t, s, "sh", "-c", "ip -o link | cut -d: -f2; virsh -c qemu:///system net-list --all --name; "+
		"virsh -c qemu:///system list --all --name; find /var/lib/vmnet -mindepth 1")
	if r.code != 0 {
		t.Fatalf("sandbox state: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// ready: agent on tiny (which has no guest agent) is refused at once, as
// bad input, before the bridge and network the spec requires are made.
func TestVMUpAgentOnTinyRefused(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	before := sandboxState(t, s)
	spec := writeSpec(t, `name: agentless
image: tiny
nics:
  - network: nat7
  - bridge: br7
    address: 192.0.2.30/24
ready: agent
requires:
  networks:
    - name: nat7
      mode: nat
      cidr: 198.51.100.0/24
  bridges:
    - name: br7
      address: 192.0.2.1/24
`)
	start := time.Now()
	r := sb(t, s, vmnetBin(t), "vm", "up", spec)
	t.Logf("exit %d after %s\n%s", r.code, time.Since(start).Round(time.Millisecond), r.stderr)
	if r.code != 2 {
		t.Errorf("vm up with ready: agent on tiny: exit %d, want 2", r.code)
	}
	for _, want := range []string{`ready: "agent"`, "image tiny", "no QEMU guest agent", "hint: leave ready out"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	if after := sandboxState(t, s); after != before {
		t.Errorf("a refused up changed the sandbox:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// An up whose guest never gets ready removes what it made (the VM, the
// network it created) and keeps what existed before (the bridge), and says so.
// Parallel: it mostly waits for its 15 s timeout, and nothing it asserts
// depends on how fast the guest runs.
func TestVMUpTimeoutRemovesWhatItMade(t *testing.T) {
	t.Parallel()
	tinyImage(t)
	s := newSandbox(t)
	sbVmnet(t, s, "bridge", "create", "br0", "--address", "192.0.2.1/24")
	spec := writeSpec(t, `name: mute
image: tiny
nics:
  - network: nat8
  - bridge: br0
    address: 192.0.2.20/24
ready:
  console: NEVER-SAID
timeout: 15s
requires:
  networks:
    - name: nat8
      mode: nat
      cidr: 198.51.100.0/24
  bridges:
    - name: br0
      address: 192.0.2.1/24
`)
	r := sb(t, s, vmnetBin(t), "vm", "up", spec)
	t.Logf("exit %d\n%s", r.code, r.stderr)
	if r.code != 1 {
		t.Errorf("vm up of a guest that never gets ready: exit %d, want 1", r.code)
	}
	for _, want := range []string{"timed out after 15s", "removed what this up made: VM mute (domain, files, DHCP reservations), network nat8",
		"kept what existed before this up: bridge br0", "hint: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	if strings.Contains(r.stderr, "left behind") {
		t.Errorf("the up could not remove what it made")
	}
	got := sb(t, s, "sh", "-c", "ip -o link | cut -d: -f2 | tr -d ' ' | sort | tr '\\n' ' '; "+
		"virsh -c qemu:///system net-list --all --name; virsh -c qemu:///system list --all --name")
	if got.code != 0 || strings.TrimSpace(got.stdout) != "br0 lo" {
		t.Errorf("after the failed up: exit %d, links, networks and domains %q; want only br0 and lo\n%s", got.code, got.stdout, got.stderr)
	}
	noVMFiles(t, s)
}

// libvirtd going away while vmnet works: up says so at once (not after its
// timeout) and how to recover; so does the next command; the sandbox's
// repair brings libvirtd back and down cleans up.
func TestLibvirtdGone(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	b, err := os.ReadFile(filepath.Join("/run/vmnet/sandbox", s, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		LibvirtdPID int `json:"libvirtd_pid"`
	}
	if err := json.Unmarshal(b, &st); err != nil || st.LibvirtdPID <= 0 {
		t.Fatalf("sandbox state %s: %v", b, err)
	}
	spec := writeSpec(t, `name: orphan
image: tiny
nics:
  - bridge: br0
    address: 192.0.2.40/24
ready:
  console: NEVER-SAID
timeout: 90s
requires:
  bridges:
    - name: br0
      address: 192.0.2.1/24
`)
	cmd := exec.Command(vmnetBin(t), "sandbox", "exec", s, "--", vmnetBin(t), "vm", "up", spec)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stderr)
	var killed time.Time
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if killed.IsZero() && strings.Contains(sc.Text(), "waiting for") {
			// Only the sandbox's own libvirtd, by the pid the sandbox recorded.
			if err := syscall.Kill(st.LibvirtdPID, syscall.SIGKILL); err != nil {
				t.Fatalf("kill libvirtd %d: %v", st.LibvirtdPID, err)
			}
			killed = time.Now()
		}
	}
	err = cmd.Wait()
	took := time.Since(killed)
	t.Logf("vm up: %v, %s after the kill\n%s", err, took.Round(time.Millisecond), out.String())
	if killed.IsZero() {
		t.Fatal("vm up never printed \"waiting for\"")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("vm up: %v, want exit 1", err)
	}
	if took > 20*time.Second {
		t.Errorf("vm up took %s after libvirtd died to say so", took)
	}
	for _, want := range []string{"libvirtd stopped while vmnet was using it", "hint: the libvirtd of sandbox " + s + " is not running: 'vmnet sandbox up " + s + "'",
		"left behind", "'vmnet vm down orphan'"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vm up's error lacks %q", want)
		}
	}
	r := sb(t, s, vmnetBin(t), "vm", "list")
	t.Logf("vm list: exit %d\n%s", r.code, r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach libvirtd") || !strings.Contains(r.stderr, "'vmnet sandbox up "+s+"' repairs") ||
		strings.Contains(r.stderr, "while vmnet was using it") {
		t.Errorf("vm list without libvirtd: exit %d, stderr %q", r.code, r.stderr)
	}
	if o, err := exec.Command(vmnetBin(t), "sandbox", "up", s).CombinedOutput(); err != nil {
		t.Fatalf("sandbox up (repair): %v\n%s", err, o)
	}
	sbVmnet(t, s, "vm", "list")
	sbVmnet(t, s, "vm", "down", "orphan")
	noVMFiles(t, s)
}
