package vm

import (
	"context"
	"errors"
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
