package perf

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/perf -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run with -update if the change is intended:\n%s", name, got)
	}
}

// ratio is a ratio's pointer.
func ratio(v float64) *float64 { return &v }

// sampleReport is a run of the duo lab plus a failed macvtap pair: one
// pair of each kind the chart colours, a baseline, a failure.
func sampleReport() *Report {
	udp := func(bps, jitter, lost float64) *UDP {
		return &UDP{TargetBitsPerSecond: 100e6, BitsPerSecond: bps, JitterMS: jitter, LostPercent: lost, LostPackets: int(lost * 100), Packets: 10000, Seconds: 5}
	}
	return &Report{Lab: "duo", TestSeconds: 5, UDPRateBitsPerSecond: 100e6, Baseline: "left-right:br0", DurationSeconds: 41.5, Pairs: []Result{
		{Pair: "host-left:nat0", Client: "host", Server: "left", Network: "nat0", NetworkKind: "nat", Mode: "host ↔ VM, nat", Address: "198.51.100.54",
			TCP: &TCP{BitsPerSecond: 412e6, SentBitsPerSecond: 415e6, Retransmits: 12, Seconds: 5}, UDP: udp(71.2e6, 0.061, 0.8), Ratio: ratio(412.0 / 326)},
		{Pair: "host-left:br0", Client: "host", Server: "left", Network: "br0", NetworkKind: "bridge", Mode: "host ↔ VM, bridge", Address: "192.0.2.11",
			TCP: &TCP{BitsPerSecond: 446e6, SentBitsPerSecond: 447e6, Retransmits: 5, Seconds: 5}, UDP: udp(73.9e6, 0.048, 0.2), Ratio: ratio(446.0 / 326)},
		{Pair: "left-right:br0", Client: "left", Server: "right", Network: "br0", NetworkKind: "bridge", Mode: "VM ↔ VM, bridge", Address: "192.0.2.12", Baseline: true,
			TCP: &TCP{BitsPerSecond: 326e6, SentBitsPerSecond: 329e6, Retransmits: 0, Seconds: 5}, UDP: udp(64.7e6, 0.052, 1.88), Ratio: ratio(1)},
		{Pair: "left-right:wan", Client: "left", Server: "right", Network: "wan", NetworkKind: "macvtap", Mode: "VM ↔ VM, macvtap", Address: "192.0.2.22",
			Error: "node right of lab duo is not running"},
	}}
}

// TestTableGolden: the table people read.
func TestTableGolden(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, sampleReport()); err != nil {
		t.Fatal(err)
	}
	golden(t, "duo.table", b.Bytes())
	for _, want := range []string{"1.00 (baseline)", "0.446", "1.37", "left-right:wan failed: node right", "VM ↔ VM, macvtap (failed)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}

// TestTableNoBaseline: without a bridge pair the table says why there are
// no ratios.
func TestTableNoBaseline(t *testing.T) {
	rep := sampleReport()
	rep.Pairs = rep.Pairs[:1]
	rep.Pairs[0].Ratio = nil
	var b bytes.Buffer
	Table(&b, rep)
	if !strings.Contains(b.String(), "no ratios: no pair crosses a bridge network") {
		t.Errorf("table without a baseline:\n%s", b.String())
	}
}

// TestJSONGolden: snake_case names, units in the names.
func TestJSONGolden(t *testing.T) {
	b, err := json.MarshalIndent(sampleReport(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "duo.json", append(b, '\n'))
	for _, want := range []string{`"bits_per_second": 326000000`, `"jitter_ms": 0.052`, `"lost_percent": 1.88`, `"baseline": "left-right:br0"`, "\"ratio\": 1\n", `"test_seconds": 5`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

// svgBar matches a bar: its width and fill.
var svgBar = regexp.MustCompile(`<rect x="270" y="(\d+)" width="([0-9.]+)" height="24" rx="3" fill="(#[0-9a-f]+)"`)

// TestSVGGolden: the chart is well-formed XML (and xmllint agrees where
// it is installed), names every pair, has one bar per measured pair whose
// length is proportional to its throughput, coloured by network kind, and
// says why the failed pair has none.
func TestSVGGolden(t *testing.T) {
	rep := sampleReport()
	var b bytes.Buffer
	if err := SVG(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "duo.svg", b.Bytes())
	wellFormed(t, b.Bytes())
	bars := svgBar.FindAllStringSubmatch(b.String(), -1)
	if len(bars) != 3 {
		t.Fatalf("%d bars, want 3 (the failed pair has none)", len(bars))
	}
	w0, _ := strconv.ParseFloat(bars[0][2], 64)
	for i, bar := range bars {
		w, _ := strconv.ParseFloat(bar[2], 64)
		want := rep.Pairs[i].TCP.BitsPerSecond / rep.Pairs[0].TCP.BitsPerSecond
		if got := w / w0; got < want-0.01 || got > want+0.01 {
			t.Errorf("bar %d is %.3f of bar 0, want %.3f", i, got, want)
		}
		if c := kindColor(rep.Pairs[i].NetworkKind)[0]; bar[3] != c {
			t.Errorf("bar %d fill %s, want %s", i, bar[3], c)
		}
	}
	for _, want := range []string{">host-left:nat0<", ">left-right:wan<", "×1.37", "baseline = 1×", "not measured: node right", "macvtap network", "of 100 Mbit/s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

// wellFormed fails unless svg parses as XML, and xmllint (when there)
// accepts it.
func wellFormed(t *testing.T, svg []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Log("xmllint is not installed (apt-get install libxml2-utils): encoding/xml's check only")
		return
	}
	p := filepath.Join(t.TempDir(), "chart.svg")
	os.WriteFile(p, svg, 0o644)
	if out, err := exec.Command("xmllint", "--noout", p).CombinedOutput(); err != nil {
		t.Errorf("xmllint --noout: %v\n%s", err, out)
	}
}

// TestSVGEscapesAndEmpty: names with XML's special characters stay text,
// and a report where nothing was measured still draws (no bars, no NaN).
func TestSVGEscapesAndEmpty(t *testing.T) {
	rep := sampleReport()
	for i := range rep.Pairs {
		rep.Pairs[i].TCP, rep.Pairs[i].Ratio, rep.Pairs[i].Error = nil, nil, `<b>"x" & 'y'</b>`
	}
	var b bytes.Buffer
	if err := SVG(&b, rep); err != nil {
		t.Fatal(err)
	}
	wellFormed(t, b.Bytes())
	if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "<b>") || svgBar.MatchString(b.String()) {
		t.Errorf("empty chart:\n%s", b.String())
	}
}

// TestScale: the axis ends on a whole step, 3 to 6 steps.
func TestScale(t *testing.T) {
	for _, c := range []struct{ max, top, step float64 }{
		{446e6, 500e6, 100e6}, {8.1e9, 10e9, 2e9}, {1e9, 1e9, 0.2e9}, {30e6, 30e6, 10e6}, {0, 0, 0},
	} {
		top, step := scale(c.max)
		if !near(top, c.top) || !near(step, c.step) {
			t.Errorf("scale(%g) = %g, %g; want %g, %g", c.max, top, step, c.top, c.step)
		}
	}
}

// modesReport is a run of the modes lab (the numbers of the README's run):
// host → VM pairs and one pair per container network mode, the bridge
// container pair the baseline.
func modesReport() *Report {
	row := func(pair, client, server, net, kind, cmode, mode string, mbps, udp float64) Result {
		return Result{Pair: pair, Client: client, Server: server, Network: net, NetworkKind: kind, ContainerMode: cmode, Mode: mode,
			TCP: &TCP{BitsPerSecond: mbps * 1e6, SentBitsPerSecond: mbps * 1e6, Retransmits: 1, Seconds: 5},
			UDP: &UDP{TargetBitsPerSecond: 100e6, BitsPerSecond: udp * 1e6, JitterMS: 0.1, LostPercent: 100 - udp, Seconds: 5}, Ratio: ratio(mbps / 386)}
	}
	rep := &Report{Lab: "modes", TestSeconds: 5, UDPRateBitsPerSecond: 100e6, Baseline: "modes-modes/plain:podman", DurationSeconds: 110, Pairs: []Result{
		row("host-modes:nat0", "host", "modes", "nat0", "nat", "", "host ↔ VM, nat", 404, 84.4),
		row("host-modes:br0", "host", "modes", "br0", "bridge", "", "host ↔ VM, bridge", 658, 81.1),
		row("modes-modes/plain:podman", "modes", "modes/plain", "podman", "podman", "bridge", "VM → container, podman bridge", 386, 34.9),
		row("host-modes/hostnet:br0", "host", "modes/hostnet", "br0", "bridge", "host", "host → container, network host", 509, 74.8),
		row("host-modes/lanapi:br0", "host", "modes/lanapi", "br0", "bridge", "macvlan", "host → container, macvlan", 840, 52.2),
		row("host-modes/natipv:nat0", "host", "modes/natipv", "nat0", "nat", "ipvlan", "host → container, ipvlan l2", 688, 63.0),
	}}
	rep.Pairs[2].Baseline = true
	return rep
}

// TestModesGolden: container pairs are coloured by their container's mode
// (a host → macvlan pair is not a bridge network's colour), the legend
// wraps onto a second row inside the chart's width and the chart grows to
// hold it, a pair name too long for the label column is fitted to it, and
// the table and JSON name the baseline and each pair's container mode.
func TestModesGolden(t *testing.T) {
	rep := modesReport()
	var b bytes.Buffer
	if err := SVG(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "modes.svg", b.Bytes())
	wellFormed(t, b.Bytes())
	bars := svgBar.FindAllStringSubmatch(b.String(), -1)
	want := []string{"nat", "bridge", "container bridge", "container host", "container macvlan", "container ipvlan"}
	for i, bar := range bars {
		if c := kindColor(want[i])[0]; bar[3] != c || (i > 1 && c == kindColor("bridge")[0]) {
			t.Errorf("bar %d (%s) fill %s, want %s's own colour", i, rep.Pairs[i].Pair, bar[3], want[i])
		}
	}
	if rows := legendRows(rep); len(rows) != 2 || len(rows[0])+len(rows[1]) != 6 {
		t.Errorf("legend rows %v, want 6 swatches on 2 rows", rows)
	}
	// A 24-character pair name fits before the bars unsqueezed (librsvg,
	// which renders the README's PNG, ignores textLength); a longer one is
	// squeezed into the room.
	if !strings.Contains(b.String(), `fill="#222222">modes-modes/plain:podman<`) {
		t.Errorf("modes-modes/plain:podman is squeezed; it fits")
	}
	if got := fitLabel(strings.Repeat("x", 40), 14*0.66); got != ` textLength="240" lengthAdjust="spacingAndGlyphs"` {
		t.Errorf("a 40-character bold label: %q, want it squeezed into 240", got)
	}
	for _, want := range []string{`height="582"`, ">container, macvlan<", "×2.18"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	b.Reset()
	Table(&b, rep)
	golden(t, "modes.table", b.Bytes())
	if !strings.Contains(b.String(), "over modes-modes/plain:podman (VM → container, podman bridge)") {
		t.Errorf("table does not name the baseline:\n%s", b.String())
	}
	j, _ := json.MarshalIndent(rep, "", "  ")
	if !bytes.Contains(j, []byte(`"container_mode": "macvlan"`)) || !bytes.Contains(j, []byte(`"baseline": "modes-modes/plain:podman"`)) {
		t.Errorf("JSON lacks the container mode or the baseline:\n%s", j)
	}
}
