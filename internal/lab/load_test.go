package lab

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

// TestLoadMissingFile: a lab file that is not there is bad input (exit 2)
// that says which file, keeps the cause, and hints at what to give.
func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.lab.yaml")
	_, err := Load(missing)
	var fe *errs.FileError
	if !errors.As(err, &fe) || !errors.Is(err, errs.ErrInvalid) || !errors.Is(err, fs.ErrNotExist) ||
		!strings.HasPrefix(err.Error(), "read lab file "+missing+": ") || !strings.Contains(fe.Hint(), "office.lab.yaml") {
		t.Errorf("Load(missing) = %v (%#v), want an errs.FileError on the path, wrapping ErrNotExist, with a hint", err, fe)
	}
}
