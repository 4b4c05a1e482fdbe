package vm

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestFramedCommandThroughShell runs the framed line in a real sh and reads
// the result back as consoleExec does, with the tty's echo of the typed line
// and its carriage returns in front, which must not be taken for the markers.
func TestFramedCommandThroughShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the framed command:", err)
	}
	const tag = "0123456789ab"
	begin := "VMNET-BEGIN-" + tag
	end := regexp.MustCompile(`VMNET-END-` + tag + `-(\d+)`)
	for _, tc := range []struct {
		name string
		argv []string
		out  string
		code int
	}{
		{"output and status", []string{"sh", "-c", "echo one; echo 'two words'; exit 3"}, "one\ntwo words\n", 3},
		{"no trailing newline", []string{"printf", "%s", "it's"}, "it's\n", 0},
		{"no output", []string{"true"}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := framedCommand(tag, tc.argv)
			got, err := exec.Command(sh, "-c", line).Output()
			if err != nil {
				t.Fatalf("sh -c %q: %v", line, err)
			}
			echo := strings.ReplaceAll("# "+line, "\n", "\r\n")
			console := []byte(echo + strings.ReplaceAll(string(got), "\n", "\r\n"))
			if _, _, ok := framedResult(console[:len(console)-8], begin, end); ok {
				t.Fatalf("framedResult found a result before the END marker arrived in %q", console[:len(console)-8])
			}
			out, code, ok := framedResult(console, begin, end)
			if !ok || string(out) != tc.out || code != tc.code {
				t.Fatalf("framedResult(%q) = %q, %d, %v; want %q, %d, true", console, out, code, ok, tc.out, tc.code)
			}
		})
	}
}

// stuckStream is a console whose Recv, after the command's framed output,
// blocks and ignores Abort, as libvirt's once did with two consoles on one
// connection. Free must not come while a Recv is blocked.
type stuckStream struct {
	mu      sync.Mutex
	typed   string
	sent    bool
	release chan struct{} // closed by the test's cleanup: the blocked Recv returns
	inRecv  bool
	freed   bool
	badFree bool
}

func (s *stuckStream) Send(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.typed += string(p)
	return len(p), nil
}

func (s *stuckStream) Recv(p []byte) (int, error) {
	s.mu.Lock()
	if !s.sent {
		s.sent = true
		tag := regexp.MustCompile(`VMNET-BEGIN- ([0-9a-f]+)`).FindStringSubmatch(s.typed)
		s.mu.Unlock()
		if tag == nil {
			return 0, errors.New("no framed command was typed")
		}
		return copy(p, "\r\nVMNET-BEGIN-"+tag[1]+"\r\nhello\r\n\r\nVMNET-END-"+tag[1]+"-0\r\n# "), nil
	}
	s.inRecv = true
	s.mu.Unlock()
	<-s.release
	s.mu.Lock()
	s.inRecv = false
	s.mu.Unlock()
	return 0, errors.New("stream closed")
}

func (s *stuckStream) Abort() error { return nil }

func (s *stuckStream) Free() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freed = true
	s.badFree = s.badFree || s.inRecv
	return nil
}

type stuckConsoleDomain struct {
	fakeDomain
	s *stuckStream
}

func (d stuckConsoleDomain) OpenConsole() (ConsoleStream, error) { return d.s, nil }

// TestConsoleExecReturnsWhenAbortDoesNotEndRecv: consoleExec returns the
// command's result even when the console's Recv ignores the Abort, and
// frees the stream only once the Recv has returned.
func TestConsoleExecReturnsWhenAbortDoesNotEndRecv(t *testing.T) {
	s := &stuckStream{release: make(chan struct{})}
	done := make(chan struct{})
	var out []byte
	var code int
	var err error
	go func() {
		defer close(done)
		out, code, err = consoleExec(context.Background(), stuckConsoleDomain{s: s}, []string{"echo", "hello"}, time.Minute)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(s.release)
		t.Fatal("consoleExec did not return: it waits for a Recv that Abort did not end")
	}
	if err != nil || code != 0 || string(out) != "hello\n" {
		t.Errorf("consoleExec = %q, %d, %v; want \"hello\\n\", 0, nil", out, code, err)
	}
	s.mu.Lock()
	freedEarly := s.freed
	s.mu.Unlock()
	if freedEarly {
		t.Error("the stream was freed while its Recv was still blocked")
	}
	close(s.release) // the session ends (the next OpenConsole's FORCE, in libvirt)
	for i := 0; i < 100; i++ {
		s.mu.Lock()
		freed, bad := s.freed, s.badFree
		s.mu.Unlock()
		if bad {
			t.Fatal("Free came during a blocked Recv")
		}
		if freed {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the stream was never freed after its Recv returned")
}

func (d stuckConsoleDomain) Name() (string, error) { return "stuck", nil }

// slowStream answers one framed command; after that its Recv returns only
// once Abort has run, and Abort takes delay (libvirtd busy on a loaded
// host). Its opens and frees go to the console's log.
type slowStream struct {
	c       *slowConsole
	n       int
	typed   chan string
	aborted chan struct{}
	sent    bool
}

func (s *slowStream) Send(p []byte) (int, error) { s.typed <- string(p); return len(p), nil }

func (s *slowStream) Recv(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		tag := regexp.MustCompile(`VMNET-BEGIN- ([0-9a-f]+)`).FindStringSubmatch(<-s.typed)
		if tag == nil {
			return 0, errors.New("no framed command was typed")
		}
		return copy(p, "\r\nVMNET-BEGIN-"+tag[1]+"\r\nok\r\n\r\nVMNET-END-"+tag[1]+"-0\r\n# "), nil
	}
	<-s.aborted
	return 0, errors.New("stream aborted")
}

func (s *slowStream) Abort() error {
	time.Sleep(s.c.delay)
	close(s.aborted)
	return nil
}

func (s *slowStream) Free() error { s.c.log(fmt.Sprintf("free %d", s.n)); return nil }

// slowConsole is a domain whose console sessions are slowStreams.
type slowConsole struct {
	fakeDomain
	name  string
	delay time.Duration
	mu    sync.Mutex
	opens int
	seen  []string
}

func (c *slowConsole) log(e string) { c.mu.Lock(); c.seen = append(c.seen, e); c.mu.Unlock() }

func (c *slowConsole) Name() (string, error) { return c.name, nil }

func (c *slowConsole) OpenConsole() (ConsoleStream, error) {
	c.mu.Lock()
	c.opens++
	n := c.opens
	c.mu.Unlock()
	c.log(fmt.Sprintf("open %d", n))
	return &slowStream{c: c, n: n, typed: make(chan string, 1), aborted: make(chan struct{})}, nil
}

// TestConsoleSessionsDoNotOverlap: a console session whose release takes
// longer than consoleExec waits for it is released before the next
// session on the same console opens; one that is never released holds the
// next back for consoleReopen only.
func TestConsoleSessionsDoNotOverlap(t *testing.T) {
	release, reopen := consoleRelease, consoleReopen
	consoleRelease, consoleReopen = 20*time.Millisecond, 2*time.Second
	t.Cleanup(func() { consoleRelease, consoleReopen = release, reopen })

	c := &slowConsole{name: "slow", delay: 300 * time.Millisecond}
	for range 2 {
		if out, code, err := consoleExec(context.Background(), c, []string{"true"}, 10*time.Second); err != nil || code != 0 || string(out) != "ok\n" {
			t.Fatalf("consoleExec = %q, %d, %v", out, code, err)
		}
	}
	c.mu.Lock()
	seen := strings.Join(c.seen, ", ")
	c.mu.Unlock()
	if !strings.HasPrefix(seen, "open 1, free 1, open 2") {
		t.Errorf("console sessions: %s; want the first freed before the second opens", seen)
	}

	consoleReopen = 200 * time.Millisecond
	s := &stuckStream{release: make(chan struct{})}
	t.Cleanup(func() { close(s.release) })
	d := &openTimes{stuckConsoleDomain: stuckConsoleDomain{s: s}}
	if _, _, err := consoleExec(context.Background(), d, []string{"true"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	returned := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		consoleExec(context.Background(), d, []string{"true"}, 100*time.Millisecond)
	}()
	select {
	case <-done: // the stuck stream answers no second command: its error is fine
	case <-time.After(5 * time.Second):
		t.Fatal("the next session waited for good for one never released")
	}
	if len(d.opened) != 2 {
		t.Fatalf("%d sessions opened, want 2", len(d.opened))
	}
	if waited := d.opened[1].Sub(returned); waited < consoleReopen-consoleRelease {
		t.Errorf("the next session opened %s after the first returned, before consoleReopen (%s)", waited, consoleReopen)
	}
}

// openTimes is a stuck console that notes when each session opened.
type openTimes struct {
	stuckConsoleDomain
	opened []time.Time
}

func (d *openTimes) OpenConsole() (ConsoleStream, error) {
	d.opened = append(d.opened, time.Now())
	return d.stuckConsoleDomain.OpenConsole()
}
