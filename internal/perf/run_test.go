package perf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// fake is a lab whose sides log what they are asked to do and answer with
// iperf3 JSON at a rate set per server address.
type fake struct {
	log      []string
	bps      map[string]float64 // server address → TCP rate; UDP gets a tenth of it
	refusals int                // the next client runs get "Connection refused"
	udpFails bool               // every UDP run gets an iperf3 error
	sideErr  map[string]error   // endpoint → error from Env.Side
	serveErr map[string]error   // endpoint → error from Serve
	addrErr  map[string]error   // endpoint/net → error from Env.Addr
}

// env is the fake's Env, with duo's addresses.
func (f *fake) env() Env {
	addrs := map[string]string{"host/nat0": "198.51.100.1", "host/br0": "192.0.2.1", "left/nat0": "198.51.100.54",
		"left/br0": "192.0.2.11", "right/br0": "192.0.2.12", "right/nat0": "198.51.100.36"}
	return Env{
		Side: func(e Endpoint) (Side, error) {
			if err := f.sideErr[e.Name()]; err != nil {
				return nil, err
			}
			return fakeSide{e.Name(), f}, nil
		},
		Addr: func(e Endpoint, net string) (netip.Addr, error) {
			if err := f.addrErr[e.Name()+"/"+net]; err != nil {
				return netip.Addr{}, err
			}
			return netip.MustParseAddr(addrs[e.Name()+"/"+net]), nil
		},
	}
}

// fakeSide is one endpoint of the fake.
type fakeSide struct {
	name string
	f    *fake
}

// Iperf logs the client run and answers it.
func (s fakeSide) Iperf(_ context.Context, args []string, timeout time.Duration) ([]byte, error) {
	s.f.log = append(s.f.log, s.name+": iperf3 "+strings.Join(args, " "))
	if timeout < 30*time.Second {
		return nil, fmt.Errorf("timeout %s is shorter than the test and a margin", timeout)
	}
	if s.f.refusals > 0 {
		s.f.refusals--
		return []byte(`{"start": {"connected": []}, "end": {}, "error": "unable to connect to server: Connection refused"}`), nil
	}
	bps := s.f.bps[args[1]]
	if slices.Contains(args, "-u") {
		if s.f.udpFails {
			return []byte(`{"error": "unable to read from the control socket"}`), nil
		}
		return []byte(fmt.Sprintf(`{"start": {"test_start": {"protocol": "UDP"}}, "end": {"sum": {"seconds": 2, "bits_per_second": %g, "jitter_ms": 0.5, "lost_packets": 3, "packets": 300, "lost_percent": 1}}}`, bps/10)), nil
	}
	return []byte(fmt.Sprintf(`{"start": {"test_start": {"protocol": "TCP"}}, "end": {"sum_sent": {"seconds": 2, "bits_per_second": %g, "retransmits": 7}, "sum_received": {"seconds": 2, "bits_per_second": %g}}}`, bps*1.01, bps)), nil
}

// Serve logs the server's start and its stop.
func (s fakeSide) Serve(_ context.Context, port int) (func() error, error) {
	if err := s.f.serveErr[s.name]; err != nil {
		return nil, err
	}
	s.f.log = append(s.f.log, fmt.Sprintf("%s: serve %d", s.name, port))
	return func() error { s.f.log = append(s.f.log, s.name+": stop"); return nil }, nil
}

// quick are options that do not wait between retries.
var quick = Options{Seconds: 2, UDPRate: 50e6, RetryWait: time.Nanosecond}

// newFake has duo's rates: nat 450, host → left on br0 600, left → right 300 Mbit/s.
func newFake() *fake {
	return &fake{bps: map[string]float64{"198.51.100.54": 450e6, "192.0.2.11": 600e6, "192.0.2.12": 300e6}}
}

// TestRunMeasuresEachPairInTurn: for each pair in order, the server
// starts, the client runs TCP then UDP, the server stops, before the next
// pair begins; each ratio is over the VM ↔ VM bridge pair's throughput.
func TestRunMeasuresEachPairInTurn(t *testing.T) {
	f := newFake()
	pairs := Plan(builtin(t, "duo"))
	rep, err := Run(context.Background(), f.env(), "duo", pairs, quick)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"left: serve 5201",
		"host: iperf3 -c 198.51.100.54 -p 5201 -t 2 -J --connect-timeout 3000",
		"host: iperf3 -c 198.51.100.54 -p 5201 -t 2 -J --connect-timeout 3000 -u -b 50000000",
		"left: stop",
		"left: serve 5201",
		"host: iperf3 -c 192.0.2.11 -p 5201 -t 2 -J --connect-timeout 3000",
		"host: iperf3 -c 192.0.2.11 -p 5201 -t 2 -J --connect-timeout 3000 -u -b 50000000",
		"left: stop",
		"right: serve 5201",
		"left: iperf3 -c 192.0.2.12 -p 5201 -t 2 -J --connect-timeout 3000",
		"left: iperf3 -c 192.0.2.12 -p 5201 -t 2 -J --connect-timeout 3000 -u -b 50000000",
		"right: stop",
	}
	if !slices.Equal(f.log, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(f.log, "\n"), strings.Join(want, "\n"))
	}
	if rep.Baseline != "left-right:br0" || rep.Err() != nil || rep.TestSeconds != 2 || rep.UDPRateBitsPerSecond != 50e6 {
		t.Errorf("report: baseline %q, err %v, %d s, %v bit/s", rep.Baseline, rep.Err(), rep.TestSeconds, rep.UDPRateBitsPerSecond)
	}
	for i, ratio := range []float64{1.5, 2, 1} {
		r := rep.Pairs[i]
		if r.Ratio == nil || !near(*r.Ratio, ratio) || r.Baseline != (i == 2) || r.TCP.Retransmits != 7 || r.UDP.LostPackets != 3 || r.UDP.TargetBitsPerSecond != 50e6 {
			t.Errorf("%s: %+v (ratio %v), want ratio %v", r.Pair, r, r.Ratio, ratio)
		}
	}
	if r := rep.Pairs[0]; r.Address != "198.51.100.54" || r.Client != "host" || r.Server != "left" || r.NetworkKind != "nat" || r.Mode != "host ↔ VM, nat" {
		t.Errorf("first pair: %+v", r)
	}
}

// TestRunRetriesWhileServerStarts: a client refused while its server
// starts tries again and succeeds; one refused every time gives up after
// Retries tries, fails its pair only, and its server is still stopped.
func TestRunRetriesWhileServerStarts(t *testing.T) {
	pairs := Plan(builtin(t, "duo"))[1:]
	f := newFake()
	f.refusals = 2
	rep, err := Run(context.Background(), f.env(), "duo", pairs, quick)
	if err != nil || rep.Err() != nil || len(f.log) != 4+2+4 {
		t.Fatalf("2 refusals: %v, %v; calls:\n%s", err, rep.Err(), strings.Join(f.log, "\n"))
	}
	f = newFake()
	f.refusals = 3
	opt := quick
	opt.Retries = 3
	rep, _ = Run(context.Background(), f.env(), "duo", pairs, opt)
	if e := rep.Pairs[0].Error; !strings.Contains(e, "TCP test: iperf3: unable to connect to server: Connection refused") {
		t.Errorf("refused 3 times of 3: error %q", e)
	}
	if f.log[4] != "left: stop" || rep.Pairs[1].Error != "" || rep.Pairs[1].TCP == nil {
		t.Errorf("after a failed pair: calls\n%s\nnext pair %+v", strings.Join(f.log, "\n"), rep.Pairs[1])
	}
	var fe *FailedError
	if !errors.As(rep.Err(), &fe) || fe.Failed != 1 || fe.Total != 2 {
		t.Errorf("Err() = %v, want 1 of 2 failed", rep.Err())
	}
}

// TestRunFailuresStayInTheirPair: an address, a side or a server that
// cannot be had fails that pair with its reason; a failed baseline leaves
// no ratios; a UDP failure keeps the TCP result.
func TestRunFailuresStayInTheirPair(t *testing.T) {
	pairs := Plan(builtin(t, "duo"))
	f := newFake()
	f.addrErr = map[string]error{"left/nat0": errors.New("node left has no address on nat0 (eth0) yet")}
	f.serveErr = map[string]error{"right": errors.New("no iperf3 there")}
	rep, err := Run(context.Background(), f.env(), "duo", pairs, quick)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := []string{"node left has no address on nat0 (eth0) yet", "", "start the iperf3 server on right: no iperf3 there"}
	for i, w := range wantErr {
		if r := rep.Pairs[i]; r.Error != w || r.Ratio != nil {
			t.Errorf("%s: error %q, ratio %v; want error %q and no ratio (the baseline failed)", r.Pair, r.Error, r.Ratio, w)
		}
	}
	if !rep.Pairs[2].Baseline || rep.Baseline != "left-right:br0" || rep.Pairs[1].TCP == nil {
		t.Errorf("report %+v", rep)
	}

	f = newFake()
	f.udpFails = true
	f.sideErr = map[string]error{"host": errors.New("iperf3 is not installed")}
	rep, _ = Run(context.Background(), f.env(), "duo", pairs, quick)
	if r := rep.Pairs[0]; r.Error != "iperf3 is not installed" {
		t.Errorf("%s: %q", r.Pair, r.Error)
	}
	if r := rep.Pairs[2]; r.TCP == nil || r.UDP != nil || !strings.HasPrefix(r.Error, "UDP test: iperf3: unable to read") || r.Ratio == nil || *r.Ratio != 1 {
		t.Errorf("UDP failure: %+v", r)
	}
}

// TestRunRefusesUnknownBaseline before any pair runs.
func TestRunRefusesUnknownBaseline(t *testing.T) {
	f := newFake()
	opt := quick
	opt.Baseline = "right-left:br0"
	if _, err := Run(context.Background(), f.env(), "duo", Plan(builtin(t, "duo")), opt); err == nil || len(f.log) != 0 {
		t.Errorf("unknown baseline: %v after %d calls", err, len(f.log))
	}
}

// TestOptionsDefaults: 5 s tests, 100 Mbit/s UDP, iperf3's port.
func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Seconds != 5 || o.UDPRate != 100e6 || o.Port != 5201 || o.Retries != 5 || o.RetryWait != 500*time.Millisecond {
		t.Errorf("defaults: %+v", o)
	}
}
