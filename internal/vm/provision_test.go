package vm

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"vmnet/internal/cloudinit"
	"vmnet/internal/domain"
)

func TestSecretIsPrivateStableAndPerVM(t *testing.T) {
	old := syscall.Umask(0) // the modes must not depend on the caller's umask
	defer syscall.Umask(old)
	a, b := t.TempDir(), t.TempDir()
	s1, err := secret(a, "db-password")
	if err != nil {
		t.Fatal(err)
	}
	if len(s1) < 30 {
		t.Fatalf("secret %d bytes long", len(s1))
	}
	again, err := secret(a, "db-password")
	if err != nil || string(again) != string(s1) {
		t.Fatalf("second read gave another secret (%v)", err)
	}
	other, err := secret(b, "db-password")
	if err != nil || string(other) == string(s1) {
		t.Fatalf("two VMs share a secret (%v)", err)
	}
	for p, want := range map[string]os.FileMode{secretPath(a, "db-password"): 0o600, filepath.Join(a, "secrets"): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
}

// A stock cloud image gets a NoCloud seed with the capstone app and the
// VM's NICs, and no secret in it.
func TestWriteSeed(t *testing.T) {
	dir := t.TempDir()
	plan := domain.Plan{Name: "web", Seed: filepath.Join(dir, "seed.iso"), NICs: []domain.NICPlan{
		{Network: "nat0", MAC: domain.MAC("web", 0)},
		{Bridge: "br0", MAC: domain.MAC("web", 1), Address: netip.MustParsePrefix("192.0.2.10/24")},
	}}
	if err := writeSeed(plan); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(plan.Seed)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	iso, err := cloudinit.ReadISO(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if iso.Label != "cidata" {
		t.Errorf("label %q", iso.Label)
	}
	all := ""
	for _, file := range iso.Files {
		all += file.Name + "\n" + string(file.Content) + "\n"
	}
	for _, want := range []string{"user-data", "meta-data", "network-config", "192.0.2.10/24", domain.MAC("web", 1).String(), "vmnet-app.target"} {
		if !strings.Contains(all, want) {
			t.Errorf("the seed lacks %q", want)
		}
	}
	// The password exists only after provisioning; the seed must not even
	// name a secret's value: it holds no line that sets one.
	if strings.Contains(all, "secrets/db-password\n    content:") {
		t.Error("the seed writes the secret file")
	}
}
