// Package safe runs code so that a bug in it (a panic) ends as an error a
// user can report, not as a Go stack on their terminal: main recovers panics
// on its own goroutine only, and a panic in any other goroutine kills the
// process. Every goroutine vmnet starts goes through Go.
package safe

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
)

// PanicError is a recovered panic: where it happened and its value. The
// stack is logged at debug level (--verbose), never printed otherwise.
type PanicError struct {
	What  string // the work that panicked, e.g. "check host-ping-eth0"
	Value any    // what panic was called with
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("internal error in %s: %v; run again with --verbose and report it", e.What, e.Value)
}

// Unwrap returns the panic value when it is an error (a runtime error such
// as a nil dereference), so errors.As can see it.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Recovered turns r, a value recover returned in a deferred call, into a
// *PanicError and logs the stack at debug level; it returns nil when r is
// nil (no panic).
func Recovered(what string, r any) error {
	if r == nil {
		return nil
	}
	e := &PanicError{What: what, Value: r, Stack: debug.Stack()}
	slog.Debug("recovered a panic", "in", what, "panic", fmt.Sprint(r), "stack", string(e.Stack))
	return e
}

// Call runs fn and returns its error, or a *PanicError when fn panics.
func Call(what string, fn func() error) (err error) {
	defer func() {
		if perr := Recovered(what, recover()); perr != nil {
			err = perr
		}
	}()
	return fn()
}

// Go starts fn in a new goroutine, as `go fn()` does, with wg.Add(1)
// before it and wg.Done() after (wg may be nil). What ends fn — its error,
// or a *PanicError when it panics — is passed to done, in the goroutine,
// before wg.Done(). With done nil (a helper goroutine whose error nobody
// waits for), a panic is logged at error level as one line, and fn's own
// error at debug level.
func Go(wg *sync.WaitGroup, what string, fn func() error, done func(error)) {
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		if wg != nil {
			defer wg.Done()
		}
		err := Call(what, fn)
		var pe *PanicError
		switch {
		case done != nil:
			done(err)
		case errors.As(err, &pe):
			slog.Error(err.Error())
		case err != nil:
			slog.Debug(what, "err", err)
		}
	}()
}
