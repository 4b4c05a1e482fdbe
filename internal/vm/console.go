package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"vmnet/internal/safe"
	"vmnet/internal/virt"
)

// consoleExec runs argv through a shell on the guest's serial console, for
// images without a guest agent (tiny has a root shell on ttyS0). The command
// is framed by random markers so its output and exit status can be told
// apart from the echo of what was typed and from kernel messages.
func consoleExec(ctx context.Context, dom Domain, argv []string, timeout time.Duration) ([]byte, int, error) {
	name, err := dom.Name()
	if err != nil {
		return nil, 0, fmt.Errorf("the domain's name: %s", virt.Message(err))
	}
	waitReleased(name)
	stream, err := dom.OpenConsole()
	if err != nil {
		return nil, 0, fmt.Errorf("open the serial console: %s", virt.Message(err))
	}

	b := make([]byte, 6)
	rand.Read(b)
	tag := hex.EncodeToString(b)
	// A fresh line first, in case something is half typed at the prompt.
	if _, err := stream.Send([]byte("\x15\n" + framedCommand(tag, argv))); err != nil {
		stream.Abort()
		stream.Free()
		return nil, 0, fmt.Errorf("write to the serial console: %s", virt.Message(err))
	}
	begin := "VMNET-BEGIN-" + tag
	end := regexp.MustCompile(`VMNET-END-` + tag + `-(\d+)`)

	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk, 16)
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	safe.Go(nil, "reading the serial console", func() error {
		defer close(readerDone)
		for {
			buf := make([]byte, 4096)
			n, err := stream.Recv(buf)
			select {
			case chunks <- chunk{buf[:n], err}:
			case <-stop:
				return nil
			}
			if err != nil || n == 0 {
				return nil
			}
		}
	}, func(err error) {
		if err != nil {
			select {
			case chunks <- chunk{err: err}: // the command ends with the internal error
			case <-stop:
			}
		}
	})
	defer releaseConsole(name, stream, stop, readerDone)
	deadline := time.After(timeout)
	var all []byte
	for {
		select {
		case c := <-chunks:
			if c.err != nil {
				return nil, 0, fmt.Errorf("read the serial console: %s", virt.Message(c.err))
			}
			all = append(all, c.b...)
			if out, code, ok := framedResult(all, begin, end); ok {
				return out, code, nil
			}
		case <-deadline:
			return nil, 0, fmt.Errorf("%s did not finish on the serial console within %s", argv[0], timeout)
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// releaseConsole ends consoleExec's session on domain name's console:
// stop tells the reader to give up, Abort makes its Recv return, and the
// stream is freed only after the reader is gone (libvirt warns about use
// after free otherwise). At most consoleRelease is spent on it here: lab
// up hung for good once, with two guests' consoles on one connection,
// after the last result was in, and this wait for Recv to return after the
// Abort is the one unbounded wait on that path (no stack dump confirmed
// it). The release goes on in the background, and the next session on the
// same console waits for it (waitReleased).
func releaseConsole(name string, stream ConsoleStream, stop chan struct{}, readerDone <-chan struct{}) {
	close(stop)
	released := make(chan struct{})
	consoleReleases.Store(name, released)
	safe.Go(nil, "closing the serial console", func() error {
		defer close(released)
		stream.Abort()
		<-readerDone
		return stream.Free()
	}, nil)
	select {
	case <-released:
	case <-time.After(consoleRelease):
	}
}

// consoleReleases holds, per domain name, a channel closed once the last
// console session of that domain has been released.
var consoleReleases sync.Map

// waitReleased waits, at most consoleReopen, until the last console
// session on domain name is released. Opening the next one earlier (with
// FORCE) leaves the old one's pty open in libvirtd for a while, and what
// the guest writes then is split between the two: BenchmarkLabScale's
// 8-guest lab lost a command's END marker that way on a loaded host, and
// the command "did not finish within 1m0s". After consoleReopen the new
// session opens anyway: FORCE then ends an old one whose Recv ignored its
// Abort.
func waitReleased(name string) {
	v, ok := consoleReleases.Load(name)
	if !ok {
		return
	}
	select {
	case <-v.(chan struct{}):
	case <-time.After(consoleReopen):
	}
}

// consoleRelease bounds how long consoleExec waits for its console session
// to close once it has the command's result; consoleReopen how long the
// next session on that console waits for it (variables: the tests
// shorten them).
var consoleRelease = 2 * time.Second

var consoleReopen = 20 * time.Second

// framedCommand is the shell line that runs argv between the markers
// tagged tag, the END marker carrying the exit status. The markers are built
// by the shell (printf joins two halves), so the typed line, echoed back by
// the tty, never matches them.
func framedCommand(tag string, argv []string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shellQuote(a)
	}
	return fmt.Sprintf("printf '\\n%%s%%s\\n' VMNET-BEGIN- %s; %s; printf '\\n%%s%%s-%%d\\n' VMNET-END- %s $?\n",
		tag, strings.Join(quoted, " "), tag)
}

// framedResult finds the command's output and exit status in what the
// console has sent so far; ok is false until both markers have arrived.
// Everything outside the markers (the echo, the prompt, kernel messages) is
// dropped.
func framedResult(all []byte, begin string, end *regexp.Regexp) (out []byte, code int, ok bool) {
	text := strings.ReplaceAll(string(all), "\r", "")
	i := strings.Index(text, "\n"+begin+"\n")
	if i < 0 {
		return nil, 0, false
	}
	body := text[i+len(begin)+2:]
	m := end.FindStringSubmatchIndex(body)
	if m == nil {
		return nil, 0, false
	}
	code, _ = strconv.Atoi(body[m[2]:m[3]])
	// The END marker starts on a fresh line: drop the newline printf added.
	s := strings.TrimSuffix(body[:m[0]], "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return bytes.TrimLeft([]byte(s), "\n"), code, true
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
