package perf

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

// captured reads real iperf3 3.12 -J output from testdata: *-loopback on
// the host's lo in a throwaway namespace, *-tiny between the duo lab's two
// tiny guests over br0 (through the serial console), refused against a
// port nobody listened on.
func captured(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// near reports whether a and b agree to a millionth.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestParseTCP: the received rate is the throughput, the sender's the
// sent rate, and retransmits are the sender's.
func TestParseTCP(t *testing.T) {
	cases := []struct {
		file       string
		recv, sent float64
		retrans    int
	}{
		{"tcp-loopback.json", 8106575178.039855, 8127867233.437623, 15},
		{"tcp-tiny.json", 326287829.40329677, 329227604.6558711, 0},
	}
	for _, c := range cases {
		got, err := ParseTCP(captured(t, c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if !near(got.BitsPerSecond, c.recv) || !near(got.SentBitsPerSecond, c.sent) || got.Retransmits != c.retrans {
			t.Errorf("%s: %+v, want received %v, sent %v, %d retransmits", c.file, got, c.recv, c.sent, c.retrans)
		}
		if got.Seconds < 2 || got.Seconds > 4 || got.SentBitsPerSecond < got.BitsPerSecond {
			t.Errorf("%s: %+v: seconds or sent rate off", c.file, got)
		}
	}
}

// TestParseUDP: throughput, jitter and loss as the server counted them.
func TestParseUDP(t *testing.T) {
	got, err := ParseUDP(captured(t, "udp-tiny.json"), 100e6)
	if err != nil {
		t.Fatal(err)
	}
	want := UDP{TargetBitsPerSecond: 100e6, BitsPerSecond: 64724784.70783739, JitterMS: 0.05176120826426795,
		LostPercent: 1.88498957609451, LostPackets: 217, Packets: 11511, Seconds: 2.021323}
	if got != want {
		t.Errorf("udp-tiny: %+v\nwant %+v", got, want)
	}
	lo, err := ParseUDP(captured(t, "udp-loopback.json"), 100e6)
	if err != nil || lo.LostPackets != 32 || lo.Packets != 763 || !near(lo.JitterMS, 0.02609685928386698) {
		t.Errorf("udp-loopback: %+v, %v", lo, err)
	}
}

// TestParseRefusesWrongOutput: iperf3's own error is an *IperfError with
// its message; a TCP run is not a UDP result nor the other way round; no
// JSON at all says what came instead; a stray console line before the
// JSON is skipped.
func TestParseRefusesWrongOutput(t *testing.T) {
	_, err := ParseTCP(captured(t, "refused.json"))
	var ie *IperfError
	if !errors.As(err, &ie) || ie.Msg != "unable to connect to server: Connection refused" {
		t.Errorf("refused: %v, want iperf3's error", err)
	}
	if _, err := ParseUDP(captured(t, "tcp-tiny.json"), 1); err == nil || !strings.Contains(err.Error(), `protocol "TCP"`) {
		t.Errorf("a TCP run as UDP: %v", err)
	}
	if _, err := ParseTCP(captured(t, "udp-tiny.json")); err == nil || !strings.Contains(err.Error(), `protocol "UDP"`) {
		t.Errorf("a UDP run as TCP: %v", err)
	}
	if _, err := ParseTCP([]byte("sh: iperf3: not found\n")); err == nil || !strings.Contains(err.Error(), "iperf3: not found") {
		t.Errorf("no JSON: %v, want the output quoted", err)
	}
	if _, err := ParseTCP([]byte("{\"start\": {")); err == nil || !strings.Contains(err.Error(), "read iperf3's JSON") {
		t.Errorf("cut JSON: %v", err)
	}
	noisy := append([]byte("[   12.3] random: crng init done\n"), captured(t, "tcp-tiny.json")...)
	if got, err := ParseTCP(noisy); err != nil || got.BitsPerSecond == 0 {
		t.Errorf("JSON after a kernel line: %+v, %v", got, err)
	}
}

// TestParseRate: iperf3's -b syntax in powers of 1000; anything else is
// invalid input naming the flag.
func TestParseRate(t *testing.T) {
	good := map[string]float64{"100M": 100e6, "1G": 1e9, "1.5g": 1.5e9, "500k": 500e3, "64000": 64000, "2T": 2e12}
	for in, want := range good {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// Above iperf3's uint64 rate, or any link a lab has: found by
	// FuzzParseRate in CI, accepted as 7.8e300 bits per second.
	huge := strings.Repeat("7", 301)
	for _, in := range []string{"", "0", "fast", "100MB", "-1M", "1e6", "1.M", " 1M", huge, "20T", "10001G"} {
		_, err := ParseRate(in)
		if !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "--udp-rate") {
			t.Errorf("ParseRate(%q) = %v, want a --udp-rate field error", in, err)
		}
	}
}

// TestRate: two or three significant digits and the right unit.
func TestRate(t *testing.T) {
	for bps, want := range map[float64]string{326287829.4: "326 Mbit/s", 8106575178: "8.11 Gbit/s", 64724784.7: "64.7 Mbit/s", 999: "999 bit/s", 1500: "1.50 kbit/s", 0: "0.00 bit/s"} {
		if got := Rate(bps); got != want {
			t.Errorf("Rate(%v) = %q, want %q", bps, got, want)
		}
	}
}
