package virt

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// fakeDaemon starts a process whose name is libvirtd (a copy of sleep), in
// network namespace ns when ns is not "", writes its pid file and returns it.
func fakeDaemon(t *testing.T, name, ns string) (pid int, pidFile string) {
	t.Helper()
	dir := t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "60")
	if ns != "" {
		cmd = exec.Command("ip", "netns", "exec", ns, bin, "60")
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pidFile = filepath.Join(dir, name+".pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// ip netns exec execs the daemon in place: wait until the pid has its name.
	for deadline := time.Now().Add(5 * time.Second); ; {
		comm, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/comm")
		if string(comm) == name+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d never became %s", cmd.Process.Pid, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid, pidFile
}

func TestDaemonPID(t *testing.T) {
	pid, pidFile := fakeDaemon(t, "libvirtd", "")
	_, otherFile := fakeDaemon(t, "notlibvirt", "")
	stale := filepath.Join(t.TempDir(), "stale.pid")
	os.WriteFile(stale, []byte("999999999\n"), 0o644)
	for _, tc := range []struct {
		uri   string
		files []string
		want  int
	}{
		{"qemu:///system?socket=/proc/4242/root/run/libvirt/libvirt-sock", nil, 4242},
		{"qemu:///system", []string{stale, otherFile, pidFile}, pid},
		{"qemu:///system?socket=/run/libvirt/libvirt-sock", []string{pidFile}, pid},
		{"qemu:///system", []string{stale, otherFile}, 0}, // no live libvirtd named
		{"qemu:///system?socket=/tmp/elsewhere-sock", []string{pidFile}, 0},
		{"qemu:///session", []string{pidFile}, 0},
		{"qemu+ssh://lab1/system", []string{pidFile}, 0},
		{"qemu://lab1/system", []string{pidFile}, 0},
		{"test:///default", []string{pidFile}, 0},
	} {
		if got := daemonPID(tc.uri, tc.files); got != tc.want {
			t.Errorf("daemonPID(%q) = %d, want %d", tc.uri, got, tc.want)
		}
	}
}

// The namespace of a local libvirtd is found through its pid file, even when
// vmnet runs in another one.
func TestNetnsOfLocalDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "hw-virt-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	want, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()

	_, pidFile := fakeDaemon(t, "libvirtd", name)
	got, err := netnsOf("qemu:///system", []string{pidFile})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if !got.Equal(want) {
		t.Errorf("netns of the daemon = %s, want %s (the daemon's)", got, want)
	}
	here, err := netnsOf("qemu:///system?socket=/tmp/x", []string{pidFile})
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	if !here.Equal(cur) {
		t.Errorf("netns for an unplaceable socket = %s, want the current %s", here, cur)
	}
}
