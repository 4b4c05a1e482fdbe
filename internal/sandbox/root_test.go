package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"vmnet/internal/errs"
)

// requireSandbox skips the test unless it can make real sandboxes here.
func requireSandbox(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network and mount namespaces")
	}
	if testing.Short() {
		t.Skip("starts libvirtd: skipped with -short")
	}
	for _, p := range []string{"libvirtd", "virtlogd", "virsh", "ip", "nsenter", "unshare"} {
		if _, err := lookTool(p); err != nil {
			t.Skipf("%s is not installed (%s)", p, installHint)
		}
	}
}

// testName returns a sandbox name unique to this test process, and makes
// sure the sandbox is gone when the test ends.
func testName(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", os.Getpid()%100000, suffix)
	if err := ValidateName(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Down(context.Background(), name); err != nil {
			t.Errorf("cleanup: Down(%q): %v", name, err)
		}
	})
	return name
}

// execOut runs argv in the sandbox and returns its stdout; it fails the test
// unless the command exits 0.
func execOut(t *testing.T, name string, stdin string, argv ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	code, err := Exec(context.Background(), name, argv, Stdio{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	if err != nil || code != 0 {
		t.Fatalf("Exec(%q, %q) = %d, %v; stderr: %s", name, argv, code, err, errb.String())
	}
	return out.String()
}

func alive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil && !zombie(pid)
}

func TestSandboxLifecycle(t *testing.T) {
	requireSandbox(t)
	ctx := context.Background()
	name := testName(t, "life")
	l := layoutFor(name)

	// Missing sandbox: exec fails with a hint, down succeeds.
	_, err := Exec(ctx, name, []string{"true"}, Stdio{})
	var h interface{ Hint() string }
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &h) || !strings.Contains(h.Hint(), "vmnet sandbox up "+name) {
		t.Fatalf("Exec of a missing sandbox = %v, want ErrNotFound with hint 'vmnet sandbox up %s'", err, name)
	}
	if err := Down(ctx, name); err != nil {
		t.Fatalf("Down of a missing sandbox: %v", err)
	}

	res, err := Up(ctx, name)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	if res.Change != Created || res.LibvirtdPID <= 0 || res.VirtlogdPID <= 0 || res.NetNS != "vmnet-"+name {
		t.Fatalf("Up = %+v, want created with both pids", res)
	}

	// Inside: only lo, a working libvirt, the environment marker, exit codes and stdin passed through.
	links := strings.TrimSpace(execOut(t, name, "", "ip", "-o", "link"))
	if len(strings.Split(links, "\n")) != 1 || !strings.Contains(links, ": lo:") {
		t.Errorf("links inside the sandbox:\n%s\nwant only lo", links)
	}
	if routes := strings.TrimSpace(execOut(t, name, "", "ip", "route")); routes != "" {
		t.Errorf("routes inside the sandbox: %q, want none", routes)
	}
	execOut(t, name, "", "virsh", "-c", "qemu:///system", "list", "--all")
	if got := strings.TrimSpace(execOut(t, name, "", "sh", "-c", "echo $"+EnvVar)); got != name {
		t.Errorf("%s inside = %q, want %q", EnvVar, got, name)
	}
	if got := execOut(t, name, "hello\n", "cat"); got != "hello\n" {
		t.Errorf("stdin through cat = %q", got)
	}
	code, err := Exec(ctx, name, []string{"sh", "-c", "exit 7"}, Stdio{})
	if err != nil || code != 7 {
		t.Errorf("Exec(exit 7) = %d, %v; want 7, nil", code, err)
	}
	code, err = Exec(ctx, name, []string{"sh", "-c", "kill -TERM $$"}, Stdio{})
	if err != nil || code != 128+15 {
		t.Errorf("Exec(kill -TERM self) = %d, %v; want 143, nil", code, err)
	}
	if code, err := Exec(ctx, name, []string{"vmnet-no-such-command"}, Stdio{}); err != nil || code != 127 {
		t.Errorf("Exec(missing command) = %d, %v; want 127, nil", code, err)
	}

	// A libvirt network made inside stays inside.
	net1 := fmt.Sprintf("vmnett%d", os.Getpid()%100000)
	br := fmt.Sprintf("vsb%d", os.Getpid()%100000)
	xml := fmt.Sprintf(`<network><name>%s</name><bridge name='%s'/>`+
		`<ip address='192.0.2.1' netmask='255.255.255.0'><dhcp><range start='192.0.2.10' end='192.0.2.20'/></dhcp></ip></network>`, net1, br)
	execOut(t, name, xml, "sh", "-c", "cat > /run/net.xml && virsh -q -c qemu:///system net-define /run/net.xml && virsh -q -c qemu:///system net-start "+net1)
	if out := execOut(t, name, "", "ip", "-o", "link", "show", br); !strings.Contains(out, br) {
		t.Errorf("bridge %s not inside the sandbox: %q", br, out)
	}
	if _, err := net.InterfaceByName(br); err == nil {
		t.Errorf("bridge %s of the sandbox is visible in the host's network namespace", br)
	}
	if _, err := os.Stat("/etc/libvirt/qemu/networks/" + net1 + ".xml"); err == nil {
		t.Errorf("network %s was written to the host's /etc/libvirt", net1)
	}
	if _, err := os.Stat("/run/net.xml"); err == nil {
		t.Errorf("a file written to /run inside the sandbox appeared on the host")
	}

	infos, err := List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range infos {
		if in.Name == name {
			found = true
			if in.State != "running" || !in.LibvirtdAlive || !in.VirtlogdAlive || !in.NetNSPresent {
				t.Errorf("List: %+v, want running", in)
			}
		}
	}
	if !found {
		t.Errorf("List = %+v, want %s in it", infos, name)
	}

	res2, err := Up(ctx, name)
	if err != nil || res2.Change != Unchanged || res2.LibvirtdPID != res.LibvirtdPID {
		t.Fatalf("second Up = %+v, %v; want unchanged, same pids", res2, err)
	}

	// Everything that runs in the sandbox (libvirtd, virtlogd, dnsmasq, a stray sleep) must go.
	netID, _ := boundNS(l.netnsFile)
	mntID, _ := boundNS(l.mntFile)
	sleeper := exec.Command("nsenter", "--net="+l.netnsFile, "--", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	sleepDone := make(chan error, 1)
	go func() { sleepDone <- sleeper.Wait() }()
	var pids []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		pids = members(netID, mntID)
		if len(pids) >= 4 {
			break
		}
	}
	if len(pids) < 4 {
		t.Errorf("processes in the sandbox: %v, want libvirtd, virtlogd, dnsmasq and sleep", pids)
	}

	if err := Down(ctx, name); err != nil {
		t.Fatalf("Down: %v", err)
	}
	select {
	case <-sleepDone:
	case <-time.After(5 * time.Second):
		t.Errorf("sleep in the sandbox's network namespace survived Down")
		_ = sleeper.Process.Kill()
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after Down", pid)
		}
	}
	if _, err := os.Lstat(l.netnsFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after Down (%v)", l.netnsFile, err)
	}
	if _, err := os.Lstat(l.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there after Down (%v)", l.dir, err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, "/run/vmnet/sandbox/"+name) || strings.Contains(line, "vmnet-"+name+" ") {
			t.Errorf("mount left after Down: %s", line)
		}
	}
	if err := Down(ctx, name); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if _, err := Exec(ctx, name, []string{"true"}, Stdio{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Exec after Down = %v, want ErrNotFound", err)
	}
}

func TestSandboxRepair(t *testing.T) {
	requireSandbox(t)
	ctx := context.Background()
	name := testName(t, "fix")
	l := layoutFor(name)

	res, err := Up(ctx, name)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	// A libvirtd that died (we started it, so we may kill it, by pid).
	if err := syscall.Kill(res.LibvirtdPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); alive(res.LibvirtdPID) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if infos, _ := List(); len(infos) == 0 || !hasState(infos, name, "degraded") {
		t.Errorf("List with libvirtd dead = %+v, want %s degraded", infos, name)
	}
	res2, err := Up(ctx, name)
	if err != nil || res2.Change != Repaired || res2.LibvirtdPID == res.LibvirtdPID || res2.VirtlogdPID != res.VirtlogdPID {
		t.Fatalf("Up after libvirtd died = %+v, %v; want repaired with a new libvirtd", res2, err)
	}
	execOut(t, name, "", "virsh", "-c", "qemu:///system", "list", "--all")

	// A run killed after the network namespace was made: no mount namespace.
	if err := Down(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", l.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	if _, err := Exec(ctx, name, []string{"true"}, Stdio{}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Exec of a half-made sandbox = %v, want a 'half-made' error", err)
	}
	res3, err := Up(ctx, name)
	if err != nil || res3.Change != Recreated {
		t.Fatalf("Up of a half-made sandbox = %+v, %v; want recreated", res3, err)
	}
	execOut(t, name, "", "virsh", "-c", "qemu:///system", "list", "--all")
}

func hasState(infos []Info, name, state string) bool {
	for _, in := range infos {
		if in.Name == name {
			return in.State == state
		}
	}
	return false
}

func TestSandboxForeignNetns(t *testing.T) {
	requireSandbox(t)
	ctx := context.Background()
	name := testName(t, "foreign")
	l := layoutFor(name)
	if out, err := exec.Command("ip", "netns", "add", l.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", l.netns).Run() })
	if _, err := Up(ctx, name); err == nil || !strings.Contains(err.Error(), "not made by vmnet") {
		t.Errorf("Up over a foreign namespace = %v, want a refusal", err)
	}
	if err := Down(ctx, name); err != nil {
		t.Errorf("Down: %v", err)
	}
	if _, err := os.Stat(l.netnsFile); err != nil {
		t.Errorf("Down removed a namespace vmnet did not make: %v", err)
	}
}

func TestSandboxInvalidName(t *testing.T) {
	ctx := context.Background()
	if _, err := Up(ctx, "Bad_Name"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Up(Bad_Name) = %v, want errs.ErrInvalid", err)
	}
	if err := Down(ctx, "../x"); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Down(../x) = %v, want errs.ErrInvalid", err)
	}
	if _, err := Exec(ctx, "", []string{"true"}, Stdio{}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Exec(\"\") = %v, want errs.ErrInvalid", err)
	}
}
