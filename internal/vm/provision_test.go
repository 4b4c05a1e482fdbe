package vm

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
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
