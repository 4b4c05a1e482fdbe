package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// timeLayout stamps each progress line when the output is not a terminal.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// plainEvery is how often a byte count is repeated in plain (CI) output.
const plainEvery = 10 * time.Second

// progress shows a build to a person: on a terminal, step lines plus one live
// line that counts bytes; elsewhere (CI logs, pipes), plain lines stamped with
// the time, and byte counts at most every plainEvery.
type progress struct {
	mu        sync.Mutex
	w         io.Writer
	tty       bool
	now       func() time.Time
	prefix    string // "image tiny: "
	live      bool   // a live line is on the terminal
	lastLabel string
	lastBytes time.Time
}

func newProgress(w io.Writer, name string, now func() time.Time) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, tty: isTerminal(w), now: now, prefix: "image " + name + ": "}
}

// isTerminal reports whether w is a terminal that can redraw a line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// line shows one step.
func (p *progress) line(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		if p.live {
			io.WriteString(p.w, "\r\x1b[K")
			p.live = false
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, msg)
		return
	}
	fmt.Fprintf(p.w, "%s %s%s\n", p.now().UTC().Format(timeLayout), p.prefix, msg)
}

// bytes shows how much of total is done.
func (p *progress) bytes(label string, done, total int64) {
	msg := fmt.Sprintf("%s %s / %s", label, mib(done), mib(total))
	if total > 0 {
		msg += fmt.Sprintf(" (%d%%)", min(100, done*100/total))
	}
	p.mu.Lock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s%s", p.prefix, msg)
		p.live = true
		p.mu.Unlock()
		return
	}
	now := p.now()
	due := label != p.lastLabel || now.Sub(p.lastBytes) >= plainEvery || (total > 0 && done >= total)
	if !due {
		p.mu.Unlock()
		return
	}
	if total > 0 && done >= total {
		p.lastLabel = "" // a finished count is shown once, the next label starts afresh
	} else {
		p.lastLabel = label
	}
	p.lastBytes = now
	p.mu.Unlock()
	p.line(msg)
}

// finish ends a live line, so what follows starts on a line of its own.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		io.WriteString(p.w, "\n")
		p.live = false
	}
}

// mib formats a byte count for people.
func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// buildLog records one build: steps go to the person watching (progress) and
// to build.log; the output of every command run goes to build.log only.
type buildLog struct {
	p   *progress
	log io.Writer
	now func() time.Time
}

// step shows and logs a step of the build.
func (b *buildLog) step(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	b.p.line(msg)
	fmt.Fprintf(b.log, "%s %s\n", b.now().UTC().Format(timeLayout), msg)
}

// bytes shows a byte count (not logged: the log gets the step lines).
func (b *buildLog) bytes(label string, done, total int64) { b.p.bytes(label, done, total) }

// run runs a command with its output in the log. Its error names the command
// and carries the last line the command printed, which is usually the reason.
func (b *buildLog) run(ctx context.Context, dir, name string, args ...string) error {
	fmt.Fprintf(b.log, "%s $ %s %s\n", b.now().UTC().Format(timeLayout), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = aptEnv()
	// A killed vmnet takes its dpkg-deb or apt-get along, so nothing keeps
	// writing into a build directory the next build removes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var tail tailBuffer
	out := io.MultiWriter(b.log, &tail)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
		return fmt.Errorf("%s: %w", name, errors.Join(err, ctx.Err()))
	}
	if last := lastLine(tail.String()); last != "" {
		return fmt.Errorf("%s: %w: %s", name, err, last)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > 8192 {
		keep := append([]byte(nil), t.buf.Bytes()[t.buf.Len()-4096:]...)
		t.buf.Reset()
		t.buf.Write(keep)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
