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
	"time"

	"vmnet/internal/safe"
	"vmnet/internal/virt"
)

// consoleExec runs argv through a shell on the guest's serial console, for
// images without a guest agent (tiny has a root shell on ttyS0). The command
// is framed by random markers so its output and exit status can be told
// apart from the echo of what was typed and from kernel messages.
func consoleExec(ctx context.Context, dom Domain, argv []string, timeout time.Duration) ([]byte, int, error) {
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
	defer releaseConsole(stream, stop, readerDone)
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

// releaseConsole ends consoleExec's session: stop tells the reader to
// give up, Abort makes its Recv return, and the stream is freed only after
// the reader is gone (libvirt warns about use after free otherwise).
// At most consoleRelease is spent on it: lab up hung for good once, with
// two guests' consoles on one connection, after the last result was in,
// and this wait for Recv to return after the Abort is the one unbounded
// wait on that path (no stack dump confirmed it). The reader and the
// stream are then left to end when the console is next opened (FORCE cuts
// this session off, and Recv returns) or with the connection.
func releaseConsole(stream ConsoleStream, stop chan struct{}, readerDone <-chan struct{}) {
	close(stop)
	released := make(chan struct{})
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

// consoleRelease bounds how long consoleExec waits for its console session
// to close once it has the command's result.
const consoleRelease = 2 * time.Second

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
