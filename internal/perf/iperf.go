package perf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"vmnet/internal/errs"
)

// TCP is one TCP test's result, as the receiver counted it.
type TCP struct {
	BitsPerSecond     float64 `json:"bits_per_second"`      // what arrived
	SentBitsPerSecond float64 `json:"sent_bits_per_second"` // what the client sent
	Retransmits       int     `json:"retransmits"`          // the sender's TCP retransmissions
	Seconds           float64 `json:"seconds"`              // how long the test ran
}

// UDP is one UDP test's result at a set rate, as the receiver counted it.
type UDP struct {
	TargetBitsPerSecond float64 `json:"target_bits_per_second"` // the rate asked for (--udp-rate)
	BitsPerSecond       float64 `json:"bits_per_second"`        // what arrived
	JitterMS            float64 `json:"jitter_ms"`
	LostPercent         float64 `json:"lost_percent"`
	LostPackets         int     `json:"lost_packets"`
	Packets             int     `json:"packets"`
	Seconds             float64 `json:"seconds"`
}

// IperfError is an error iperf3 reported in its JSON ("unable to connect to
// server: Connection refused").
type IperfError struct{ Msg string }

func (e *IperfError) Error() string { return "iperf3: " + e.Msg }

// iperfJSON is the part of iperf3 -J's output vmnet reads.
type iperfJSON struct {
	Error string `json:"error"`
	Start struct {
		TestStart struct {
			Protocol string `json:"protocol"` // TCP or UDP
		} `json:"test_start"`
	} `json:"start"`
	End struct {
		Sum         *iperfSum `json:"sum"`
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
	} `json:"end"`
}

// iperfSum is one of iperf3's end sums.
type iperfSum struct {
	Seconds       float64 `json:"seconds"`
	BitsPerSecond float64 `json:"bits_per_second"`
	Retransmits   int     `json:"retransmits"`
	JitterMS      float64 `json:"jitter_ms"`
	LostPackets   int     `json:"lost_packets"`
	Packets       int     `json:"packets"`
	LostPercent   float64 `json:"lost_percent"`
}

// decodeIperf decodes iperf3 -J output. Whatever comes before the first
// '{' (a serial console may add a stray line) is skipped; an "error"
// field becomes an *IperfError.
func decodeIperf(out []byte) (iperfJSON, error) {
	var j iperfJSON
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		return j, fmt.Errorf("iperf3 printed no JSON: %q", clip(out))
	}
	if err := json.NewDecoder(bytes.NewReader(out[i:])).Decode(&j); err != nil {
		return j, fmt.Errorf("read iperf3's JSON: %w (output: %q)", err, clip(out))
	}
	if j.Error != "" {
		return j, &IperfError{Msg: j.Error}
	}
	return j, nil
}

// clip shortens command output for an error message.
func clip(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// ParseTCP reads the output of iperf3 -c ... -J (a TCP test).
func ParseTCP(out []byte) (TCP, error) {
	j, err := decodeIperf(out)
	if err != nil {
		return TCP{}, err
	}
	sent, recv := j.End.SumSent, j.End.SumReceived
	if p := j.Start.TestStart.Protocol; p != "TCP" || sent == nil || recv == nil {
		return TCP{}, fmt.Errorf("iperf3's JSON is not of a finished TCP test (protocol %q, or no end.sum_sent and end.sum_received)", p)
	}
	return TCP{BitsPerSecond: recv.BitsPerSecond, SentBitsPerSecond: sent.BitsPerSecond, Retransmits: sent.Retransmits, Seconds: recv.Seconds}, nil
}

// ParseUDP reads the output of iperf3 -c ... -u -J. Jitter and loss are
// the server's counts, which iperf3 3.12 puts in end.sum (and newer ones
// in end.sum_received too, preferred when there).
func ParseUDP(out []byte, target float64) (UDP, error) {
	j, err := decodeIperf(out)
	if err != nil {
		return UDP{}, err
	}
	s := j.End.SumReceived
	if s == nil {
		s = j.End.Sum
	}
	if p := j.Start.TestStart.Protocol; p != "UDP" || s == nil {
		return UDP{}, fmt.Errorf("iperf3's JSON is not of a finished UDP test (protocol %q, or no end.sum)", p)
	}
	return UDP{TargetBitsPerSecond: target, BitsPerSecond: s.BitsPerSecond, JitterMS: s.JitterMS,
		LostPercent: s.LostPercent, LostPackets: s.LostPackets, Packets: s.Packets, Seconds: s.Seconds}, nil
}

// rateRE is iperf3's -b syntax that vmnet accepts: a number and an
// optional K, M, G or T (powers of 1000 for rates, as iperf3 has them).
var rateRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)([KMGTkmgt]?)$`)

// MaxUDPRate is the most --udp-rate takes: 10 Tbit/s, far above any link of
// a lab and well inside the unsigned 64-bit rate iperf3 keeps.
const MaxUDPRate = 10e12

// ParseRate reads a --udp-rate value (100M, 1G, 500000) as bits per second.
func ParseRate(s string) (float64, error) {
	m := rateRE.FindStringSubmatch(s)
	bad := &errs.FieldError{Field: "--udp-rate", Value: s, Problem: "is not a rate in bits per second", Form: errs.FlagForm,
		Fix: "write a number with an optional K, M or G (powers of 1000), as iperf3 -b takes it: 100M, 1G"}
	if m == nil {
		return 0, bad
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v <= 0 {
		return 0, bad
	}
	mult := map[string]float64{"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[strings.ToLower(m[2])]
	if v*mult > MaxUDPRate {
		bad.Problem = "is more than 10T bits per second"
		bad.Fix = "ask for a rate the lab's links can carry, 10T at most: 100M, 1G"
		return 0, bad
	}
	return v * mult, nil
}
