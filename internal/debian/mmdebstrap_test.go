package debian

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMmdebstrapArgsGolden(t *testing.T) {
	args := MmdebstrapArgs(BootstrapSpec{
		Suite: "bookworm", Target: "/cache/capstone/.build-1/work/system",
		Mirrors:  []string{"deb http://deb.debian.org/debian bookworm main", "deb http://deb.debian.org/debian-security bookworm-security main"},
		Include:  []string{"linux-image-amd64", "systemd"},
		Exclude:  []string{"/usr/share/man/*"},
		Keep:     []string{"/usr/share/doc/*/copyright"},
		Archives: "/cache/.apt-archives/capstone/system it's",
	})
	testutil.Golden(t, "testdata/mmdebstrap-args.golden", []byte(strings.Join(args, "\n")+"\n"), *update)
}

// The hooks keep .debs between builds: setup links the kept ones in,
// customize links the new ones out, both with a path that needs quoting.
func TestMmdebstrapHooks(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept it's")
	root := filepath.Join(dir, "root")
	os.MkdirAll(kept, 0o755)
	os.WriteFile(filepath.Join(kept, "old_1_all.deb"), []byte("old"), 0o644)
	var setup, customize string
	for _, a := range MmdebstrapArgs(BootstrapSpec{Suite: "s", Target: root, Include: []string{"x"}, Archives: kept}) {
		if h, ok := strings.CutPrefix(a, "--setup-hook="); ok {
			setup = h
		}
		if h, ok := strings.CutPrefix(a, "--customize-hook="); ok {
			customize = h
		}
	}
	run := func(h string) {
		if out, err := exec.Command("sh", "-c", h, "exec", root).CombinedOutput(); err != nil {
			t.Fatalf("hook %q: %v\n%s", h, err, out)
		}
	}
	run(setup)
	if b, err := os.ReadFile(filepath.Join(root, "var/cache/apt/archives/old_1_all.deb")); string(b) != "old" {
		t.Fatalf("setup hook did not bring the kept .deb in: %q %v", b, err)
	}
	os.WriteFile(filepath.Join(root, "var/cache/apt/archives/new_2_amd64.deb"), []byte("new"), 0o644)
	run(customize)
	run(customize) // again: existing files are kept, not an error
	names, _ := filepath.Glob(filepath.Join(kept, "*.deb"))
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	sort.Strings(names)
	if !cmp.Equal(names, []string{"new_2_amd64.deb", "old_1_all.deb"}) {
		t.Errorf("kept %v", names)
	}
}

// A seed's files are in the tree before any package is installed, with
// their modes, whatever the umask; without a seed there is no such hook.
func TestMmdebstrapSeed(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed it's")
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(seed, "etc/initramfs-tools/hooks"), 0o755)
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(seed, "etc/initramfs-tools/hooks/vmnet"), []byte("#!/bin/sh\n"), 0o755)
	hooks := func(s BootstrapSpec) []string {
		var out []string
		for _, a := range MmdebstrapArgs(s) {
			if h, ok := strings.CutPrefix(a, "--setup-hook="); ok {
				out = append(out, h)
			}
		}
		return out
	}
	if n := len(hooks(BootstrapSpec{Suite: "s", Target: root, Archives: dir})); n != 1 {
		t.Errorf("without a seed: %d setup hooks, want the archives' one", n)
	}
	hs := hooks(BootstrapSpec{Suite: "s", Target: root, Archives: dir, Seed: seed})
	if len(hs) != 2 {
		t.Fatalf("setup hooks %q, want the archives' and the seed's", hs)
	}
	cmd := exec.Command("sh", "-c", "umask 077; "+hs[1], "exec", root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("seed hook: %v\n%s", err, out)
	}
	st, err := os.Stat(filepath.Join(root, "etc/initramfs-tools/hooks/vmnet"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("the seeded hook: %v, %v", st, err)
	}
	if d, err := os.Stat(filepath.Join(root, "etc")); err != nil || d.Mode().Perm() != 0o755 {
		t.Errorf("the seeded directory etc: %v, %v", d, err)
	}
}
