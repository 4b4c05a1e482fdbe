package fsperm

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// withUmask runs the test under umask mask and restores the old one. The
// umask is the process's: tests that call it must not use t.Parallel.
func withUmask(t *testing.T, mask int) {
	t.Helper()
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestModesUnderRestrictiveUmask(t *testing.T) {
	withUmask(t, 0o077)
	root := t.TempDir()
	if err := os.Chmod(root, 0o750); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b", "c")
	if err := MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b"), deep} {
		if m := mode(t, d); m != 0o755 {
			t.Errorf("%s: mode %o, want 755 under umask 077", d, m)
		}
	}
	if m := mode(t, root); m != 0o750 {
		t.Errorf("an existing directory's mode changed: %o, want 750", m)
	}
	if err := MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, deep); m != 0o755 {
		t.Errorf("MkdirAll changed an existing directory to %o", m)
	}

	f := filepath.Join(deep, "kernel")
	if err := WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, f); m != 0o644 {
		t.Errorf("WriteFile: mode %o, want 644 under umask 077", m)
	}
	// Rewriting a file sets the mode asked for, also on one that was there.
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(f, []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, f); m != 0o644 {
		t.Errorf("WriteFile over a 0600 file: mode %o, want 644", m)
	}
	if b, _ := os.ReadFile(f); string(b) != "y" {
		t.Errorf("content %q, want y", b)
	}

	if err := MkdirAll(f, 0o755); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
}

func TestSecretModesUnderPermissiveUmask(t *testing.T) {
	withUmask(t, 0)
	dir := filepath.Join(t.TempDir(), "secrets")
	if err := Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := Create(filepath.Join(dir, "pw"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %o, want 700", m)
	}
	if m := mode(t, f.Name()); m != 0o600 {
		t.Errorf("file mode %o, want 600", m)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	withUmask(t, 0o077)
	dir := t.TempDir()
	f := filepath.Join(dir, "seed.iso")
	if err := WriteFileAtomic(f, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, f); m != 0o644 {
		t.Errorf("mode %o, want 644 under umask 077", m)
	}
	// The old file's mode is not carried over (renameio's WriteFile would).
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(f, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, f); m != 0o640 {
		t.Errorf("rewritten over a 0600 file: mode %o, want 640", m)
	}
	if b, _ := os.ReadFile(f); string(b) != "two" {
		t.Errorf("content %q, want two", b)
	}
	// A symlink at the name is replaced, its target left alone.
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(link, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("link is not a regular file now: %v %v", fi, err)
	}
	// A name in a missing directory fails and leaves nothing behind.
	if err := WriteFileAtomic(filepath.Join(dir, "no", "file"), nil, 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 3 {
		t.Errorf("directory holds %v, want only link, seed.iso and target: a temporary file was left", names)
	}
}
