package initramfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/testutil"
)

func TestReadModinfo(t *testing.T) {
	file := filepath.Join(t.TempDir(), "virtio-rng.ko")
	if err := os.WriteFile(file, testutil.FakeModule("virtio_rng", "virtio", "virtio-ring"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, deps, err := readModinfo(file)
	if err != nil {
		t.Fatal(err)
	}
	if name != "virtio_rng" || !cmp.Equal(deps, []string{"virtio", "virtio_ring"}) {
		t.Errorf("readModinfo = %q %v", name, deps)
	}
	os.WriteFile(file, []byte("not elf"), 0o644)
	if _, _, err := readModinfo(file); err == nil {
		t.Error("a file that is not ELF was read")
	}
}

func TestLoadOrder(t *testing.T) {
	mods := map[string]Module{}
	for _, m := range []Module{
		{Name: "virtio_ring"},
		{Name: "virtio", Depends: []string{"virtio_ring"}},
		{Name: "virtio_pci_modern_dev"},
		{Name: "virtio_pci_legacy_dev"},
		{Name: "virtio_pci", Depends: []string{"virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci_legacy_dev"}},
		{Name: "failover"},
		{Name: "net_failover", Depends: []string{"failover"}},
		{Name: "virtio_net", Depends: []string{"net_failover", "virtio", "virtio_ring"}},
		{Name: "virtio_rng", Depends: []string{"virtio", "virtio_ring", "rng_core"}},
		{Name: "loop_a", Depends: []string{"loop_b"}},
		{Name: "loop_b", Depends: []string{"loop_a"}},
		{Name: "needs_ghost", Depends: []string{"ghost"}},
	} {
		mods[m.Name] = m
	}
	builtin := map[string]bool{"rng_core": true, "e1000": true}
	tests := []struct {
		name string
		want []string
		out  []string
		err  string
	}{
		{"the facts' order", []string{"virtio_pci", "virtio_net"},
			[]string{"virtio_pci_modern_dev", "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci", "failover", "net_failover", "virtio_net"}, ""},
		{"each module once", []string{"virtio_net", "virtio_net", "virtio"},
			[]string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net"}, ""},
		{"dash and underscore alike", []string{"virtio-net"},
			[]string{"failover", "net_failover", "virtio_ring", "virtio", "virtio_net"}, ""},
		{"built-in dependency skipped", []string{"virtio_rng"}, []string{"virtio_ring", "virtio", "virtio_rng"}, ""},
		{"built-in wanted module skipped", []string{"e1000"}, nil, ""},
		{"missing", []string{"virtio_gpu"}, nil, "virtio_gpu: not in the kernel package"},
		{"missing dependency", []string{"needs_ghost"}, nil, "ghost, needed by needs_ghost"},
		{"cycle", []string{"loop_a"}, nil, "loop_a -> loop_b -> loop_a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadOrder(tt.want, mods, builtin)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.out, Names(got), cmpEmpty); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool {
	return strings.Join(a, " ") == strings.Join(b, " ")
})

func TestScanModules(t *testing.T) {
	root := t.TempDir()
	for p, data := range testutil.FakeKernelTree() {
		file := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, data, 0o644)
	}
	kver, err := KernelVersion(root)
	if err != nil || kver != testutil.FakeKver {
		t.Fatalf("KernelVersion = %q, %v", kver, err)
	}
	modRoot := filepath.Join(root, "lib/modules", kver)
	mods, err := scanModules(modRoot)
	if err != nil {
		t.Fatal(err)
	}
	if m := mods["virtio_rng"]; m.Path != "kernel/drivers/char/hw_random/virtio-rng.ko" || !cmp.Equal(m.Depends, []string{"virtio", "virtio_ring"}) {
		t.Errorf("virtio_rng = %+v", m)
	}
	builtin, err := readBuiltin(filepath.Join(modRoot, "modules.builtin"))
	if err != nil || !builtin["fuse"] || !builtin["rng_core"] {
		t.Errorf("builtin = %v, %v", builtin, err)
	}
	os.WriteFile(filepath.Join(modRoot, "kernel/extra.ko.xz"), []byte("xz"), 0o644)
	if _, err := scanModules(modRoot); err == nil || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("a compressed module: %v", err)
	}
}
