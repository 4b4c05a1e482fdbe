package tty

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// On a terminal every status replaces the last; Clear leaves a clean line.
func TestStatusTerminal(t *testing.T) {
	var b bytes.Buffer
	s := newStatus(&b, true, 10*time.Second, time.Now)
	s.Show("waiting (1s)")
	s.Show("waiting (2s)")
	s.Clear()
	s.Clear()
	if want := "\r\x1b[Kwaiting (1s)\r\x1b[Kwaiting (2s)\r\x1b[K"; b.String() != want {
		t.Errorf("terminal output %q, want %q", b.String(), want)
	}
}

// In a log: timestamped lines, at most one per interval, none before the first.
func TestStatusPlain(t *testing.T) {
	var b bytes.Buffer
	clock := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s := newStatus(&b, false, 10*time.Second, func() time.Time { return clock })
	for i := 1; i <= 25; i++ {
		clock = clock.Add(time.Second)
		s.Show("waiting")
	}
	s.Clear()
	want := "2026-12-01T10:00:10.000Z waiting\n2026-12-01T10:00:20.000Z waiting\n"
	if b.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", b.String(), want)
	}
	if strings.Contains(b.String(), "\r") {
		t.Error("plain output redraws")
	}
}

// A buffer is not a terminal.
func TestIsTerminal(t *testing.T) {
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer taken for a terminal")
	}
}
