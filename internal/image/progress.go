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
	p     *progress
	log   io.Writer
	now   func() time.Time
	label string // "system: " in a part of the build that runs beside others
}

// part returns the log of a part of the build that runs at the same time as
// others: its steps are shown as "LABEL: ..." and its log lines are prefixed
// with "[LABEL] ", each written whole, so parallel parts stay readable.
func (b *buildLog) part(label string) *buildLog {
	return &buildLog{p: b.p, log: &lineWriter{prefix: "[" + label + "] ", w: b.log}, now: b.now, label: b.label + label + ": "}
}

// step shows and logs a step of the build.
func (b *buildLog) step(format string, a ...any) {
	msg := b.label + fmt.Sprintf(format, a...)
	b.p.line(msg)
	fmt.Fprintf(b.log, "%s %s\n", b.now().UTC().Format(timeLayout), msg)
}

// show shows a line to the person watching without logging it (the log has
// it already, as a command's output).
func (b *buildLog) show(msg string) { b.p.line(b.label + msg) }

// bytes shows a byte count (not logged: the log gets the step lines).
func (b *buildLog) bytes(label string, done, total int64) { b.p.bytes(label, done, total) }

// run runs a command with its output in the log. Its error names the command
// and carries the last line the command printed, which is usually the reason.
func (b *buildLog) run(ctx context.Context, dir, name string, args ...string) error {
	return b.runWatch(ctx, dir, nil, name, args...)
}

// runWatch is run that also hands each line the command prints to watch
// (nil: none).
func (b *buildLog) runWatch(ctx context.Context, dir string, watch func(line string), name string, args ...string) error {
	fmt.Fprintf(b.log, "%s $ %s %s\n", b.now().UTC().Format(timeLayout), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = aptEnv()
	// A killed vmnet takes its dpkg-deb or apt-get along, so nothing keeps
	// writing into a build directory the next build removes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var tail tailBuffer
	writers := []io.Writer{b.log, &tail}
	var lines *lineWriter
	if watch != nil {
		lines = &lineWriter{fn: watch}
		writers = append(writers, lines)
	}
	out := io.MultiWriter(writers...)
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if lw, ok := b.log.(*lineWriter); ok {
		lw.flush()
	}
	if lines != nil {
		lines.flush()
	}
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

// output runs a command and returns what it printed on stdout, which is not
// logged (it may be long); its stderr goes to the log.
func (b *buildLog) output(ctx context.Context, name string, args ...string) (string, error) {
	fmt.Fprintf(b.log, "%s $ %s %s\n", b.now().UTC().Format(timeLayout), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = aptEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout bytes.Buffer
	var tail tailBuffer
	cmd.Stdout, cmd.Stderr = &stdout, io.MultiWriter(b.log, &tail)
	err := cmd.Run()
	if lw, ok := b.log.(*lineWriter); ok {
		lw.flush()
	}
	if err == nil {
		return stdout.String(), nil
	}
	if errors.Is(err, exec.ErrNotFound) || ctx.Err() != nil {
		return "", fmt.Errorf("%s: %w", name, errors.Join(err, ctx.Err()))
	}
	last := lastLine(tail.String())
	if last == "" {
		last = lastLine(stdout.String())
	}
	if last != "" {
		return stdout.String(), fmt.Errorf("%s: %w: %s", name, err, last)
	}
	return stdout.String(), fmt.Errorf("%s: %w", name, err)
}

// lineWriter cuts what is written to it into lines: each whole line goes to
// w with prefix in one Write (so lines of commands that run at once do not
// mix), or to fn without its newline.
type lineWriter struct {
	mu     sync.Mutex
	prefix string
	w      io.Writer
	fn     func(string)
	buf    []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// flush writes a last line that has no newline.
func (l *lineWriter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = nil
	}
}

func (l *lineWriter) emit(line []byte) {
	if l.fn != nil {
		l.fn(strings.TrimRight(string(line), "\r"))
		return
	}
	out := make([]byte, 0, len(l.prefix)+len(line)+1)
	out = append(append(append(out, l.prefix...), line...), '\n')
	l.w.Write(out)
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
