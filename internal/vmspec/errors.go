package vmspec

import (
	"errors"
	"strings"

	"vmnet/internal/errs"
)

// FieldError is one bad value in a spec: where it is (a path such as
// nics[1].bridge, and the line when the spec came from YAML), what is wrong
// with it and how to fix it. It is errs.FieldError in its PathForm.
type FieldError = errs.FieldError

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

// Is makes errors.Is(err, errs.ErrInvalid) true.
func (es Errors) Is(target error) bool { return target == errs.ErrInvalid }

// errorList collects field errors; its err is nil when there are none.
type errorList struct{ errs Errors }

func (l *errorList) add(field, value, problem, fix string) {
	l.errs = append(l.errs, &FieldError{Form: errs.PathForm, Field: field, Value: value, Problem: problem, Fix: fix})
}

// addErr adds err at field: a FieldError (from the shared checks in
// internal/valid, or this package's parsers) keeps its value, problem, fix
// and line under this field's path.
func (l *errorList) addErr(field string, err error) {
	if err == nil {
		return
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = field
		c.Form = errs.PathForm
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
