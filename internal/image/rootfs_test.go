package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/fsperm"
	"vmnet/internal/testutil"
)

// fakeTools stands in for mmdebstrap and chroot: bootstrap writes a small
// Debian-like tree (a kernel and initrd in /boot for the system, a dpkg
// status naming every package it was asked for) and runs the command line's
// real setup and customize hooks with sh, with a .deb for each package in
// the chroot's apt archives; chroot answers the commands the build runs.
type fakeTools struct {
	mu       sync.Mutex
	calls    []string // "bootstrap TARGET", "chroot systemctl ..."
	fail     string   // a bootstrap of a target ending in this fails
	block    string   // a bootstrap of a target ending in this waits for ctx
	initrd   string   // lsinitramfs's answer; default: the modules the build needs
	disabled bool     // is-enabled answers "disabled"
	failCmd  string   // a chroot command line starting with this fails
}

var _ rootfsTools = (*fakeTools)(nil)

func (f *fakeTools) check() error { return nil }

func (f *fakeTools) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeTools) bootstrap(ctx context.Context, b *buildLog, args []string) error {
	var include, setup, customize []string
	var pos []string
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--include="):
			include = strings.Split(strings.TrimPrefix(a, "--include="), ",")
		case strings.HasPrefix(a, "--setup-hook="):
			setup = append(setup, strings.TrimPrefix(a, "--setup-hook="))
		case strings.HasPrefix(a, "--customize-hook="):
			customize = append(customize, strings.TrimPrefix(a, "--customize-hook="))
		case !strings.HasPrefix(a, "--"):
			pos = append(pos, a)
		}
	}
	target := pos[1]
	f.record("bootstrap " + filepath.Base(target))
	b.show("fake mmdebstrap " + strings.Join(include, " "))
	fmt.Fprintf(b.log, "fake mmdebstrap %s\n", strings.Join(args, " "))
	if f.block != "" && strings.HasSuffix(target, f.block) {
		<-ctx.Done()
		return fmt.Errorf("mmdebstrap: %w", ctx.Err())
	}
	if f.fail != "" && strings.HasSuffix(target, f.fail) {
		fmt.Fprintf(b.log, "E: Unable to locate package %s\n", include[len(include)-1])
		return errors.New("mmdebstrap: exit status 1: E: apt-get install failed")
	}
	hook := func(h string) error {
		out, err := exec.CommandContext(ctx, "sh", "-c", "umask 022; "+h, "exec", target).CombinedOutput() // as mmdebstrap runs hooks
		b.log.Write(out)
		return err
	}
	for _, h := range setup {
		if err := hook(h); err != nil {
			return fmt.Errorf("setup hook: %w", err)
		}
	}
	files := map[string]string{
		"etc/hostname":    "buildhost\n",
		"etc/resolv.conf": "nameserver 10.9.9.9\n",
		"usr/bin/env":     "#!fake\n",
	}
	var status strings.Builder
	for _, p := range include {
		name := p
		if name == "linux-image-amd64" {
			name = "linux-image-" + testutil.FakeKver
			files["boot/vmlinuz-"+testutil.FakeKver] = "fake bzImage\n"
			files["boot/initrd.img-"+testutil.FakeKver] = "fake initrd\n"
		}
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n", name)
		files["var/cache/apt/archives/"+name+"_1.0-1_amd64.deb"] = "deb " + name
	}
	files["var/lib/dpkg/status"] = status.String()
	for p, data := range files {
		file := filepath.Join(target, p)
		// mmdebstrap sets umask 022 itself: its tree is the same under any umask.
		if err := fsperm.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		if err := fsperm.WriteFile(file, []byte(data), 0o644); err != nil {
			return err
		}
	}
	// Debian's merged /usr and an absolute link, as in a real system.
	if err := os.Symlink("usr/bin", filepath.Join(target, "bin")); err != nil {
		return err
	}
	if err := os.Symlink("/usr/bin/env", filepath.Join(target, "etc/absolute-link")); err != nil {
		return err
	}
	for _, h := range customize {
		if err := hook(h); err != nil {
			return fmt.Errorf("customize hook: %w", err)
		}
	}
	// mmdebstrap's cleanup empties the archives.
	return os.RemoveAll(filepath.Join(target, "var/cache/apt/archives"))
}

func (f *fakeTools) chroot(ctx context.Context, b *buildLog, root string, args ...string) (string, error) {
	f.record("chroot " + strings.Join(args, " "))
	if f.failCmd != "" && strings.HasPrefix(strings.Join(args, " "), f.failCmd) {
		return "", errors.New("exit status 1")
	}
	switch {
	case args[0] == "lsinitramfs":
		if f.initrd != "" {
			return f.initrd, nil
		}
		return "usr/lib/modules/" + testutil.FakeKver + "/kernel/drivers/virtio/virtio_pci.ko\n" +
			"usr/lib/modules/" + testutil.FakeKver + "/kernel/drivers/block/virtio_blk.ko\n" +
			"usr/lib/modules/" + testutil.FakeKver + "/kernel/fs/ext4/ext4.ko\nscripts/local\n", nil
	case len(args) > 2 && args[0] == "systemctl" && args[2] == "is-enabled":
		state := "enabled"
		if f.disabled {
			state = "disabled"
		}
		return strings.Repeat(state+"\n", len(args)-3), nil
	}
	return "", nil
}

func (f *fakeTools) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// capstoneTemplates is a templates tree like templates/capstone.
func capstoneTemplates() fstest.MapFS {
	return fstest.MapFS{
		"capstone/container-packages.txt":                      {Data: []byte("# the app\npostgresql-15\npython3-flask # api\n\nnginx-light\n")},
		"capstone/enable.txt":                                  {Data: []byte("# units\nvmnet-app.target\n")},
		"capstone/guest/etc/nftables.conf":                     {Data: []byte("table inet vmnet {}\n")},
		"capstone/guest/etc/systemd/system/vmnet-app.target":   {Data: []byte("[Install]\nWantedBy=multi-user.target\n")},
		"capstone/guest/usr/local/sbin/vmnet-app-wait":         {Data: []byte("#!/bin/sh\n")},
		"capstone/guest/usr/local/lib/vmnet/app/entrypoint.sh": {Data: []byte("#!/bin/sh\n")},
		"capstone/guest/usr/local/lib/vmnet/app/api.py":        {Data: []byte("print()\n")},
		"capstone/README.md":                                   {Data: []byte("x\n")},
	}
}

// newCapstoneSource serves the capstone recipe's packages and the templates'.
func newCapstoneSource(t *testing.T) *fakeSource {
	t.Helper()
	src := newFakeSource()
	r, err := loadRecipe(recipesCopy(t), "capstone")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(append([]string(nil), r.Include...), "postgresql-15", "python3-flask", "nginx-light") {
		src.add(p, "1.0-1", "", nil)
	}
	return src
}

func newRootfsCache(t *testing.T, tools *fakeTools) *Cache {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "qemu-img", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian packages e2fsprogs, qemu-utils)", tool)
		}
	}
	c := newTestCache(t, recipesCopy(t), newCapstoneSource(t))
	c.tmpl = capstoneTemplates()
	c.tools = tools
	return c
}

// diskEntry is what debugfs says about a path in an ext4 image.
type diskEntry struct {
	mode fs.FileMode
	kind string // regular, directory, symlink
	data string // a file's content
}

// readDisk converts a qcow2 disk back to raw and reads paths with debugfs.
func readDisk(t *testing.T, disk string, paths ...string) map[string]diskEntry {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", disk, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	got := map[string]diskEntry{}
	for _, p := range paths {
		out, _ := exec.Command("debugfs", "-R", "stat "+p, raw).CombinedOutput()
		var e diskEntry
		for _, l := range strings.Split(string(out), "\n") {
			// "Inode: 12   Type: regular    Mode:  0755   Flags: 0x80000"
			if f := strings.Fields(l); len(f) >= 6 && f[0] == "Inode:" && f[2] == "Type:" && f[4] == "Mode:" {
				var m uint32
				fmt.Sscanf(f[5], "%o", &m)
				e.mode, e.kind = fs.FileMode(m), f[3]
			}
		}
		if e.kind == "regular" {
			data, _ := exec.Command("debugfs", "-R", "cat "+p, raw).Output()
			e.data = string(data)
		}
		if e.kind != "" {
			got[p] = e
		}
	}
	return got
}

// A capstone build with fake mmdebstrap and chroot, but the real mkfs.ext4
// and qemu-img: the disk holds the system, the recipe's files, the templates'
// guest tree with the contract's modes and the app rootfs; the kernel and
// initrd are the system's own; the image is ready by agent.
func TestRootfsBuild(t *testing.T) {
	tools := &fakeTools{}
	c := newRootfsCache(t, tools)
	var out bytes.Buffer
	img, built, err := c.Ensure(context.Background(), "capstone", &out)
	if err != nil {
		t.Fatalf("Ensure: %v\n%s", err, out.String())
	}
	if !built || !img.ReadyAgent || img.ReadyLine != "" || img.Disk != filepath.Join(img.Dir, diskFile) {
		t.Errorf("image: built=%v %+v", built, img)
	}
	if img.Cmdline != "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet" {
		t.Errorf("Cmdline = %q", img.Cmdline)
	}
	if k, _ := os.ReadFile(img.Kernel); string(k) != "fake bzImage\n" {
		t.Errorf("kernel = %q", k)
	}
	if i, _ := os.ReadFile(img.Initrd); string(i) != "fake initrd\n" {
		t.Errorf("initrd = %q", i)
	}
	if img.Packages[0] != "linux-image-"+testutil.FakeKver+"=1.0-1" || !cmp.Equal(img.AppPackages, []string{"postgresql-15=1.0-1", "python3-flask=1.0-1", "nginx-light=1.0-1"}) {
		t.Errorf("Packages %v, AppPackages %v", img.Packages, img.AppPackages)
	}
	for _, want := range []string{"system: fake mmdebstrap linux-image-amd64 systemd", "app: fake mmdebstrap postgresql-15 python3-flask nginx-light",
		"system: installed in", "app: installed in", "its initrd holds virtio_pci, virtio_blk, ext4", "disk: ", "built in"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
	if entries, _ := os.ReadDir(img.Dir); len(entries) != 5 { // vmlinuz initrd.img disk.qcow2 build.log manifest.json
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("build dir holds %v, want the artefacts, the log and the manifest only", names)
	}
	m, err := readManifest(img.Dir)
	if err != nil || m.PhaseSeconds["mkfs.ext4"] == 0 || m.PhaseSeconds["mmdebstrap app"] == 0 {
		t.Errorf("manifest phases %v, %v", m.PhaseSeconds, err)
	}

	calls := tools.called()
	for _, want := range []string{
		"chroot systemctl --root=/ enable vmnet-net.service systemd-networkd.service systemd-resolved.service qemu-guest-agent.service vmnet-app.target",
		"chroot systemctl --root=/ disable podman-restart.service e2scrub_reap.service e2scrub_all.timer fstrim.timer dpkg-db-backup.timer systemd-pstore.service apt-daily.timer apt-daily-upgrade.timer podman-auto-update.timer podman-auto-update.service podman.service podman.socket cloud-init-hotplugd.socket",
		"chroot passwd --lock root",
		"chroot /bin/sh -c /usr/local/sbin/vmnet-app-db-prepare",
	} {
		if !contains(calls, want) {
			t.Errorf("no %q among %q", want, calls)
		}
	}

	const app = "/var/lib/vmnet/app-rootfs"
	disk := readDisk(t, img.Disk, "/usr/local/sbin/vmnet-net", "/etc/systemd/system/vmnet-net.service", "/etc/vmnet/secrets",
		"/etc/cloud/cloud-init.disabled", "/etc/hostname", "/etc/nftables.conf", "/usr/local/sbin/vmnet-app-wait",
		"/usr/local/lib/vmnet/app/entrypoint.sh", "/usr/local/lib/vmnet/app/api.py", "/etc/vmnet/image",
		app+"/var/lib/dpkg/status", app+"/etc/hostname", app+"/etc/resolv.conf", "/etc/absolute-link", "/bin",
		"/etc/initramfs-tools/conf.d/vmnet", "/etc/initramfs-tools/hooks/vmnet")
	want := map[string]struct {
		mode fs.FileMode
		kind string
	}{
		"/usr/local/sbin/vmnet-net":              {0o755, "regular"},
		"/etc/systemd/system/vmnet-net.service":  {0o644, "regular"},
		"/etc/vmnet/secrets":                     {0o700, "directory"},
		"/etc/cloud/cloud-init.disabled":         {0o644, "regular"},
		"/etc/initramfs-tools/conf.d/vmnet":      {0o644, "regular"}, // setup_files: in before the packages
		"/etc/initramfs-tools/hooks/vmnet":       {0o755, "regular"},
		"/etc/hostname":                          {0o644, "regular"},
		"/etc/nftables.conf":                     {0o644, "regular"},
		"/usr/local/sbin/vmnet-app-wait":         {0o755, "regular"},
		"/usr/local/lib/vmnet/app/entrypoint.sh": {0o755, "regular"},
		"/usr/local/lib/vmnet/app/api.py":        {0o644, "regular"},
		"/etc/vmnet/image":                       {0o644, "regular"},
		app + "/var/lib/dpkg/status":             {0o644, "regular"},
		app + "/etc/hostname":                    {0o644, "regular"},
		app + "/etc/resolv.conf":                 {0o644, "regular"},
		"/etc/absolute-link":                     {0o777, "symlink"},
		"/bin":                                   {0o777, "symlink"},
	}
	for p, w := range want {
		got, ok := disk[p]
		if !ok {
			t.Errorf("%s is not on the disk", p)
			continue
		}
		if got.mode != w.mode || got.kind != w.kind {
			t.Errorf("%s: %s %04o, want %s %04o", p, got.kind, got.mode, w.kind, w.mode)
		}
	}
	if d := disk["/etc/hostname"].data; d != "capstone\n" {
		t.Errorf("/etc/hostname = %q", d)
	}
	if d := disk[app+"/etc/resolv.conf"].data; strings.Contains(d, "10.9.9.9") {
		t.Errorf("the app rootfs kept the build host's resolv.conf: %q", d)
	}
	if d := disk["/etc/vmnet/image"].data; !strings.Contains(d, "hash="+img.Hash) || !strings.Contains(d, "kernel="+testutil.FakeKver) {
		t.Errorf("/etc/vmnet/image = %q", d)
	}

	// The kept .debs: linked out by the real customize hook, one per package.
	for _, part := range []string{"system", "app"} {
		debs, _ := filepath.Glob(filepath.Join(c.Dir, aptArchivesDir, "capstone", part, "*.deb"))
		if len(debs) < 3 {
			t.Errorf("%s: %d .debs kept, want one per package", part, len(debs))
		}
	}

	// A second Ensure is a cache hit: nothing is installed again.
	n := len(tools.called())
	if _, built, err := c.Ensure(context.Background(), "capstone", nil); err != nil || built || len(tools.called()) != n {
		t.Errorf("second Ensure: built=%v err=%v, %d more tool calls", built, err, len(tools.called())-n)
	}

	// Removing the image removes its kept .debs too.
	if existed, err := c.Remove(context.Background(), "capstone"); err != nil || !existed {
		t.Fatalf("Remove: %v %v", existed, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, aptArchivesDir, "capstone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the kept .debs outlived the image: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// A failing part of the build stops the other, and the failure (not the
// other's cancellation) is what the user sees, with the log's tail.
func TestRootfsBuildFailures(t *testing.T) {
	tests := []struct {
		name  string
		tools *fakeTools
		want  string
	}{
		{"app fails, system cancelled", &fakeTools{fail: "app", block: "system"}, "install the app packages"},
		{"system fails, app cancelled", &fakeTools{fail: "system", block: "app"}, "install the system packages"},
		{"initrd without virtio_blk", &fakeTools{initrd: "usr/lib/modules/x/kernel/fs/ext4/ext4.ko\n"}, "lacks virtio_pci, virtio_blk"},
		{"unit not enabled", &fakeTools{disabled: true}, "unit vmnet-net.service is disabled after systemctl enable"},
		{"customize fails", &fakeTools{failCmd: "/bin/sh -c /usr/local/sbin/vmnet-app-db-prepare"}, "customize[0] (/usr/local/sbin/vmnet-app-db-prepare)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRootfsCache(t, tt.tools)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			_, _, err := c.Ensure(ctx, "capstone", &out)
			var be *BuildError
			if !errors.As(err, &be) {
				t.Fatalf("Ensure = %v, want a *BuildError", err)
			}
			if !strings.Contains(err.Error(), tt.want) || errors.Is(err, context.Canceled) {
				t.Errorf("error %q, want %q and not a cancellation", err, tt.want)
			}
			if len(be.Tail) == 0 || !strings.Contains(out.String(), "last lines of") {
				t.Errorf("no log tail shown:\n%s", out.String())
			}
			if builds, _ := filepath.Glob(filepath.Join(c.Dir, "capstone", ".build-*")); len(builds) != 0 {
				t.Errorf("left behind: %v", builds)
			}
		})
	}
}

func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/lib", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	links := map[string]string{
		"bin":       "usr/bin",      // relative, like merged /usr
		"lib":       "/usr/lib",     // absolute: inside the image, not the host's /usr/lib
		"etc/up":    "../../../..",  // climbs above the root: stops there
		"etc/host":  "/etc",         // the image's /etc
		"loop":      "loop",         // never ends
		"etc/final": "/tmp/outside", // the last part is replaced, not followed
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		rel, want string
		bad       bool
	}{
		{rel: "etc/hosts", want: "etc/hosts"},
		{rel: "bin/sh", want: "usr/bin/sh"},
		{rel: "lib/x.so", want: "usr/lib/x.so"},
		{rel: "etc/up/etc/passwd", want: "etc/passwd"},
		{rel: "etc/host/shadow", want: "etc/shadow"},
		{rel: "etc/final", want: "etc/final"},
		{rel: "new/dir/file", want: "new/dir/file"},
		{rel: "loop/x", bad: true},
		{rel: "../etc/passwd", bad: true},
		{rel: "/etc/passwd", bad: true},
	}
	for _, tt := range tests {
		got, err := resolveInRoot(root, tt.rel)
		if tt.bad {
			if err == nil {
				t.Errorf("resolveInRoot(%q) = %q, want an error", tt.rel, got)
			}
			continue
		}
		if err != nil || got != filepath.Join(root, tt.want) {
			t.Errorf("resolveInRoot(%q) = %q, %v; want %q", tt.rel, got, err, filepath.Join(root, tt.want))
		}
	}
}

func TestMissingModules(t *testing.T) {
	listing := "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/block/virtio_blk.ko\n" +
		"usr/lib/modules/6.1.0-56-amd64/kernel/fs/ext4/ext4.ko.xz\nusr/lib/modules/6.1.0-56-amd64/kernel/fs/ext4\n"
	if got := missingModules(listing, []string{"virtio_pci", "virtio_blk", "ext4"}); !cmp.Equal(got, []string{"virtio_pci"}) {
		t.Errorf("missingModules = %v", got)
	}
}

func TestCheckEnabled(t *testing.T) {
	units := []string{"a.service", "b.target"}
	for _, tt := range []struct {
		out string
		ok  bool
	}{
		{"enabled\nenabled\n", true},
		{"enabled\nalias\n", true},
		{"enabled\nstatic\n", false},
		{"enabled\n", false},
		{"", false},
	} {
		if err := checkEnabled(units, tt.out); (err == nil) != tt.ok {
			t.Errorf("checkEnabled(%q) = %v, want ok=%v", tt.out, err, tt.ok)
		}
	}
}

func TestDiskSize(t *testing.T) {
	for _, tt := range []struct{ content, headroom, want int64 }{
		{0, 0, 256 << 20},
		{1 << 30, 1536 << 20, (1<<30 + (1<<30)/20 + 256<<20 + 1536<<20 + 64<<20 - 1) / (64 << 20) * (64 << 20)},
	} {
		got := diskSize(tt.content, tt.headroom)
		if got != tt.want || got%(64<<20) != 0 || got < tt.content+tt.headroom {
			t.Errorf("diskSize(%d, %d) = %d, want %d", tt.content, tt.headroom, got, tt.want)
		}
	}
}

func TestTreeSize(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "a"), make([]byte, 5000), 0o644)
	os.Link(filepath.Join(root, "a"), filepath.Join(root, "b")) // counted once
	os.Symlink("a", filepath.Join(root, "c"))
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	bytes, inodes, err := treeSize(root)
	// root dir + a + c + d; a is 2 blocks, each dir 1, the short link none.
	if err != nil || inodes != 4 || bytes != 2*4096+4096+4096 {
		t.Errorf("treeSize = %d bytes, %d inodes, %v", bytes, inodes, err)
	}
}
