package debian

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPruneArchives(t *testing.T) {
	dir := t.TempDir()
	files := []string{"systemd_252.39-1~deb12u2_amd64.deb", "systemd_252.38-1~deb12u1_amd64.deb",
		"tzdata_2025b-0+deb12u1_all.deb", "qemu-guest-agent_1%3a7.2+dfsg-7+deb12u18+b3_amd64.deb",
		"gone_1.0_amd64.deb", "partial", "lock"}
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	status, err := ReadStatus(writeTemp(t, "Package: systemd\nStatus: install ok installed\nArchitecture: amd64\nVersion: 252.39-1~deb12u2\n\n"+
		"Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2025b-0+deb12u1\n\n"+
		"Package: qemu-guest-agent\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:7.2+dfsg-7+deb12u18+b3\n\n"+
		"Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	PruneArchives(dir, status)
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"lock", "partial", "qemu-guest-agent_1%3a7.2+dfsg-7+deb12u18+b3_amd64.deb", "systemd_252.39-1~deb12u2_amd64.deb", "tzdata_2025b-0+deb12u1_all.deb"}
	if !cmp.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
