package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// perfJSON is what vmnet perf -o json prints (the fields tests read).
type perfJSON struct {
	Lab      string `json:"lab"`
	Baseline string `json:"baseline"`
	Pairs    []struct {
		Pair          string   `json:"pair"`
		Mode          string   `json:"mode"`
		NetworkKind   string   `json:"network_kind"`
		ContainerMode string   `json:"container_mode"`
		Baseline      bool     `json:"baseline"`
		Ratio         *float64 `json:"ratio"`
		Error         string   `json:"error"`
		TCP           *struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Retransmits   int     `json:"retransmits"`
		} `json:"tcp"`
		UDP *struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			JitterMS      float64 `json:"jitter_ms"`
			LostPercent   float64 `json:"lost_percent"`
		} `json:"udp"`
	} `json:"pairs"`
}

// TestPerfDuo: vmnet perf measures every pair the duo lab allows (host →
// VM on nat0 and on br0, VM → VM on br0) with iperf3 from the tiny image,
// one after another: each has a positive TCP and UDP throughput, and the
// baseline (the VM → VM bridge pair) has ratio 1. Then lab down leaves
// nothing behind (no iperf3 server keeps anything alive).
func TestPerfDuo(t *testing.T) {
	need(t, "iperf3")
	tinyImage(t)
	s := newSandbox(t)
	if _, r := labUp(t, s, "duo", "--no-check"); r.code != 0 {
		t.Fatalf("lab up duo: exit %d\n%s", r.code, r.stderr)
	}
	start := time.Now()
	r := sb(t, s, vmnetBin(t), "perf", "duo", "-o", "json", "--seconds", "2")
	t.Logf("perf duo: exit %d after %s\n%s", r.code, time.Since(start).Round(time.Second), r.stderr)
	var rep perfJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("perf JSON: %v\n%s", err, r.stdout)
	}
	var names []string
	for _, p := range rep.Pairs {
		names = append(names, p.Pair)
		switch {
		case p.Error != "":
			t.Errorf("%s: %s", p.Pair, p.Error)
		case p.TCP == nil || p.TCP.BitsPerSecond <= 0 || p.UDP == nil || p.UDP.BitsPerSecond <= 0 || p.Ratio == nil || *p.Ratio <= 0:
			t.Errorf("%s: no positive TCP and UDP throughput and ratio: %s", p.Pair, r.stdout)
		case p.Baseline && *p.Ratio != 1:
			t.Errorf("%s is the baseline with ratio %v, want 1", p.Pair, *p.Ratio)
		default:
			t.Logf("%s (%s): TCP %.0f Mbit/s, %d retransmits, ratio %.2f; UDP %.1f Mbit/s, jitter %.3f ms, %.2f%% lost",
				p.Pair, p.NetworkKind, p.TCP.BitsPerSecond/1e6, p.TCP.Retransmits, *p.Ratio, p.UDP.BitsPerSecond/1e6, p.UDP.JitterMS, p.UDP.LostPercent)
		}
	}
	if got, want := strings.Join(names, ","), "host-left:nat0,host-left:br0,left-right:br0"; got != want || r.code != 0 {
		t.Errorf("perf duo: exit %d, pairs %s, want exit 0 and %s", r.code, got, want)
	}
	if rep.Baseline != "left-right:br0" {
		t.Errorf("baseline %q, want left-right:br0", rep.Baseline)
	}
	if down := sb(t, s, vmnetBin(t), "lab", "down", "duo"); down.code != 0 {
		t.Fatalf("lab down duo: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	labResidue(t, s)
}
