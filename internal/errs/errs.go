// Package errs is vmnet's one error vocabulary: the invalid-input sentinel
// that the CLI maps to exit code 2, the field error for a bad value, the hint
// wrapper that carries advice for the user, the error for a file the user
// named that cannot be read, and the error for an object on the host that
// vmnet did not make. Every package uses these, so the CLI
// needs one errors.Is and one errors.As to print and classify any failure.
//
// It imports nothing of vmnet, so any package may import it.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every error about what the user typed
// or wrote: flags, arguments, names, addresses, spec files. Such an error is
// returned before anything on the host changed; the CLI exits with code 2.
var ErrInvalid = errors.New("invalid input")

// Form is how a FieldError lays out its parts.
type Form int

const (
	// FlagForm is for a flag or argument: `--mtu "67": is outside 68-65535`.
	FlagForm Form = iota
	// PathForm is for a field of a spec, named by its path:
	// `line 5: nics[1].bridge: "br 0" contains ' ', ...`, or
	// `name is missing` when there is no value.
	PathForm
)

// FieldError is bad user input: which field, which value, what is wrong and
// how to fix it. It is returned before anything on the host changes.
type FieldError struct {
	Field   string // the flag or argument ("--address"), or a path in a spec ("nics[1].bridge")
	Value   string // the value as written; "" when it is missing
	Problem string // reads after the value: "is outside 68-65535"
	Fix     string // the hint
	Line    int    // line in the YAML source; 0 when unknown or not from YAML
	Form    Form
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	switch {
	case e.Form == FlagForm:
		fmt.Fprintf(&b, "%s %q: %s", e.Field, e.Value, e.Problem)
	case e.Value != "":
		fmt.Fprintf(&b, "%s: %q %s", e.Field, e.Value, e.Problem)
	default:
		fmt.Fprintf(&b, "%s %s", e.Field, e.Problem)
	}
	return b.String()
}

// Hint tells the user how to fix the input.
func (e *FieldError) Hint() string { return e.Fix }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Hinted is implemented by errors that carry advice for the user; the CLI
// prints Hint() on a line after the error.
type Hinted interface {
	error
	Hint() string
}

// WithHint returns err with advice for the user. The result's Error() is
// err's, errors.Is and errors.As see through it to err, and Hint() returns
// hint. WithHint(nil, ...) is nil.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
func (e *hintError) Hint() string  { return e.hint }

// ForeignError is an object on the host (a bridge, a libvirt network, a
// domain) under the name vmnet wants, that vmnet did not make. vmnet never
// changes or deletes such an object.
type ForeignError struct {
	Kind   string // what it is, as the user knows it: "bridge", "libvirt network", "domain"
	Name   string
	Detail string // how vmnet tells, e.g. "it has no vmnet owner metadata"; "" for none
	Fix    string // the hint: how to proceed
}

func (e *ForeignError) Error() string {
	s := fmt.Sprintf("%s %q exists but was not created by vmnet", e.Kind, e.Name)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s + "; vmnet does not change or delete it"
}

// Hint tells the user how to proceed.
func (e *ForeignError) Hint() string { return e.Fix }

// FileError is a file the user named (a spec, a lab file) that could not be
// read: missing, not a file, or too large. Naming it is bad input, so it
// matches ErrInvalid (exit 2).
type FileError struct {
	What string // what the file should have been, as the message says it: "spec", "lab file"
	Path string
	Err  error
	Fix  string // the hint: what the argument may be
}

func (e *FileError) Error() string { return fmt.Sprintf("read %s %s: %v", e.What, e.Path, e.Err) }

// Unwrap returns the cause, so errors.Is(err, fs.ErrNotExist) sees it.
func (e *FileError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *FileError) Is(target error) bool { return target == ErrInvalid }

// Hint says what the argument may be.
func (e *FileError) Hint() string { return e.Fix }
