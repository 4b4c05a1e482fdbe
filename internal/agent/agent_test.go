package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"libvirt.org/go/libvirt"
)

// fakeGuest answers guest-agent commands the way qemu-ga does, with this
// machine as the guest: guest-exec really runs the command, guest-file-*
// really write files. fail makes one command fail with a libvirt error.
type fakeGuest struct {
	mu      sync.Mutex
	procs   map[int]*fakeProc
	files   map[int]*os.File
	next    int
	fail    map[string]libvirt.Error
	flaky   map[string]int // fail the command this many more times with failWith, then answer
	flakyAs libvirt.Error
	timeout []libvirt.DomainQemuAgentCommandTimeout // per command sent, the timeout it was given
	ifaces  string                                  // the reply's "return" for guest-network-get-interfaces
	setTime int64
	sent    []string
}

type fakeProc struct {
	done           chan struct{}
	code, signal   int
	stdout, stderr bytes.Buffer
}

func newFakeGuest() *fakeGuest {
	return &fakeGuest{procs: map[int]*fakeProc{}, files: map[int]*os.File{}, next: 1000, fail: map[string]libvirt.Error{}}
}

func (g *fakeGuest) QemuAgentCommand(command string, timeout libvirt.DomainQemuAgentCommandTimeout, _ uint32) (string, error) {
	var req struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(command), &req); err != nil {
		return "", fmt.Errorf("fake guest: bad JSON %q", command)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sent = append(g.sent, req.Execute)
	g.timeout = append(g.timeout, timeout)
	if e, ok := g.fail[req.Execute]; ok {
		return "", e
	}
	if g.flaky[req.Execute] > 0 {
		g.flaky[req.Execute]--
		return "", g.flakyAs
	}
	ret := func(v any) (string, error) {
		b, _ := json.Marshal(map[string]any{"return": v})
		return string(b), nil
	}
	switch req.Execute {
	case "guest-ping":
		return ret(map[string]any{})
	case "guest-exec":
		var a struct {
			Path    string   `json:"path"`
			Arg     []string `json:"arg"`
			Input   []byte   `json:"input-data"`
			Capture bool     `json:"capture-output"`
		}
		json.Unmarshal(req.Arguments, &a)
		p := &fakeProc{done: make(chan struct{})}
		cmd := exec.Command(a.Path, a.Arg...)
		cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
		cmd.Stdin = bytes.NewReader(a.Input) // qemu-ga: empty without input-data
		if err := cmd.Start(); err != nil {
			return "", libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "Guest agent command failed: " + err.Error()}
		}
		g.next++
		g.procs[g.next] = p
		go func() {
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); ok {
				if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
					p.signal = int(ws.Signal())
				} else {
					p.code = ee.ExitCode()
				}
			}
			close(p.done)
		}()
		return ret(map[string]int{"pid": g.next})
	case "guest-exec-status":
		var a struct {
			PID int `json:"pid"`
		}
		json.Unmarshal(req.Arguments, &a)
		p, ok := g.procs[a.PID]
		if !ok {
			return "", libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "Invalid parameter 'pid'"}
		}
		select {
		case <-p.done:
			return ret(map[string]any{"exited": true, "exitcode": p.code, "signal": p.signal,
				"out-data": base64.StdEncoding.EncodeToString(p.stdout.Bytes()),
				"err-data": base64.StdEncoding.EncodeToString(p.stderr.Bytes())})
		default:
			return ret(map[string]any{"exited": false})
		}
	case "guest-file-open":
		var a struct{ Path, Mode string }
		json.Unmarshal(req.Arguments, &a)
		f, err := os.Create(a.Path)
		if err != nil {
			return "", libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: err.Error()}
		}
		g.next++
		g.files[g.next] = f
		return ret(g.next)
	case "guest-file-write":
		var a struct {
			Handle int    `json:"handle"`
			Buf    string `json:"buf-b64"`
		}
		json.Unmarshal(req.Arguments, &a)
		b, err := base64.StdEncoding.DecodeString(a.Buf)
		if err != nil || len(a.Buf) > 64<<10+1024 {
			return "", libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "message too large or bad base64"}
		}
		n, _ := g.files[a.Handle].Write(b)
		return ret(map[string]any{"count": n, "eof": false})
	case "guest-file-close":
		var a struct {
			Handle int `json:"handle"`
		}
		json.Unmarshal(req.Arguments, &a)
		g.files[a.Handle].Close()
		delete(g.files, a.Handle)
		return ret(map[string]any{})
	case "guest-network-get-interfaces":
		return `{"return":` + g.ifaces + `}`, nil
	case "guest-set-time":
		var a struct {
			Time int64 `json:"time"`
		}
		json.Unmarshal(req.Arguments, &a)
		g.setTime = a.Time
		return ret(map[string]any{})
	}
	return "", libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "The command " + req.Execute + " has not been found"}
}

func TestPing(t *testing.T) {
	g := newFakeGuest()
	if err := New(g).Ping(); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	g.fail["guest-ping"] = libvirt.Error{Code: libvirt.ERR_AGENT_UNRESPONSIVE, Message: "Guest agent is not responding"}
	err := New(g).Ping()
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ping with an unresponsive agent: %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "guest-ping") || !strings.Contains(err.Error(), "not responding") {
		t.Errorf("error %q should name the command and libvirt's message", err)
	}
	// Any other failure is an error, but not "no agent".
	g.fail["guest-ping"] = libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "boom"}
	if err := New(g).Ping(); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping with an internal error: %v, want an error that is not ErrUnavailable", err)
	}
}

func TestExec(t *testing.T) {
	a := New(newFakeGuest())
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		argv           []string
		code           int
		stdout, stderr string
	}{
		{"output", []string{"sh", "-c", "echo out; echo err >&2"}, 0, "out\n", "err\n"},
		{"exit code", []string{"sh", "-c", "exit 3"}, 3, "", ""},
		{"signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, "", ""},
		{"no args", []string{"true"}, 0, "", ""},
		{"binary output", []string{"printf", `\000\377`}, 0, "\x00\xff", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := a.Exec(ctx, tc.argv, 10*time.Second)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if r.Code() != tc.code || string(r.Stdout) != tc.stdout || string(r.Stderr) != tc.stderr {
				t.Errorf("Exec %v = code %d stdout %q stderr %q; want %d %q %q", tc.argv, r.Code(), r.Stdout, r.Stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestExecInput: the input reaches the command's standard input, byte for
// byte, and is not in its arguments.
func TestExecInput(t *testing.T) {
	a := New(newFakeGuest())
	in := []byte("s3cret\x00\xff\n")
	r, err := a.ExecInput(context.Background(), []string{"sh", "-c", "od -An -c; echo \"$#\""}, in, 10*time.Second)
	if err != nil {
		t.Fatalf("ExecInput: %v", err)
	}
	want, _ := exec.Command("sh", "-c", "printf 's3cret\\000\\377\\n' | od -An -c; echo 0").Output()
	if r.Code() != 0 || string(r.Stdout) != string(want) {
		t.Errorf("ExecInput: code %d, stdout %q; want %q", r.Code(), r.Stdout, want)
	}
}

func TestExecTimeoutAndCancel(t *testing.T) {
	a := New(newFakeGuest())
	_, err := a.Exec(context.Background(), []string{"sleep", "5"}, 200*time.Millisecond)
	var te *TimeoutError
	if !errors.As(err, &te) || te.Command != "sleep" {
		t.Fatalf("Exec past its timeout: %v, want a TimeoutError naming sleep", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if _, err := a.Exec(ctx, []string{"sleep", "5"}, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Exec cancelled: %v, want context.Canceled", err)
	}
	if _, err := a.Exec(context.Background(), nil, time.Second); err == nil {
		t.Error("Exec with no command succeeded")
	}
}

// notNow is what libvirt says when the agent did not answer its guest-sync
// within 5 s (qemuAgentSend): the command was not sent. The CI machine, two
// TCG guests on 2 cores, saw it in the middle of a lab's provisioning.
var notNow = libvirt.Error{Code: libvirt.ERR_AGENT_UNRESPONSIVE, Message: "Guest agent is not responding: Guest agent not available for now"}

// TestExecRidesOutASlowAgent: an agent that misses libvirt's guest-sync a few
// times is slow, not gone; Exec asks again instead of failing the lab, and
// gives each command more than libvirt's default 5 s to be answered.
func TestExecRidesOutASlowAgent(t *testing.T) {
	for _, cmd := range []string{"guest-exec", "guest-exec-status"} {
		t.Run(cmd, func(t *testing.T) {
			g := newFakeGuest()
			g.flaky, g.flakyAs = map[string]int{cmd: 3}, notNow
			r, err := New(g).Exec(context.Background(), []string{"sh", "-c", "echo once >> " + filepath.Join(t.TempDir(), "ran") + "; echo ok"}, 10*time.Second)
			if err != nil {
				t.Fatalf("Exec with an agent that missed 3 syncs: %v", err)
			}
			if string(r.Stdout) != "ok\n" {
				t.Errorf("stdout %q, want \"ok\\n\"", r.Stdout)
			}
			for i, to := range g.timeout {
				if to != commandTimeout {
					t.Errorf("%s sent with timeout %d, want %d", g.sent[i], to, commandTimeout)
				}
			}
		})
	}
	t.Run("runs once", func(t *testing.T) {
		g := newFakeGuest()
		g.flaky, g.flakyAs = map[string]int{"guest-exec": 2}, notNow
		ran := filepath.Join(t.TempDir(), "ran")
		if _, err := New(g).Exec(context.Background(), []string{"sh", "-c", "echo once >> " + ran}, 10*time.Second); err != nil {
			t.Fatalf("Exec: %v", err)
		}
		if b, _ := os.ReadFile(ran); string(b) != "once\n" {
			t.Errorf("the command ran %q, want once", b)
		}
	})
	t.Run("gone for good", func(t *testing.T) {
		defer func(d time.Duration) { agentStall = d }(agentStall)
		agentStall = 300 * time.Millisecond
		g := newFakeGuest()
		g.fail["guest-exec-status"] = notNow
		start := time.Now()
		_, err := New(g).Exec(context.Background(), []string{"true"}, 10*time.Second)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not available for now") {
			t.Fatalf("Exec with an agent that never answers again: %v, want ErrUnavailable with libvirt's message", err)
		}
		if took := time.Since(start); took < agentStall || took > agentStall+2*time.Second {
			t.Errorf("gave up after %s, want about %s", took, agentStall)
		}
	})
	t.Run("not configured is not retried", func(t *testing.T) {
		g := newFakeGuest()
		g.fail["guest-exec"] = libvirt.Error{Code: libvirt.ERR_ARGUMENT_UNSUPPORTED, Message: "QEMU guest agent is not configured"}
		New(g).Exec(context.Background(), []string{"true"}, time.Second)
		if len(g.sent) != 1 {
			t.Errorf("sent %v, want guest-exec once", g.sent)
		}
	})
	t.Run("ping is not retried", func(t *testing.T) {
		g := newFakeGuest()
		g.flaky, g.flakyAs = map[string]int{"guest-ping": 1}, notNow
		if err := New(g).Ping(); !errors.Is(err, ErrUnavailable) || len(g.sent) != 1 {
			t.Errorf("Ping: %v after %v; want ErrUnavailable after one guest-ping", err, g.sent)
		}
	})
}

func TestExecStartFails(t *testing.T) {
	g := newFakeGuest()
	g.fail["guest-exec"] = libvirt.Error{Code: libvirt.ERR_ARGUMENT_UNSUPPORTED, Message: "QEMU guest agent is not configured"}
	_, err := New(g).Exec(context.Background(), []string{"true"}, time.Second)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Exec without an agent: %v, want ErrUnavailable", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, writeChunk - 1, writeChunk, writeChunk + 1, 3*writeChunk + 17} {
		g := newFakeGuest()
		content := bytes.Repeat([]byte{'a', 0, 'z', '\n'}, size/4+1)[:size]
		p := filepath.Join(dir, fmt.Sprintf("f%d", size))
		if err := New(g).WriteFile(p, content); err != nil {
			t.Fatalf("WriteFile %d bytes: %v", size, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("WriteFile %d bytes: read back %d bytes (%v)", size, len(got), err)
		}
		if len(g.files) != 0 {
			t.Errorf("WriteFile %d bytes left %d handles open", size, len(g.files))
		}
	}
}

func TestWriteFileClosesOnError(t *testing.T) {
	g := newFakeGuest()
	g.fail["guest-file-write"] = libvirt.Error{Code: libvirt.ERR_INTERNAL_ERROR, Message: "disk full"}
	err := New(g).WriteFile(filepath.Join(t.TempDir(), "f"), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("WriteFile with a failing write: %v", err)
	}
	if g.sent[len(g.sent)-1] != "guest-file-close" {
		t.Errorf("the handle was not closed after the failed write: %v", g.sent)
	}
}

func TestNetworkInterfaces(t *testing.T) {
	g := newFakeGuest()
	g.ifaces = `[
	 {"name":"lo","hardware-address":"00:00:00:00:00:00","ip-addresses":[
	   {"ip-address-type":"ipv4","ip-address":"127.0.0.1","prefix":8},
	   {"ip-address-type":"ipv6","ip-address":"::1","prefix":128}]},
	 {"name":"eth0","hardware-address":"52:54:00:AB:CD:EF","ip-addresses":[
	   {"ip-address-type":"ipv4","ip-address":"192.0.2.10","prefix":24},
	   {"ip-address-type":"ipv6","ip-address":"fe80::5054:ff:feab:cdef%eth0","prefix":64}]},
	 {"name":"eth1","hardware-address":"52:54:00:00:00:01"}]`
	got, err := New(g).NetworkInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	want := []Interface{
		{Name: "lo", Addresses: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}},
		{Name: "eth0", MAC: "52:54:00:ab:cd:ef", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24"), netip.MustParsePrefix("fe80::5054:ff:feab:cdef/64")}},
		{Name: "eth1", MAC: "52:54:00:00:00:01"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("NetworkInterfaces =\n %v\nwant\n %v", got, want)
	}
	g.ifaces = `[{"name":"eth0","ip-addresses":[{"ip-address":"not-an-ip","prefix":24}]}]`
	if _, err := New(g).NetworkInterfaces(); err == nil {
		t.Error("a bad address in the reply was accepted")
	}
	g.ifaces = `{"oops":1}`
	if _, err := New(g).NetworkInterfaces(); err == nil {
		t.Error("a reply of the wrong shape was accepted")
	}
}

func TestSetTime(t *testing.T) {
	g := newFakeGuest()
	at := time.Date(2026, 12, 1, 12, 0, 0, 5, time.UTC)
	if err := New(g).SetTime(at); err != nil {
		t.Fatal(err)
	}
	if g.setTime != at.UnixNano() {
		t.Errorf("guest-set-time got %d, want %d", g.setTime, at.UnixNano())
	}
}

// FuzzNetworkInterfaces: whatever a guest answers, the parser returns an
// error or interfaces with valid addresses; it never panics.
func FuzzNetworkInterfaces(f *testing.F) {
	f.Add(`[{"name":"eth0","hardware-address":"52:54:00:ab:cd:ef","ip-addresses":[{"ip-address-type":"ipv4","ip-address":"192.0.2.10","prefix":24}]}]`)
	f.Add(`[{"name":"eth0","ip-addresses":[{"ip-address":"fe80::1%eth0","prefix":200}]}]`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, reply string) {
		g := newFakeGuest()
		g.ifaces = reply
		ifs, err := New(g).NetworkInterfaces()
		if err != nil {
			return
		}
		for _, in := range ifs {
			for _, p := range in.Addresses {
				if !p.IsValid() {
					t.Fatalf("invalid prefix %v from %q", p, reply)
				}
			}
		}
	})
}
