package vmspec

import (
	"errors"
	"fmt"
	"strings"

	"vmnet/internal/bridge"
)

// FieldError is one bad value in a spec: where it is (a path such as
// nics[1].bridge, and the line when the spec came from YAML), what is wrong
// with it and how to fix it.
type FieldError struct {
	Field   string // path in the spec, e.g. "nics[1].bridge"
	Value   string // the value as written; "" when the field is missing
	Problem string // reads after the value: `contains ' ', which is not allowed ...`
	Fix     string
	Line    int // line in the YAML document; 0 when unknown
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Value != "" {
		fmt.Fprintf(&b, "%s: %q %s", e.Field, e.Value, e.Problem)
	} else {
		fmt.Fprintf(&b, "%s %s", e.Field, e.Problem)
	}
	return b.String()
}

// Hint tells the user how to fix the value.
func (e *FieldError) Hint() string { return e.Fix }

// Is makes errors.Is(err, bridge.ErrInvalid) true, so the CLI maps a bad
// spec to the usage exit code like any other bad input.
func (e *FieldError) Is(target error) bool { return target == bridge.ErrInvalid }

// Errors is every problem found in one spec, in document order.
type Errors []*FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Hint gives the fix for each problem, naming the field when there are several.
func (es Errors) Hint() string {
	if len(es) == 1 {
		return es[0].Fix
	}
	var parts []string
	for _, e := range es {
		if e.Fix != "" {
			parts = append(parts, e.Field+": "+e.Fix)
		}
	}
	return strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each *FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Is makes errors.Is(err, bridge.ErrInvalid) true.
func (es Errors) Is(target error) bool { return target == bridge.ErrInvalid }

// errorList collects field errors; its err is nil when there are none.
type errorList struct{ errs Errors }

func (l *errorList) add(field, value, problem, fix string) {
	l.errs = append(l.errs, &FieldError{Field: field, Value: value, Problem: problem, Fix: fix})
}

// addErr adds err at field: a bridge.FieldError (from the shared interface
// name and address checks) keeps its problem and fix under this field's path.
func (l *errorList) addErr(field string, err error) {
	if err == nil {
		return
	}
	var be *bridge.FieldError
	if errors.As(err, &be) {
		l.add(field, be.Value, be.Problem, be.Fix)
		return
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = field
		l.errs = append(l.errs, &c)
		return
	}
	l.add(field, "", err.Error(), "")
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs
}
