package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps failures instead of failing.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}
func (r *recorder) Fatalf(format string, a ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, a...))
}

// TestGolden: a match passes, a difference fails naming the file, a
// missing file fails with the way to make it, and update writes the file.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "x.golden")

	r := &recorder{TB: t}
	Golden(r, path, []byte("one\n"), false)
	if len(r.fatals) != 1 || !strings.Contains(r.fatals[0], "-update") {
		t.Errorf("missing golden file: fatals %q, want one that says -update", r.fatals)
	}

	r = &recorder{TB: t}
	Golden(r, path, []byte("one\n"), true)
	if data, err := os.ReadFile(path); err != nil || string(data) != "one\n" || len(r.errors)+len(r.fatals) > 0 {
		t.Errorf("update: file %q (%v), failures %q %q", data, err, r.errors, r.fatals)
	}

	r = &recorder{TB: t}
	Golden(r, path, []byte("one\n"), false)
	if len(r.errors)+len(r.fatals) > 0 {
		t.Errorf("same content: failures %q %q", r.errors, r.fatals)
	}

	r = &recorder{TB: t}
	Golden(r, path, []byte("two\n"), false)
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], path) || !strings.Contains(r.errors[0], `"two\n"`) {
		t.Errorf("other content: errors %q, want one naming %s with the difference", r.errors, path)
	}
}
