package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"vmnet/internal/debian"
	"vmnet/internal/safe"
	"vmnet/internal/tty"
)

// timeLayout stamps each progress line when the output is not a terminal.
const timeLayout = tty.TimeLayout

// plainEvery is how often a byte count is repeated in plain (CI) output.
const plainEvery = 10 * time.Second

// barWidth is the most columns a bar's [===>---] takes; on a narrower
// terminal the bar shrinks so its line still fits.
const barWidth = 40

// progress shows a build to a person. On a terminal: the step lines, and
// below them one live bar per byte count in progress (mpb), with its counts,
// percentage and elapsed time; a finished bar stays above the next lines as
// a record. Elsewhere (CI logs, pipes): plain lines stamped with the time,
// and byte counts at most every plainEvery.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	now    func() time.Time
	prefix string // "image tiny: "

	// terminal: the bars' container while any bar is on screen, the bars
	// not finished yet, and the labels whose bar has finished in it (a late
	// count, e.g. a watcher's last tick, must not start a second bar)
	bars  *mpb.Progress
	live  map[string]*mpb.Bar
	ended map[string]bool

	// plain: when which count was last shown
	lastLabel string
	lastBytes time.Time
}

func newProgress(w io.Writer, name string, now func() time.Time) *progress {
	if w == nil {
		w = io.Discard
	}
	return &progress{w: w, tty: isTerminal(w), now: now, prefix: "image " + name + ": "}
}

// isTerminal reports whether w is a terminal that can redraw lines.
func isTerminal(w io.Writer) bool { return tty.IsTerminal(w) }

// line shows one step.
func (p *progress) line(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s %s%s\n", p.now().UTC().Format(timeLayout), p.prefix, msg)
		return
	}
	if len(p.live) > 0 {
		// Above the bars, at their next redraw.
		fmt.Fprintf(p.bars, "%s%s\n", p.prefix, msg)
		return
	}
	p.closeBars()
	fmt.Fprintf(p.w, "%s%s\n", p.prefix, msg)
}

// bytes shows how much of total is done. On a terminal the count's bar
// starts at its first call and ends once done reaches total (or at finish).
func (p *progress) bytes(label string, done, total int64) {
	p.mu.Lock()
	if p.tty {
		defer p.mu.Unlock()
		p.bar(label, done, total)
		return
	}
	msg := fmt.Sprintf("%s %s / %s", label, mib(done), mib(total))
	if total > 0 {
		msg += fmt.Sprintf(" (%d%%)", min(100, done*100/total))
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

// bar moves label's bar to done of total, making it first if need be. p.mu is held.
func (p *progress) bar(label string, done, total int64) {
	total = max(total, 1) // mpb takes a total <= 0 as "never complete"
	b := p.live[label]
	if b == nil && p.ended[label] {
		return
	}
	if b == nil {
		if p.bars == nil {
			// PopCompletedMode: a finished bar leaves the live area and is
			// printed once above it, in order with the step lines.
			p.bars = mpb.New(mpb.WithOutput(p.w), mpb.PopCompletedMode(), mpb.WithRefreshRate(200*time.Millisecond))
			p.live, p.ended = map[string]*mpb.Bar{}, map[string]bool{}
		}
		b = p.bars.New(total, mpb.BarStyle().Lbound("[").Rbound("]"), mpb.BarWidth(barWidth),
			mpb.PrependDecorators(decor.Name(p.prefix+label)),
			mpb.AppendDecorators(
				decor.CountersKibiByte("% .1f / % .1f "),
				decor.Percentage(decor.WC{W: 5}),
				decor.Elapsed(decor.ET_STYLE_GO, decor.WC{W: 5})))
		p.live[label] = b
	}
	b.SetCurrent(min(done, total))
	if done >= total {
		delete(p.live, label) // mpb completes it and pops it above the live area
		p.ended[label] = true
	}
}

// closeBars waits for the bars' last redraw and drops their container; a
// bar not finished is left on screen as it was. p.mu is held.
func (p *progress) closeBars() {
	if p.bars == nil {
		return
	}
	for _, b := range p.live {
		b.Abort(false)
	}
	p.bars.Wait()
	p.bars, p.live, p.ended = nil, nil, nil
}

// finish ends the bars on screen (a count that did not reach its total stays
// as it was, e.g. a failed download), so what follows starts below them.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closeBars()
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

// countEvery is how often count looks at the bytes done.
const countEvery = 500 * time.Millisecond

// count runs work and, while it runs, shows the bytes size reports against
// total. Until work returns the count stays below total, so a count is only
// shown complete when its step is; it is, when work succeeds. A count work
// leaves unfinished (it failed) stays as it was, until finish.
func (b *buildLog) count(label string, total int64, size func() int64, work func() error) error {
	stop := make(chan struct{})
	done := make(chan struct{})
	safe.Go(nil, "progress of "+label, func() error {
		defer close(done)
		t := time.NewTicker(countEvery)
		defer t.Stop()
		b.bytes(label, 0, total)
		for {
			select {
			case <-stop:
				return nil
			case <-t.C:
				b.bytes(label, max(0, min(size(), total-1)), total)
			}
		}
	}, nil)
	err := work()
	close(stop)
	<-done
	if err == nil {
		b.bytes(label, total, total)
	}
	return err
}

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
	cmd.Env = debian.Env()
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
	cmd.Env = debian.Env()
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

// lastLine returns the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// The build's log as internal/debian sees it.
var _ debian.Log = (*buildLog)(nil)

// Step is step, for internal/debian.
func (b *buildLog) Step(format string, a ...any) { b.step(format, a...) }

// Count is count, for internal/debian.
func (b *buildLog) Count(label string, total int64, size func() int64, work func() error) error {
	return b.count(label, total, size, work)
}

// Run is run, for internal/debian.
func (b *buildLog) Run(ctx context.Context, dir, name string, args ...string) error {
	return b.run(ctx, dir, name, args...)
}
