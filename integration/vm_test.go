package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	imageOnce sync.Once
	imageErr  error
)

// tinyImage builds the tiny image once, in the host's namespace: a sandbox
// has no way out to Debian's mirror, so images are built before, as the
// README says.
func tinyImage(t *testing.T) {
	t.Helper()
	bin := vmnetBin(t)
	imageOnce.Do(func() {
		out, err := exec.Command(bin, "image", "build", "tiny").CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("vmnet image build tiny: %v\n%s", err, out)
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
}

// newSandbox makes a vmnet sandbox for one test and removes it afterwards.
func newSandbox(t testing.TB) string {
	t.Helper()
	bin := vmnetBin(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "it-" + hex.EncodeToString(b)
	if out, err := exec.Command(bin, "sandbox", "up", name).CombinedOutput(); err != nil {
		t.Fatalf("sandbox up: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "sandbox", "down", name).CombinedOutput(); err != nil {
			t.Errorf("sandbox down: %v\n%s", err, out)
		}
	})
	return name
}

// sb runs a command inside sandbox name.
func sb(t testing.TB, name string, argv ...string) result {
	t.Helper()
	r, err := sbE(vmnetBin(t), name, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sbE is sb for a test's own goroutines: an exec that did not run is its
// error, not the end of the test. bin is vmnetBin's answer.
func sbE(bin, name string, argv ...string) (result, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, append([]string{"sandbox", "exec", name, "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return result{}, fmt.Errorf("sandbox exec %v: %v", argv, err)
	}
	return result{out.String(), errb.String(), code}, nil
}

// sbVmnet runs vmnet inside the sandbox and fails the test unless it exits 0.
func sbVmnet(t testing.TB, name string, args ...string) result {
	t.Helper()
	r := sb(t, name, append([]string{vmnetBin(t)}, args...)...)
	t.Logf("[%s] vmnet %s → exit %d\n%s%s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("vmnet %s exited %d", strings.Join(args, " "), r.code)
	}
	return r
}

func ping(t *testing.T, name, addr string) {
	t.Helper()
	if r := sb(t, name, "ping", "-c", "1", "-W", "3", addr); r.code != 0 {
		t.Errorf("ping %s from the sandbox host: %s%s", addr, r.stdout, r.stderr)
	}
}

// guestPing pings addr from inside VM vm (vmnet vm exec).
func guestPing(t *testing.T, name, vm, addr string) {
	t.Helper()
	r := sb(t, name, vmnetBin(t), "vm", "exec", vm, "--", "ping", "-c", "1", "-W", "3", addr)
	if r.code != 0 {
		t.Errorf("ping %s from VM %s: exit %d\n%s%s", addr, vm, r.code, r.stdout, r.stderr)
	}
}

type upJSON struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	NICs    []struct {
		Network string `json:"network"`
		Bridge  string `json:"bridge"`
		MAC     string `json:"mac"`
		Address string `json:"address"`
	} `json:"nics"`
}

func vmUp(t *testing.T, name string, args ...string) upJSON {
	t.Helper()
	r := sbVmnet(t, name, append([]string{"-o", "json", "vm", "up"}, args...)...)
	var u upJSON
	if err := json.Unmarshal([]byte(r.stdout), &u); err != nil {
		t.Fatalf("vm up JSON: %v\n%s", err, r.stdout)
	}
	for i, n := range u.NICs {
		if n.Address == "" {
			t.Fatalf("vm up %v: NIC %d has no address: %+v", args, i, u.NICs)
		}
	}
	return u
}

// writeSpec writes a VM spec where the sandbox can read it (the sandbox
// shares the host's /tmp).
func writeSpec(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vm.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const tiny2Spec = `name: tiny2
image: tiny
nics:
  - network: nat0
  - bridge: br0
    address: 192.0.2.11/24
ready:
  console: VMNET-READY
`

// residue fails the test if anything vmnet made for a VM is left in the
// sandbox: domains, taps, DHCP reservations and leases, state files.
func residue(t *testing.T, name string) {
	t.Helper()
	checks := []struct{ what, cmd string }{
		{"domains", "virsh -c qemu:///system list --all --name"},
		{"taps", "ip -o link show type tun"},
		{"links other than lo, br0 and vmnet-nat0", "ip -o link | grep -vE ': (lo|br0|vmnet-nat0)[:@]' || true"},
		// virsh's status must count: a pipe would report grep's or tail's.
		{"DHCP reservations", "x=$(virsh -c qemu:///system net-dumpxml nat0) || exit; printf '%s\n' \"$x\" | grep '<host ' || true"},
		{"DHCP leases", "x=$(virsh -c qemu:///system net-dhcp-leases nat0) || exit; printf '%s\n' \"$x\" | tail -n +3"},
		{"VM state files", "find /var/lib/vmnet -mindepth 1"},
	}
	for _, c := range checks {
		r := sb(t, name, "sh", "-c", c.cmd)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "" {
			t.Errorf("left behind (%s), or the check failed (exit %d):\n%s%s", c.what, r.code, r.stdout, r.stderr)
		}
	}
}

// Issue 3's acceptance, and the integration list: a tiny VM on a NAT network
// and on a bridge made by vmnet bridge create; host↔VM ping both ways on
// both networks; VM↔VM ping; up twice; xml validates; down twice; no residue.
func TestTinyVMsOnNATAndBridge(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	sbVmnet(t, s, "bridge", "create", "br0", "--address", "192.0.2.1/24")
	sbVmnet(t, s, "net", "create", "nat0", "--mode", "nat", "--cidr", "198.51.100.0/24")
	u := vmUp(t, s, "tiny")
	if u.Outcome != "created" || len(u.NICs) != 2 || u.NICs[0].Network != "nat0" || u.NICs[1].Bridge != "br0" || u.NICs[1].Address != "192.0.2.10" {
		t.Fatalf("vm up tiny: %+v", u)
	}
	natAddr := u.NICs[0].Address
	if !strings.HasPrefix(natAddr, "198.51.100.") {
		t.Fatalf("NAT address %s is not in nat0", natAddr)
	}
	spec := writeSpec(t, tiny2Spec)
	u2 := vmUp(t, s, spec)

	// host → VM on both networks, VM → host on both, VM ↔ VM on both.
	ping(t, s, natAddr)
	ping(t, s, "192.0.2.10")
	guestPing(t, s, "tiny", "198.51.100.1")
	guestPing(t, s, "tiny", "192.0.2.1")
	guestPing(t, s, "tiny", u2.NICs[0].Address)
	guestPing(t, s, "tiny", "192.0.2.11")
	guestPing(t, s, "tiny2", natAddr)
	guestPing(t, s, "tiny2", "192.0.2.10")

	// Up again: nothing changes, and the addresses are the same.
	if again := vmUp(t, s, "tiny"); again.Outcome != "unchanged" || again.NICs[0].Address != natAddr {
		t.Errorf("second up: %+v", again)
	}
	// The XML vmnet prints is valid for libvirt's own schema.
	if r := sb(t, s, "sh", "-c", vmnetBin(t)+" vm xml tiny | virt-xml-validate - domain"); r.code != 0 {
		t.Errorf("vm xml tiny | virt-xml-validate: %s%s", r.stdout, r.stderr)
	}
	list := sbVmnet(t, s, "-o", "json", "vm", "list")
	for _, want := range []string{`"name": "tiny"`, `"name": "tiny2"`, natAddr, "192.0.2.11", `"state": "running"`} {
		if !strings.Contains(list.stdout, want) {
			t.Errorf("vm list lacks %s", want)
		}
	}

	for _, vm := range []string{"tiny", "tiny2"} {
		sbVmnet(t, s, "vm", "down", vm)
		if r := sbVmnet(t, s, "vm", "down", vm); !strings.Contains(r.stdout, "absent") {
			t.Errorf("second down of %s: %s", vm, r.stdout)
		}
	}
	residue(t, s)
}

// An up killed with SIGKILL midway is followed by a successful up and a
// clean down.
func TestVMUpKilledMidway(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	// Before anything of the VM exists; after its DHCP reservation but before
	// its domain; while it boots.
	for _, killAt := range []string{"created nat network", "reserved", "waiting for"} {
		t.Run(strings.ReplaceAll(killAt, " ", "-"), func(t *testing.T) {
			cmd := exec.Command(vmnetBin(t), "sandbox", "exec", s, "--", vmnetBin(t), "vm", "up", "tiny")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// sandbox exec runs nsenter, which becomes vmnet: kill that process.
			sc := bufio.NewScanner(stderr)
			killed := false
			for sc.Scan() {
				t.Logf("up: %s", sc.Text())
				if strings.Contains(sc.Text(), killAt) {
					pid := childOf(t, cmd.Process.Pid)
					t.Logf("SIGKILL vmnet (pid %d) at %q", pid, sc.Text())
					syscall.Kill(pid, syscall.SIGKILL)
					killed = true
					break
				}
			}
			cmd.Wait()
			if !killed {
				t.Fatalf("vm up never printed %q", killAt)
			}
			u := vmUp(t, s, "tiny")
			if len(u.NICs) != 2 {
				t.Fatalf("up after a killed up: %+v", u)
			}
			ping(t, s, "192.0.2.10")
			sbVmnet(t, s, "vm", "down", "tiny")
			residue(t, s)
		})
	}
}

// childOf returns the pid of the child of pid (any of its threads may have
// forked it: Go forks from whichever thread runs).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, task := range tasks {
			b, _ := os.ReadFile(task)
			if f := strings.Fields(string(b)); len(f) > 0 {
				c, _ := strconv.Atoi(f[0])
				return c
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}

// A guest that never becomes ready fails within its timeout and shows the
// console's tail. 45 s: the tail must show the tiny guest's VMNET-READY,
// and with other tests' guests on the same 2 cores it had printed nothing
// after 20 s.
func TestVMNeverReady(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)
	spec := writeSpec(t, `name: mute
image: tiny
nics:
  - bridge: br0
    address: 192.0.2.20/24
ready:
  console: NEVER-SAID
timeout: 45s
requires:
  bridges:
    - name: br0
      address: 192.0.2.1/24
`)
	start := time.Now()
	r := sb(t, s, vmnetBin(t), "vm", "up", spec)
	took := time.Since(start)
	t.Logf("exit %d after %s\n%s", r.code, took.Round(time.Second), r.stderr)
	if r.code == 0 {
		t.Fatal("vm up of a guest that never gets ready succeeded")
	}
	for _, want := range []string{`waited for a console line starting "NEVER-SAID"`, "timed out after 45s", "VMNET-READY", "hint: "} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the error lacks %q", want)
		}
	}
	if took > 90*time.Second {
		t.Errorf("vm up took %s for a 45s timeout", took)
	}
	sbVmnet(t, s, "vm", "down", "mute")
	// Both commands' status counts: a failed look is not an empty one.
	if r := sb(t, s, "sh", "-c", "virsh -c qemu:///system list --all --name && find /var/lib/vmnet -mindepth 1"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Errorf("left behind, or the check failed (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}
