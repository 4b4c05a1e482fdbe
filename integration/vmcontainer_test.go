package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ctrImage builds the host containers' rootfs outside the sandbox, as the
// error inside one says to.
func ctrImage(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(vmnetBin(t), "image", "build", "ctr").CombinedOutput(); err != nil {
		t.Fatalf("vmnet image build ctr: %v\n%s", err, out)
	}
}

// TestVMContainerLab: in a sandbox, a lab asking for an ipvlan container
// on the host (whose kernel has no ipvlan) is refused with exit 2 before
// anything changes; the built-in vm-container lab (a tiny VM and a podman
// container on the host, one bridge) comes up green, a second up changes
// nothing, and lab down leaves no container, process, link or record.
func TestVMContainerLab(t *testing.T) {
	// With the other lab tests that boot their own sandbox: they run
	// together after the sequential tests, keeping CI under 30 minutes.
	t.Parallel()
	need(t, "podman", "nsenter")
	tinyImage(t)
	ctrImage(t)
	s := newSandbox(t)
	state := func() string {
		return sb(t, s, "sh", "-c", "ip -o link; ip -o addr; virsh -c qemu:///system list --all --name; virsh -c qemu:///system net-list --all --name; find /var/lib/vmnet 2>/dev/null").stdout
	}
	before := state()
	data, err := os.ReadFile("../templates/labs/vm-container.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "ipvlan.lab.yaml")
	ipvlan := strings.Replace(string(data), "    listen: 8080\n", "    listen: 8080\n    mode: ipvlan\n", 1)
	if err := os.WriteFile(file, []byte(ipvlan), 0o644); err != nil {
		t.Fatal(err)
	}
	r := sb(t, s, vmnetBin(t), "lab", "up", file)
	if r.code != 2 || !strings.Contains(r.stderr, "nodes.web.mode") || !strings.Contains(r.stderr, "this host's kernel does not have") ||
		!strings.Contains(r.stderr, "inside a guest") || !strings.Contains(r.stderr, "network: ipvlan") {
		t.Errorf("lab up with an ipvlan host container: exit %d, want 2 with the reason and the in-guest way\n%s", r.code, r.stderr)
	}
	if after := state(); after != before {
		t.Errorf("the refused lab changed the sandbox:\nbefore %s\nafter  %s", before, after)
	}

	up := sbVmnet(t, s, "lab", "up", "vm-container")
	if !strings.Contains(up.stdout, "all 8 checks passed") || !strings.Contains(up.stdout, "create container web") {
		t.Errorf("lab up vm-container: want the container made and all 8 checks green:\n%s", up.stdout)
	}
	pid := hostPid(t, s)
	if pid == "" {
		t.Fatalf("no running container labelled vmnet.lab=vm-container (pid %q)", pid)
	}
	if again := sbVmnet(t, s, "lab", "up", "vm-container", "--no-check"); !strings.Contains(again.stdout, "unchanged") {
		t.Errorf("a second up changed something:\n%s", again.stdout)
	}
	if in := sbVmnet(t, s, "lab", "inspect", "vm-container"); !strings.Contains(in.stdout, "web") || !strings.Contains(in.stdout, "192.0.2.20") {
		t.Errorf("lab inspect does not show the container:\n%s", in.stdout)
	}

	down := sbVmnet(t, s, "lab", "down", "vm-container")
	if !strings.Contains(down.stdout, "remove container web") {
		t.Errorf("lab down did not say it removed the container:\n%s", down.stdout)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			break
		}
	}
	if _, err := os.Stat("/proc/" + pid); err == nil {
		t.Errorf("the container's process %s is still running after lab down", pid)
	}
	time.Sleep(2 * time.Second) // conmon's cleanup, had down not waited for it, would make podman's storage again by now
	if after := state(); after != before {
		t.Errorf("lab down left residue:\nbefore %s\nafter  %s", before, after)
	}

	// An up killed once its container runs (during the checks): down finds
	// the container by its label alone.
	cmd := exec.Command(vmnetBin(t), "sandbox", "exec", s, "--", vmnetBin(t), "lab", "up", "vm-container")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && hostPid(t, s) == ""; {
		time.Sleep(200 * time.Millisecond)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait() // killed: its error says so
	if hostPid(t, s) == "" {
		t.Fatal("the killed up left no container to find: kill it later")
	}
	if down := sbVmnet(t, s, "lab", "down", "vm-container"); !strings.Contains(down.stdout, "remove container web") {
		t.Errorf("lab down after a killed up did not remove the container:\n%s", down.stdout)
	}
	time.Sleep(2 * time.Second)
	if after := state(); after != before {
		t.Errorf("lab down after a killed up left residue:\nbefore %s\nafter  %s", before, after)
	}
}

// hostPid is the pid of vm-container's running host container in sandbox
// s, as podman with the lab's storage reports it; "" for none.
func hostPid(t *testing.T, s string) string {
	t.Helper()
	dir := "/var/lib/vmnet/labs/vm-container/podman"
	out := sb(t, s, "sh", "-c", "[ -d "+dir+" ] && podman --root "+dir+"/root --runroot "+dir+"/run --tmpdir "+dir+"/tmp ps --format '{{.Pid}}' --filter label=vmnet.lab=vm-container").stdout
	if p := strings.TrimSpace(out); p != "0" {
		return p
	}
	return ""
}
