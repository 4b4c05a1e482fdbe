// Package tty tells a terminal from a log, and shows a status that keeps
// changing (a wait, a count) the way each wants it: redrawn in place for a
// person at a terminal, as plain timestamped lines, not too often, for a CI log.
package tty

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// TimeLayout stamps each progress line when the output is not a terminal.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// IsTerminal reports whether w is a terminal that can redraw lines.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	if !term.IsTerminal(int(f.Fd())) {
		return false
	}
	// A terminal of unknown size (a pty nobody sized) cannot be redrawn sensibly.
	cols, _, err := term.GetSize(int(f.Fd()))
	return err == nil && cols > 0
}

// Status is one line of status that changes while something runs.
type Status struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	every time.Duration // plain output: the least time between two lines
	now   func() time.Time
	last  time.Time // plain: when the last line was written (or the status made)
	drawn bool      // terminal: a status line is on screen
}

// NewStatus returns a status shown on w; when w is not a terminal, a line
// is written at most every every.
func NewStatus(w io.Writer, every time.Duration) *Status {
	return newStatus(w, IsTerminal(w), every, time.Now)
}

func newStatus(w io.Writer, tty bool, every time.Duration, now func() time.Time) *Status {
	return &Status{w: w, tty: tty, every: every, now: now, last: now()}
}

// Show makes msg the status: on a terminal it replaces the line on screen;
// elsewhere it is written as a timestamped line once every has passed since
// the last one (or since the status was made), and dropped otherwise.
func (s *Status) Show(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty {
		fmt.Fprintf(s.w, "\r\x1b[K%s", msg)
		s.drawn = true
		return
	}
	now := s.now()
	if now.Sub(s.last) < s.every {
		return
	}
	s.last = now
	fmt.Fprintf(s.w, "%s %s\n", now.UTC().Format(TimeLayout), msg)
}

// Clear takes the status line off a terminal, so what follows starts on a
// clean line; plain output keeps its lines.
func (s *Status) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.drawn {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.drawn = false
	}
}
