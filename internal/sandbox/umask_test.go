package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// setUmask sets the process's umask for one test and restores it. The umask
// is process-wide: tests that call it must not use t.Parallel (none here do).
func setUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func procUmask(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Umask in /proc/%d/status", pid)
	return ""
}

// Under umask 077 a sandbox still looks like a host: its daemons run under
// umask 022, as systemd starts them (libvirtd writes dnsmasq's hosts file,
// which dnsmasq reads as nobody), and what it makes has a host's modes.
func TestSandboxUnderUmask077(t *testing.T) {
	requireSandbox(t)
	setUmask(t, 0o077)
	name := testName(t, "umask")
	res, err := Up(context.Background(), name)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	for d, pid := range map[string]int{"libvirtd": res.LibvirtdPID, "virtlogd": res.VirtlogdPID} {
		if m := procUmask(t, pid); m != "0022" {
			t.Errorf("%s runs under umask %s, want 0022 (as systemd starts it)", d, m)
		}
	}
	fi, err := os.Stat("/etc/libvirt")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%o", fi.Mode().Perm())
	for _, c := range []struct{ path, want string }{{"/etc/libvirt", want}, {"/var/lib/vmnet", "755"}, {"/run/libvirt", "755"}} {
		if got := strings.TrimSpace(execOut(t, name, "", "stat", "-c", "%a", c.path)); got != c.want {
			t.Errorf("%s in the sandbox: mode %s, want %s", c.path, got, c.want)
		}
	}
	for _, d := range []string{vmStateDir, StateDir} {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm() != 0o755 {
			t.Errorf("%s on the host: mode %04o, want 0755", d, fi.Mode().Perm())
		}
	}
}

// An up that fails after making /var/lib/vmnet leaves the host as it was:
// no state directory, no namespace, and no mount point unless another
// sandbox still uses it (then its marker stays, for the last down).
func TestSandboxFailedUpLeavesNothing(t *testing.T) {
	requireSandbox(t)
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "libvirtd"), []byte("#!/bin/sh\necho 'fake libvirtd: refusing to start' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", fake+":"+os.Getenv("PATH"))
	_, statErr := os.Stat(vmStateDir)
	before := errors.Is(statErr, fs.ErrNotExist)

	name := testName(t, "fail")
	l := layoutFor(name)
	if _, err := Up(context.Background(), name); err == nil || !strings.Contains(err.Error(), "refusing to start") {
		t.Fatalf("Up with a libvirtd that fails = %v, want its error", err)
	}
	for _, p := range []string{l.dir, l.netnsFile} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a failed Up left %s (%v)", p, err)
		}
	}
	others := false
	if ents, err := os.ReadDir(StateDir); err == nil {
		for _, e := range ents {
			others = others || e.IsDir()
		}
	}
	_, statErr = os.Stat(vmStateDir)
	switch {
	case !before:
		t.Logf("%s existed before the test: not ours to remove", vmStateDir)
	case others:
		if _, err := os.Stat(vmStateDirMarker); err != nil {
			t.Errorf("%s stays for another sandbox, but its marker is gone: the last down would leave it (%v)", vmStateDir, err)
		}
	case !errors.Is(statErr, fs.ErrNotExist):
		t.Errorf("a failed Up left %s on the host", vmStateDir)
	}
}
