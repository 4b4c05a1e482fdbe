package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scaleLab is a lab of n tiny VMs on one Linux bridge: its derived checks
// are host ↔ each VM both ways and every VM pinging every other.
func scaleLab(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: scale%d\nnetworks:\n  mesh: {kind: bridge, address: 192.0.2.1/24}\nnodes:\n", n)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  n%d: {image: tiny, nics: [{net: mesh, address: 192.0.2.%d/24}]}\n", i, 10+i)
	}
	return b.String()
}

// BenchmarkLabScale brings up labs of 1, 2, 4 and 8 tiny VMs on one bridge,
// all nodes of a lab at once, each lab ending with its full-mesh derived
// checks (which must all pass: an 8-VM lab going green is issue 9's scale
// acceptance), and prints, side by side in one run, the wall time from lab
// up's start to every node ready, the time per VM, and the check matrix's
// size and time. The goal is a time per VM that stays flat or falls as N
// grows. Printed, never asserted. Run it with
//
//	VMNET_INTEGRATION=1 go test ./integration -run '^$' -bench LabScale -benchtime 1x
func BenchmarkLabScale(b *testing.B) {
	bin := vmnetBinB(b)
	if out, err := exec.Command(bin, "image", "build", "tiny").CombinedOutput(); err != nil {
		b.Fatalf("image build: %v\n%s", err, out)
	}
	s := "scale-" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command(bin, "sandbox", "up", s).CombinedOutput(); err != nil {
		b.Fatalf("sandbox up: %v\n%s", err, out)
	}
	defer exec.Command(bin, "sandbox", "down", s).Run()
	dir := b.TempDir()
	type row struct {
		n                  int
		wall, ready, check float64
		checks             int
	}
	var rows []row
	for i := 0; i < b.N; i++ {
		rows = rows[:0]
		for _, n := range []int{1, 2, 4, 8} {
			file := filepath.Join(dir, fmt.Sprintf("scale%d.lab.yaml", n))
			if err := os.WriteFile(file, []byte(scaleLab(n)), 0o644); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			cmd := exec.Command(bin, "sandbox", "exec", s, "--", bin, "-o", "json", "lab", "up", file)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			wall := time.Since(start).Seconds()
			var up labUpJSON
			if jerr := json.Unmarshal(out, &up); err != nil || jerr != nil || up.Check.Failed != 0 || up.Check.Total == 0 {
				b.Fatalf("lab up of %d tiny VMs: %v, %v: %d of %d checks failed\nstdout:\n%s\nstderr:\n%s", n, err, jerr, up.Check.Failed, up.Check.Total, out, stderr.Bytes())
			}
			rows = append(rows, row{n, wall, up.Seconds, up.ChecksSeconds, up.Check.Total})
			if out, err := exec.Command(bin, "sandbox", "exec", s, "--", bin, "lab", "down", fmt.Sprintf("scale%d", n)).CombinedOutput(); err != nil {
				b.Fatalf("lab down: %v\n%s", err, out)
			}
		}
	}
	b.StopTimer()
	fmt.Println("lab scale: N tiny VMs on one bridge, started at once, full-mesh derived checks")
	fmt.Println("lab scale: | N | lab up, all green (s) | nodes ready (s) | per VM (s) | checks | checks (s) |")
	fmt.Println("lab scale: | --- | --- | --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("lab scale: | %d | %.1f | %.1f | %.2f | %d | %.1f |\n", r.n, r.wall, r.ready, r.ready/float64(r.n), r.checks, r.check)
	}
	if len(rows) == 4 {
		b.ReportMetric(rows[3].ready/8/rows[0].ready, "per-VM-8÷1")
	}
}
