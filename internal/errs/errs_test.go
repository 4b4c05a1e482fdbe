package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestFieldErrorForms(t *testing.T) {
	for _, tt := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{Field: "--mtu", Value: "67", Problem: "is outside 68-65535"}, `--mtu "67": is outside 68-65535`},
		{FieldError{Field: "--mode", Problem: "is required"}, `--mode "": is required`},
		{FieldError{Field: "nics[1].bridge", Value: "br 0", Problem: "contains ' '", Line: 5, Form: PathForm}, `line 5: nics[1].bridge: "br 0" contains ' '`},
		{FieldError{Field: "name", Problem: "is missing", Form: PathForm}, `name is missing`},
		{FieldError{Field: "spec", Problem: "is not valid YAML", Line: 2, Form: PathForm}, `line 2: spec is not valid YAML`},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestFieldErrorIsInvalid(t *testing.T) {
	err := fmt.Errorf("create bridge: %w", &FieldError{Field: "--mtu", Value: "1", Problem: "is low", Fix: "raise it"})
	var h Hinted
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &h) || h.Hint() != "raise it" {
		t.Errorf("%v: not ErrInvalid, or its hint is lost", err)
	}
}

func TestWithHint(t *testing.T) {
	if WithHint(nil, "x") != nil {
		t.Errorf("WithHint(nil) is not nil")
	}
	inner := fmt.Errorf("open: %w", fs.ErrNotExist)
	err := fmt.Errorf("outer: %w", WithHint(inner, "create it"))
	var h Hinted
	if err.Error() != "outer: open: file does not exist" || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &h) || h.Hint() != "create it" {
		t.Errorf("WithHint: %v (hint %v): the message, the wrapped error or the hint is lost", err, h)
	}
}

func TestForeignError(t *testing.T) {
	e := &ForeignError{Kind: "bridge", Name: "other0", Fix: "choose another name"}
	if got, want := e.Error(), `bridge "other0" exists but was not created by vmnet; vmnet does not change or delete it`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &ForeignError{Kind: "libvirt network", Name: "n", Detail: "it has no vmnet owner metadata"}
	if got, want := e.Error(), `libvirt network "n" exists but was not created by vmnet (it has no vmnet owner metadata); vmnet does not change or delete it`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Is(e, ErrInvalid) {
		t.Errorf("a foreign object is not bad input (exit 1, not 2)")
	}
}

func TestFileError(t *testing.T) {
	err := fmt.Errorf("load: %w", &FileError{What: "spec", Path: "a.yaml", Err: fs.ErrNotExist, Fix: "give a spec file that exists"})
	var h Hinted
	if got, want := err.Error(), "load: read spec a.yaml: file does not exist"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &h) || h.Hint() != "give a spec file that exists" {
		t.Errorf("%v: not ErrInvalid, the cause is lost, or the hint is", err)
	}
}
