package perf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is the port iperf3 servers listen on (iperf3's own default).
const DefaultPort = 5201

// Side runs iperf3 at one end of a pair: the host, or a guest.
type Side interface {
	// Iperf runs iperf3 with args there and returns its standard output.
	// The error is for an iperf3 that could not be run at all; iperf3's own
	// failures are in its JSON.
	Iperf(ctx context.Context, args []string, timeout time.Duration) ([]byte, error)
	// Serve starts an iperf3 server on port there and returns at once (the
	// client retries while it starts); stop ends it.
	Serve(ctx context.Context, port int) (stop func() error, err error)
}

// Env is what Run needs from a running lab.
type Env struct {
	// Side returns the side that runs iperf3 at an endpoint.
	Side func(Endpoint) (Side, error)
	// Addr is an endpoint's address on a lab network: what a client
	// connects to when that endpoint serves.
	Addr func(e Endpoint, net string) (netip.Addr, error)
	// Progress gets a line per pair and test; nil for none.
	Progress io.Writer
}

// Options are a run's settings.
type Options struct {
	Seconds  int     // each test's length (iperf3 -t); DefaultSeconds when 0
	UDPRate  float64 // the UDP test's rate in bits per second; DefaultUDPRate when 0
	Baseline string  // the pair the others are compared with; "" picks one (Baseline)
	Port     int     // DefaultPort when 0
	// Retries and RetryWait bound how often and how long apart a client
	// tries again while its server is still starting (iperf3 -D returns
	// before it listens); 5 and 500 ms when 0.
	Retries   int
	RetryWait time.Duration
}

// Defaults of Options.
const (
	DefaultSeconds = 5
	DefaultUDPRate = 100e6
)

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.Seconds == 0 {
		o.Seconds = DefaultSeconds
	}
	if o.UDPRate == 0 {
		o.UDPRate = DefaultUDPRate
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.RetryWait == 0 {
		o.RetryWait = 500 * time.Millisecond
	}
	return o
}

// Result is one pair's measurement.
type Result struct {
	Pair        string `json:"pair"`   // CLIENT-SERVER:NET
	Client      string `json:"client"` // host or a node; it sends
	Server      string `json:"server"`
	Network     string `json:"network"`
	NetworkKind string `json:"network_kind"`
	// ContainerMode is the network mode of the container the pair
	// measures: bridge (podman), host, macvlan or ipvlan; none without one.
	ContainerMode string   `json:"container_mode,omitempty"`
	Mode          string   `json:"mode"`    // host ↔ VM, bridge; VM → container, podman bridge
	Address       string   `json:"address"` // the server's address the client connected to
	Baseline      bool     `json:"baseline"`
	TCP           *TCP     `json:"tcp,omitempty"`
	UDP           *UDP     `json:"udp,omitempty"`
	Ratio         *float64 `json:"ratio,omitempty"` // TCP throughput over the baseline's, in this run
	Error         string   `json:"error,omitempty"`
}

// Report is a whole run.
type Report struct {
	Lab                  string   `json:"lab"`
	TestSeconds          int      `json:"test_seconds"`
	UDPRateBitsPerSecond float64  `json:"udp_rate_bits_per_second"`
	Baseline             string   `json:"baseline,omitempty"` // the baseline pair's name; "" when none
	Pairs                []Result `json:"pairs"`
	DurationSeconds      float64  `json:"duration_seconds"`
}

// FailedError is a run in which some pairs could not be measured; the
// report has each one's error.
type FailedError struct{ Failed, Total int }

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d of %d pairs could not be measured", e.Failed, e.Total)
}

// Hint says where the reasons are.
func (e *FailedError) Hint() string {
	return "each failed pair's error is in the table (or in the JSON's pairs[].error)"
}

// Err is a *FailedError when some pair failed, else nil.
func (r *Report) Err() error {
	n := 0
	for _, p := range r.Pairs {
		if p.Error != "" {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return &FailedError{Failed: n, Total: len(r.Pairs)}
}

// Run measures the pairs one after another and compares each with the
// baseline. A pair that fails is reported with its error and the run goes
// on; the error returned is for options that are wrong (an unknown
// baseline), before anything runs.
func Run(ctx context.Context, env Env, labName string, pairs []Pair, opt Options) (*Report, error) {
	opt = opt.withDefaults()
	base, err := Baseline(pairs, opt.Baseline)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep := &Report{Lab: labName, TestSeconds: opt.Seconds, UDPRateBitsPerSecond: opt.UDPRate, Pairs: make([]Result, len(pairs))}
	for i, p := range pairs {
		env.say("perf %s: %s (%s), %d s TCP then %d s UDP at %s", labName, p.Name(), p.Mode(), opt.Seconds, opt.Seconds, Rate(opt.UDPRate))
		rep.Pairs[i] = measure(ctx, env, p, opt)
		rep.Pairs[i].Baseline = i == base
		env.say("perf %s: %s: %s", labName, p.Name(), summary(rep.Pairs[i]))
	}
	if base >= 0 {
		rep.Baseline = pairs[base].Name()
		setRatios(rep.Pairs, base)
	}
	rep.DurationSeconds = time.Since(start).Seconds()
	return rep, nil
}

// say writes a progress line.
func (e Env) say(format string, a ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, format+"\n", a...)
	}
}

// summary is a result in one line, for progress.
func summary(r Result) string {
	if r.Error != "" {
		return "failed: " + r.Error
	}
	s := fmt.Sprintf("TCP %s, %d retransmits", Rate(r.TCP.BitsPerSecond), r.TCP.Retransmits)
	if r.UDP != nil {
		s += fmt.Sprintf("; UDP %s, jitter %.3f ms, %.2f%% lost", Rate(r.UDP.BitsPerSecond), r.UDP.JitterMS, r.UDP.LostPercent)
	}
	return s
}

// setRatios sets each measured pair's TCP throughput over the baseline's.
func setRatios(results []Result, base int) {
	b := results[base].TCP
	if b == nil || b.BitsPerSecond <= 0 {
		return
	}
	for i := range results {
		if t := results[i].TCP; t != nil {
			r := t.BitsPerSecond / b.BitsPerSecond
			results[i].Ratio = &r
		}
	}
}

// measure runs one pair: a server at the server's end, then the client's
// TCP test and its UDP test against it, then the server is stopped.
func measure(ctx context.Context, env Env, p Pair, opt Options) Result {
	res := Result{Pair: p.Name(), Client: p.Client.Name(), Server: p.Server.Name(), Network: p.Net, NetworkKind: p.NetKind,
		ContainerMode: p.ContainerMode, Mode: p.Mode()}
	err := func() error {
		addr, err := env.Addr(p.Server, p.Net)
		if err != nil {
			return err
		}
		res.Address = addr.String()
		client, server, err := sides(env, p)
		if err != nil {
			return err
		}
		stop, err := server.Serve(ctx, opt.Port)
		if err != nil {
			return fmt.Errorf("start the iperf3 server on %s: %w", p.Server.Name(), err)
		}
		defer stop()
		res.TCP, res.UDP, err = tests(ctx, client, addr, opt)
		return err
	}()
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// sides returns the pair's client and server sides.
func sides(env Env, p Pair) (client, server Side, err error) {
	if client, err = env.Side(p.Client); err != nil {
		return nil, nil, err
	}
	if server, err = env.Side(p.Server); err != nil {
		return nil, nil, err
	}
	return client, server, nil
}

// tests runs the TCP test and then the UDP test from client to addr.
func tests(ctx context.Context, client Side, addr netip.Addr, opt Options) (*TCP, *UDP, error) {
	base := []string{"-c", addr.String(), "-p", strconv.Itoa(opt.Port), "-t", strconv.Itoa(opt.Seconds), "-J", "--connect-timeout", "3000"}
	out, err := runClient(ctx, client, base, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("TCP test: %w", err)
	}
	tcp, err := ParseTCP(out)
	if err != nil {
		return nil, nil, fmt.Errorf("TCP test: %w", err)
	}
	out, err = runClient(ctx, client, append(base, "-u", "-b", rateArg(opt.UDPRate)), opt)
	if err != nil {
		return &tcp, nil, fmt.Errorf("UDP test: %w", err)
	}
	udp, err := ParseUDP(out, opt.UDPRate)
	if err != nil {
		return &tcp, nil, fmt.Errorf("UDP test: %w", err)
	}
	return &tcp, &udp, nil
}

// runClient runs the iperf3 client, again while it fails the way a server
// that is still starting makes it fail (iperf3 reports an error in its
// JSON), at most opt.Retries times.
func runClient(ctx context.Context, client Side, args []string, opt Options) ([]byte, error) {
	timeout := time.Duration(opt.Seconds)*time.Second + 30*time.Second
	for try := 1; ; try++ {
		out, err := client.Iperf(ctx, args, timeout)
		if err != nil {
			return nil, err
		}
		_, err = decodeIperf(out)
		var ie *IperfError
		if !errors.As(err, &ie) || try >= opt.Retries {
			return out, nil // the parser reports what is wrong, if anything
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(opt.RetryWait):
		}
	}
}

// rateArg is a rate as iperf3 -b takes it, in whole bits per second.
func rateArg(bps float64) string { return strconv.FormatFloat(bps, 'f', 0, 64) }

// Rate prints bits per second for people: 1.23 Gbit/s, 456 Mbit/s.
func Rate(bps float64) string {
	units := []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"}
	i := 0
	for bps >= 1000 && i < len(units)-1 {
		bps /= 1000
		i++
	}
	s := strconv.FormatFloat(bps, 'f', 3-digits(bps), 64)
	return strings.TrimSuffix(s, ".") + " " + units[i]
}

// digits is how many digits v has before the point (1 to 3 here).
func digits(v float64) int {
	switch {
	case v >= 100:
		return 3
	case v >= 10:
		return 2
	}
	return 1
}
