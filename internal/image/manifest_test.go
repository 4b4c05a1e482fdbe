package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func testManifest(t *testing.T) (string, manifest) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "initrd.img"), []byte("initrd!"), 0o644)
	return dir, manifest{
		Format: manifestFormat, Name: "tiny", Hash: strings.Repeat("ab", 32),
		Kernel: "vmlinuz", Initrd: "initrd.img", Cmdline: "console=ttyS0", ReadyLine: "VMNET-READY",
		Built:        time.Date(2026, 11, 24, 10, 0, 0, 123, time.UTC),
		BuildSeconds: 12.5, Packages: []string{"busybox-static=1:1.35.0-4"}, Debs: []string{"busybox-static_1.35.0-4_amd64.deb"},
		Modules: []string{"virtio_ring"}, Files: map[string]int64{"vmlinuz": 6, "initrd.img": 7},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir, m := testManifest(t)
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	got, err := readManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := got.check(dir, "tiny", m.Hash); err != nil {
		t.Errorf("check: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, manifestName+".tmp")); !os.IsNotExist(err) {
		t.Error("the temporary manifest was left behind")
	}
	img := got.image(dir)
	if img.Kernel != filepath.Join(dir, "vmlinuz") || img.Initrd != filepath.Join(dir, "initrd.img") || img.Disk != "" ||
		img.Size != int64(6+7)+fileSize(t, filepath.Join(dir, manifestName)) || !img.Built.Equal(m.Built) {
		t.Errorf("image = %+v", img)
	}
}

func fileSize(t *testing.T, file string) int64 {
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestManifestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(dir string, m *manifest)
		hash   string
		want   string
	}{
		{"other hash", func(string, *manifest) {}, strings.Repeat("cd", 32), "hash"},
		{"any hash", func(string, *manifest) {}, "", ""},
		{"other image", func(_ string, m *manifest) { m.Name = "capstone" }, "", "built for image"},
		{"old format", func(_ string, m *manifest) { m.Format = 0 }, "", "format"},
		{"kernel gone", func(dir string, _ *manifest) { os.Remove(filepath.Join(dir, "vmlinuz")) }, "", "vmlinuz"},
		{"initrd cut short", func(dir string, _ *manifest) { os.WriteFile(filepath.Join(dir, "initrd.img"), []byte("i"), 0o644) }, "", "has 1 bytes"},
		{"kernel not listed", func(_ string, m *manifest) { delete(m.Files, "vmlinuz") }, "", "not among"},
		{"no initrd named", func(_ string, m *manifest) { m.Initrd = "" }, "", "no kernel or initrd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, m := testManifest(t)
			tt.change(dir, &m)
			err := m.check(dir, "tiny", tt.hash)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("check = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check = %v, want %q", err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, manifestName), []byte("{half"), 0o644)
	if _, err := readManifest(dir); err == nil {
		t.Error("a broken manifest was read")
	}
}
