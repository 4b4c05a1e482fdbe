package image

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProgressPlainLinesAreTimestamped(t *testing.T) {
	clock := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var out bytes.Buffer
	p := newProgress(&out, "tiny", now)
	if p.tty {
		t.Fatal("a bytes.Buffer was taken for a terminal")
	}
	p.line("downloading linux-image-6.1.0-56-amd64=6.1.192-2 (67.3 MiB)")
	p.bytes("linux-image", 0, 70<<20)
	clock = clock.Add(2 * time.Second)
	p.bytes("linux-image", 10<<20, 70<<20) // too soon: left out
	clock = clock.Add(plainEvery)
	p.bytes("linux-image", 35<<20, 70<<20)
	clock = clock.Add(time.Second)
	p.bytes("linux-image", 70<<20, 70<<20) // done: always shown
	p.bytes("busybox", 512<<10, 1<<20)     // a new label: shown
	p.finish()
	want := "2026-11-24T10:00:00.000Z image tiny: downloading linux-image-6.1.0-56-amd64=6.1.192-2 (67.3 MiB)\n" +
		"2026-11-24T10:00:00.000Z image tiny: linux-image 0 KiB / 70.0 MiB (0%)\n" +
		"2026-11-24T10:00:12.000Z image tiny: linux-image 35.0 MiB / 70.0 MiB (50%)\n" +
		"2026-11-24T10:00:13.000Z image tiny: linux-image 70.0 MiB / 70.0 MiB (100%)\n" +
		"2026-11-24T10:00:13.000Z image tiny: busybox 512 KiB / 1.0 MiB (50%)\n"
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestProgressOnTerminal(t *testing.T) {
	ptmx, pts := openPTY(t)
	defer ptmx.Close()
	defer pts.Close()
	t.Setenv("TERM", "xterm")
	p := newProgress(pts, "tiny", time.Now)
	if !p.tty {
		t.Fatal("a pseudo-terminal was not taken for a terminal")
	}
	t.Setenv("TERM", "dumb")
	if newProgress(pts, "tiny", time.Now).tty {
		t.Error("TERM=dumb still redraws lines")
	}
	// What a terminal gets: a live line redrawn in place, cleared by the next step.
	var out bytes.Buffer
	p = &progress{w: &out, tty: true, now: time.Now, prefix: "image tiny: "}
	p.bytes("linux-image", 1<<20, 2<<20)
	p.bytes("linux-image", 2<<20, 2<<20)
	p.line("unpacking")
	want := "\r\x1b[Kimage tiny: linux-image 1.0 MiB / 2.0 MiB (50%)" +
		"\r\x1b[Kimage tiny: linux-image 2.0 MiB / 2.0 MiB (100%)" +
		"\r\x1b[Kimage tiny: unpacking\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}

// openPTY opens a pseudo-terminal pair, or skips.
func openPTY(t *testing.T) (ptmx, pts *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Skipf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Skipf("pty number: %v", err)
	}
	pts, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("open pty: %v", err)
	}
	return ptmx, pts
}

func TestBuildLogRun(t *testing.T) {
	var out, log bytes.Buffer
	b := &buildLog{p: newProgress(&out, "tiny", time.Now), log: &log, now: time.Now}
	err := b.run(context.Background(), "", "sh", "-c", "echo first; echo 'E: it broke' >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3: E: it broke") {
		t.Errorf("run = %v, want the exit status and the last line", err)
	}
	if !strings.Contains(log.String(), "$ sh -c") || !strings.Contains(log.String(), "first\n") {
		t.Errorf("log lacks the command or its output:\n%s", log.String())
	}
	if out.Len() != 0 {
		t.Errorf("a command's output reached the progress writer: %q", out.String())
	}
	if err := b.run(context.Background(), "", "vmnet-no-such-command"); err == nil {
		t.Error("a missing command ran")
	}
}

// Parts of a build that run at once write whole lines, each with its label,
// and their steps are shown with it; a command's stdout from output is
// returned, not logged.
func TestBuildLogParts(t *testing.T) {
	var shown bytes.Buffer
	log := &lockedBuffer{}
	b := &buildLog{p: newProgress(&shown, "x", newFakeClock().now), log: log, now: newFakeClock().now}
	var wg sync.WaitGroup
	for _, label := range []string{"system", "app"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pb := b.part(label)
			var seen []string
			err := pb.runWatch(context.Background(), "", func(l string) { seen = append(seen, l) },
				"sh", "-c", "for i in 1 2 3 4 5 6 7 8 9; do printf 'line %s-' $i; printf '%s\\n' "+label+"; done; printf tail")
			if err != nil || len(seen) != 10 || seen[9] != "tail" {
				t.Errorf("%s: %v, watched %q", label, err, seen)
			}
			pb.step("done")
		}()
	}
	wg.Wait()
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		sys, app := strings.HasPrefix(l, "[system] "), strings.HasPrefix(l, "[app] ")
		if !sys && !app {
			t.Errorf("log line without its part: %q", l)
		}
		if strings.HasPrefix(l, "[system] line") && !strings.HasSuffix(l, "-system") || strings.HasPrefix(l, "[app] line") && !strings.HasSuffix(l, "-app") {
			t.Errorf("mixed line: %q", l)
		}
	}
	if !strings.Contains(shown.String(), "image x: system: done") || !strings.Contains(shown.String(), "image x: app: done") {
		t.Errorf("shown:\n%s", shown.String())
	}
	out, err := b.output(context.Background(), "sh", "-c", "echo out; echo err >&2")
	if err != nil || out != "out\n" || strings.Contains(log.String(), "out\n") || !strings.Contains(log.String(), "err\n") {
		t.Errorf("output = %q, %v; log:\n%s", out, err, log.String())
	}
	if _, err := b.output(context.Background(), "sh", "-c", "echo why >&2; exit 3"); err == nil || !strings.Contains(err.Error(), "why") {
		t.Errorf("failed output: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
