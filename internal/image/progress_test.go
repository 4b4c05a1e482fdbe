package image

import (
	"bytes"
	"context"
	"errors"
	"io"
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
	ptmx, pts := openPTY(t, 100)
	defer ptmx.Close()
	defer pts.Close()
	t.Setenv("TERM", "xterm")
	if !newProgress(pts, "tiny", time.Now).tty {
		t.Fatal("a pseudo-terminal was not taken for a terminal")
	}
	t.Setenv("TERM", "dumb")
	if newProgress(pts, "tiny", time.Now).tty {
		t.Error("TERM=dumb still redraws lines")
	}
	unsized, pts0 := openPTY(t, 0)
	defer unsized.Close()
	defer pts0.Close()
	t.Setenv("TERM", "xterm")
	if newProgress(pts0, "tiny", time.Now).tty {
		t.Error("a terminal of no width was given bars")
	}

	// What a terminal gets: the step, then a live bar redrawn in place, which
	// ends as one line above the next step; nothing wider than the terminal.
	got := make(chan string)
	go func() {
		var all bytes.Buffer
		io.Copy(&all, ptmx) // until pts is closed
		got <- all.String()
	}()
	p := newProgress(pts, "tiny", time.Now)
	p.line("downloading linux-image")
	p.bytes("linux-image", 1<<20, 2<<20)
	time.Sleep(500 * time.Millisecond) // a redraw or two
	p.line("above the bar")
	p.bytes("linux-image", 2<<20, 2<<20)
	p.bytes("linux-image", 2<<20, 2<<20) // a late tick: no second bar
	p.line("unpacking")
	p.bytes("busybox", 1<<10, 4<<10) // a failed download: left as it was
	p.finish()
	p.line("done")
	pts.Close()
	raw := <-got
	screen := lastFrame(raw)
	want := []string{
		"image tiny: downloading linux-image",
		"image tiny: above the bar",
		"image tiny: linux-image [====",
		"image tiny: unpacking",
		"image tiny: busybox [=========",
		"image tiny: done",
	}
	if len(screen) != len(want) {
		t.Fatalf("screen has %d lines, want %d:\n%s\nraw: %q", len(screen), len(want), strings.Join(screen, "\n"), raw)
	}
	for i, l := range screen {
		if !strings.HasPrefix(l, want[i]) {
			t.Errorf("line %d = %q, want it to start with %q", i, l, want[i])
		}
		if n := len([]rune(l)); n > 100 {
			t.Errorf("line %d is %d columns wide on a 100-column terminal: %q", i, n, l)
		}
	}
	if !strings.Contains(screen[2], "2.0 MiB / 2.0 MiB 100 %") || !strings.HasSuffix(screen[2], "s") {
		t.Errorf("finished bar = %q, want its counts, 100 %% and the time it took", screen[2])
	}
	if !strings.Contains(screen[4], "1.0 KiB / 4.0 KiB  25 %") {
		t.Errorf("unfinished bar = %q, want it left at 25 %%", screen[4])
	}
	if !strings.Contains(raw, "\x1b[1A") {
		t.Errorf("the bar was never redrawn in place: %q", raw)
	}
}

// lastFrame plays what a terminal got, as far as vmnet's output needs:
// "\x1b[NA\x1b[J" (up N lines, clear below) and lines ended by "\r\n".
func lastFrame(raw string) []string {
	var lines []string
	var cur strings.Builder
	for len(raw) > 0 {
		switch {
		case strings.HasPrefix(raw, "\x1b["):
			end := strings.IndexAny(raw, "ABCDJKm")
			if raw[end] == 'A' {
				n, _ := strconv.Atoi(raw[2:end])
				lines = lines[:max(0, len(lines)-n)]
			}
			raw = raw[end+1:]
		case raw[0] == '\n':
			lines = append(lines, strings.TrimRight(cur.String(), "\r"))
			cur.Reset()
			raw = raw[1:]
		default:
			cur.WriteByte(raw[0])
			raw = raw[1:]
		}
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// A count is shown complete only once its work has returned, and not at all
// when the work fails.
func TestBuildLogCount(t *testing.T) {
	var out bytes.Buffer
	b := &buildLog{p: newProgress(&out, "tiny", time.Now), log: io.Discard, now: time.Now}
	full := func() int64 { return 4 << 20 } // the file is all there before the command ends
	err := b.count("linux-image", 4<<20, full, func() error { time.Sleep(3 * countEvery); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "(100%)"); n != 1 || !strings.HasSuffix(out.String(), "linux-image 4.0 MiB / 4.0 MiB (100%)\n") {
		t.Errorf("a finished count shown %d times, want once at the end:\n%s", n, out.String())
	}
	out.Reset()
	failed := errors.New("apt-get: exit status 100")
	if err := b.count("busybox", 4<<20, full, func() error { time.Sleep(3 * countEvery); return failed }); err != failed {
		t.Errorf("count = %v, want the work's error", err)
	}
	if strings.Contains(out.String(), "100%") {
		t.Errorf("a failed count was shown complete:\n%s", out.String())
	}
}

// openPTY opens a pseudo-terminal pair cols columns wide, or skips.
func openPTY(t *testing.T, cols uint16) (ptmx, pts *os.File) {
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
	if err := unix.IoctlSetWinsize(int(ptmx.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 30, Col: cols}); err != nil {
		ptmx.Close()
		t.Skipf("size pty: %v", err)
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
