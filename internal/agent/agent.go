// Package agent speaks the QEMU guest agent's protocol (qemu-ga) through
// libvirt: typed requests and replies for the few commands vmnet uses —
// guest-ping, guest-exec with guest-exec-status, guest-file-open/write/close,
// guest-network-get-interfaces and guest-set-time — so no caller builds
// agent JSON by hand.
package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
)

// Commander sends one guest-agent command and returns its raw reply. A
// *libvirt.Domain is one (virDomainQemuAgentCommand); tests use a fake.
type Commander interface {
	QemuAgentCommand(command string, timeout libvirt.DomainQemuAgentCommandTimeout, flags uint32) (string, error)
}

var _ Commander = (*libvirt.Domain)(nil)

// ErrUnavailable is returned (wrapped) when the guest has no agent answering:
// not installed, not started yet, or the guest is not running.
var ErrUnavailable = errors.New("the QEMU guest agent does not answer")

// Client talks to one guest's agent.
type Client struct{ c Commander }

// New returns a client that sends its commands through c.
func New(c Commander) Client { return Client{c: c} }

// request is the agent's command envelope.
type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

// commandTimeout is how long libvirt waits for the agent's answer to a
// command it has sent. Its default, 5 s (QEMU_AGENT_WAIT_TIME), was too short
// for a TCG guest on a loaded host, and a command that timed out may still
// have run in the guest.
const commandTimeout libvirt.DomainQemuAgentCommandTimeout = 60

// pingTimeout bounds a guest-ping: libvirt's smallest timeout
// (DOMAIN_QEMU_AGENT_COMMAND_MIN) means "block", which no caller wants.
const pingTimeout libvirt.DomainQemuAgentCommandTimeout = 10

// agentStall is how long call keeps asking an agent that is unresponsive
// before the command was sent (below), e.g. while the guest is starved of CPU.
var agentStall = time.Minute

// call sends execute with args and decodes the reply's "return" into ret
// (nil to ignore it). Before a command libvirt syncs with the agent
// (guest-sync, at most 5 s) unless it is in sync already; an unanswered sync,
// or a channel the agent has closed, fails before the command's own timeout
// with the command not sent. Such a failure is asked again, for at most
// agentStall, so a slow agent is not taken for a gone one. A failure after
// the command's timeout is returned at once: the guest may have run it.
func (a Client) call(ctx context.Context, execute string, args, ret any) error {
	deadline := time.Now().Add(agentStall)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		start := time.Now()
		err := a.send(commandTimeout, execute, args, ret)
		if err == nil || !notSent(err, time.Since(start)) {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(wait, left)):
		}
	}
}

// notSent reports whether err, after took, means the agent was not in touch
// when libvirt tried to send the command.
func notSent(err error, took time.Duration) bool {
	var lerr libvirt.Error
	if !errors.As(err, &lerr) || took >= time.Duration(commandTimeout)*time.Second {
		return false
	}
	return lerr.Code == libvirt.ERR_AGENT_UNRESPONSIVE || lerr.Code == libvirt.ERR_AGENT_UNSYNCED
}

// send sends execute with args once and decodes the reply's "return" into
// ret (nil to ignore it).
func (a Client) send(timeout libvirt.DomainQemuAgentCommandTimeout, execute string, args, ret any) error {
	req, err := json.Marshal(request{Execute: execute, Arguments: args})
	if err != nil {
		return fmt.Errorf("guest agent: encode %s: %w", execute, err)
	}
	out, err := a.c.QemuAgentCommand(string(req), timeout, 0)
	if err != nil {
		return wrap(execute, err)
	}
	if ret == nil {
		return nil
	}
	var reply struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil || len(reply.Return) == 0 {
		return fmt.Errorf("guest agent: %s: unexpected reply %q", execute, truncate(out, 200))
	}
	if err := json.Unmarshal(reply.Return, ret); err != nil {
		return fmt.Errorf("guest agent: %s: unexpected reply %q: %w", execute, truncate(out, 200), err)
	}
	return nil
}

// wrap names the command and marks the errors that mean "no agent here".
func wrap(execute string, err error) error {
	var lerr libvirt.Error
	if errors.As(err, &lerr) {
		switch lerr.Code {
		case libvirt.ERR_AGENT_UNRESPONSIVE, libvirt.ERR_AGENT_UNSYNCED, libvirt.ERR_OPERATION_INVALID,
			libvirt.ERR_ARGUMENT_UNSUPPORTED, libvirt.ERR_NO_DOMAIN:
			return fmt.Errorf("guest agent: %s: %s: %w", execute, lerr.Message, errors.Join(ErrUnavailable, err))
		}
		return fmt.Errorf("guest agent: %s: %s: %w", execute, lerr.Message, err)
	}
	return fmt.Errorf("guest agent: %s: %w", execute, err)
}

// Ping reports whether the agent answers (guest-ping), once: callers that
// wait for an agent ask again themselves.
func (a Client) Ping() error {
	return a.send(pingTimeout, "guest-ping", nil, nil)
}

// ExecResult is how a command run by Exec ended.
type ExecResult struct {
	ExitCode int    // the exit status, when it exited
	Signal   int    // the signal that ended it, or 0
	Stdout   []byte // captured standard output
	Stderr   []byte // captured standard error
}

// Code is the status a shell would report: the exit code, or 128+signal.
func (r ExecResult) Code() int {
	if r.Signal != 0 {
		return 128 + r.Signal
	}
	return r.ExitCode
}

// execPoll bounds how often Exec asks whether the command finished: fast at
// first (most probes end in milliseconds), then at most every 100 ms.
var execPoll = []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}

// Exec runs argv in the guest (guest-exec with capture-output), waits for it
// with guest-exec-status until it ends or timeout passes, and returns its
// status and output. A non-zero exit is a result, not an error.
func (a Client) Exec(ctx context.Context, argv []string, timeout time.Duration) (ExecResult, error) {
	return a.ExecInput(ctx, argv, nil, timeout)
}

// ExecInput is Exec with input as the command's standard input (guest-exec's
// input-data): data that must not be in an argument, such as a secret, and
// one agent command where a file write would take several.
func (a Client) ExecInput(ctx context.Context, argv []string, input []byte, timeout time.Duration) (ExecResult, error) {
	if len(argv) == 0 || argv[0] == "" {
		return ExecResult{}, errors.New("guest agent: exec: no command")
	}
	args := struct {
		Path    string   `json:"path"`
		Arg     []string `json:"arg"`
		Input   []byte   `json:"input-data,omitempty"` // base64 in the request, by encoding/json
		Capture bool     `json:"capture-output"`
	}{argv[0], argv[1:], input, true}
	if args.Arg == nil {
		args.Arg = []string{}
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := a.call(ctx, "guest-exec", args, &started); err != nil {
		return ExecResult{}, err
	}
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		var st struct {
			Exited   bool   `json:"exited"`
			ExitCode int    `json:"exitcode"`
			Signal   int    `json:"signal"`
			OutData  []byte `json:"out-data"` // base64 in the reply, decoded by encoding/json
			ErrData  []byte `json:"err-data"`
		}
		if err := a.call(ctx, "guest-exec-status", struct {
			PID int `json:"pid"`
		}{started.PID}, &st); err != nil {
			return ExecResult{}, err
		}
		if st.Exited {
			return ExecResult{ExitCode: st.ExitCode, Signal: st.Signal, Stdout: st.OutData, Stderr: st.ErrData}, nil
		}
		if time.Now().After(deadline) {
			return ExecResult{}, &TimeoutError{Command: argv[0], After: timeout}
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, ctx.Err()
		case <-time.After(execPoll[min(i, len(execPoll)-1)]):
		}
	}
}

// TimeoutError says a command run by Exec did not end in time.
type TimeoutError struct {
	Command string
	After   time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not finish in the guest within %s", e.Command, e.After)
}

// writeChunk is the most data one guest-file-write carries: the agent's
// messages are limited in size, and base64 grows data by a third.
const writeChunk = 48 << 10

// WriteFile writes content to path in the guest, creating or truncating it
// (guest-file-open "w", guest-file-write in chunks, guest-file-close). The
// file gets the agent's default mode: callers that need another create it
// first with that mode.
func (a Client) WriteFile(path string, content []byte) error {
	var handle int
	if err := a.call(context.Background(), "guest-file-open", struct {
		Path string `json:"path"`
		Mode string `json:"mode"`
	}{path, "w"}, &handle); err != nil {
		return err
	}
	type handleArg struct {
		Handle int `json:"handle"`
	}
	for off := 0; off < len(content); off += writeChunk {
		end := min(off+writeChunk, len(content))
		var wrote struct {
			Count int `json:"count"`
		}
		err := a.call(context.Background(), "guest-file-write", struct {
			Handle int    `json:"handle"`
			Buf    string `json:"buf-b64"`
		}{handle, base64.StdEncoding.EncodeToString(content[off:end])}, &wrote)
		if err == nil && wrote.Count != end-off {
			err = fmt.Errorf("guest agent: write %s: wrote %d of %d bytes", path, wrote.Count, end-off)
		}
		if err != nil {
			a.send(commandTimeout, "guest-file-close", handleArg{handle}, nil)
			return err
		}
	}
	return a.call(context.Background(), "guest-file-close", handleArg{handle}, nil)
}

// Interface is one network interface as the guest sees it.
type Interface struct {
	Name      string         // e.g. eth0
	MAC       string         // lower case, colon separated; "" for lo
	Addresses []netip.Prefix // IPv4 and IPv6, with prefix length
}

// NetworkInterfaces lists the guest's interfaces and addresses
// (guest-network-get-interfaces).
func (a Client) NetworkInterfaces() ([]Interface, error) {
	var raw []struct {
		Name      string `json:"name"`
		MAC       string `json:"hardware-address"`
		Addresses []struct {
			Type    string `json:"ip-address-type"`
			Address string `json:"ip-address"`
			Prefix  int    `json:"prefix"`
		} `json:"ip-addresses"`
	}
	if err := a.call(context.Background(), "guest-network-get-interfaces", nil, &raw); err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(raw))
	for _, r := range raw {
		in := Interface{Name: r.Name, MAC: strings.ToLower(r.MAC)}
		if in.MAC == "00:00:00:00:00:00" {
			in.MAC = ""
		}
		for _, ad := range r.Addresses {
			// An IPv6 link-local address carries its zone ("fe80::1%eth0").
			addr, err := netip.ParseAddr(strings.SplitN(ad.Address, "%", 2)[0])
			if err != nil {
				return nil, fmt.Errorf("guest agent: interface %s: bad address %q", r.Name, ad.Address)
			}
			p, err := addr.Prefix(ad.Prefix)
			if err != nil || ad.Prefix < 0 {
				return nil, fmt.Errorf("guest agent: interface %s: bad prefix %d for %s", r.Name, ad.Prefix, addr)
			}
			in.Addresses = append(in.Addresses, netip.PrefixFrom(addr, p.Bits()))
		}
		out = append(out, in)
	}
	return out, nil
}

// SetTime sets the guest's clock to t (guest-set-time), as after a restore
// from a saved state, when the guest's clock is where it was at the save.
func (a Client) SetTime(t time.Time) error {
	return a.call(context.Background(), "guest-set-time", struct {
		Time int64 `json:"time"`
	}{t.UnixNano()}, nil)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
