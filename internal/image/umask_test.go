package image

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Builds under umask 077 (CIS-hardened hosts, many CI images) give the cache
// the modes QEMU needs: it runs as libvirt-qemu and must traverse the cache
// and read each kernel, initrd and base disk. The umask is the process's, so
// this test must not run in parallel with others (none in this package does).
func TestBuildsUnderUmask077(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	perm := func(p string) fs.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	check := func(c *Cache, img Image) {
		t.Helper()
		for _, d := range []string{filepath.Dir(filepath.Dir(c.Dir)), filepath.Dir(c.Dir), c.Dir, filepath.Dir(img.Dir), img.Dir} {
			if m := perm(d); m != 0o755 {
				t.Errorf("directory %s: mode %04o, want 0755 (QEMU traverses it)", d, m)
			}
		}
		for _, f := range []string{img.Kernel, img.Initrd, img.Disk, filepath.Join(img.Dir, manifestName), filepath.Join(img.Dir, logFile)} {
			if f == "" {
				continue
			}
			if m := perm(f); m != 0o644 {
				t.Errorf("%s: mode %04o, want 0644 (QEMU reads it)", f, m)
			}
		}
	}

	// The cache makes its own directories: /var/cache/vmnet/images on a fresh host.
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	tiny := newTestCache(t, recipesCopy(t), newFakeSource())
	tiny.Dir = filepath.Join(base, "tiny-cache", "vmnet", "images")
	var out bytes.Buffer
	img, _, err := tiny.Ensure(context.Background(), "tiny", &out)
	if err != nil {
		t.Fatalf("Ensure tiny: %v\n%s", err, out.String())
	}
	check(tiny, img)

	capstone := newRootfsCache(t, &fakeTools{})
	capstone.Dir = filepath.Join(base, "capstone-cache", "vmnet", "images")
	out.Reset()
	img, _, err = capstone.Ensure(context.Background(), "capstone", &out)
	if err != nil {
		t.Fatalf("Ensure capstone: %v\n%s", err, out.String())
	}
	check(capstone, img)
	// Directories vmnet makes inside the image: the guest's services (nginx,
	// PostgreSQL) do not run as root.
	const app = "/var/lib/vmnet/app-rootfs"
	disk := readDisk(t, img.Disk, "/usr/local/lib/vmnet", "/usr/local/lib/vmnet/app", "/etc/vmnet", "/var/lib/vmnet", app, app+"/etc/hostname")
	for p, want := range map[string]fs.FileMode{
		"/usr/local/lib/vmnet": 0o755, "/usr/local/lib/vmnet/app": 0o755, "/etc/vmnet": 0o755,
		"/var/lib/vmnet": 0o755, app: 0o755, app + "/etc/hostname": 0o644,
	} {
		if got, ok := disk[p]; !ok {
			t.Errorf("%s is not on the disk", p)
		} else if got.mode != want {
			t.Errorf("%s on the disk: mode %04o, want %04o", p, got.mode, want)
		}
	}
}
