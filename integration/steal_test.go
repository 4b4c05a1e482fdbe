package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// cpuTimes is the host's aggregate CPU line of /proc/stat, in ticks.
type cpuTimes struct{ total, steal uint64 }

// readCPU reads the "cpu" line of /proc/stat: user nice system idle iowait
// irq softirq steal ...; steal is time the hypervisor ran someone else
// while this machine had work.
func readCPU(t testing.TB) cpuTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatalf("read /proc/stat: %v", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseCPU(t, line)
}

func parseCPU(t testing.TB, line string) cpuTimes {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		t.Fatalf("/proc/stat's first line is %q, want the aggregate cpu line", line)
	}
	var c cpuTimes
	for i, s := range f[1:] {
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("/proc/stat: field %d of %q: %v", i+1, line, err)
		}
		c.total += n
		if i == 7 {
			c.steal = n
		}
	}
	return c
}

// stealSince says which share of the host's CPU time since from the
// hypervisor gave to others: on a shared cloud machine the same code boots
// slower when it is high, so a benchmark prints it beside its times.
func stealSince(t testing.TB, from cpuTimes) string {
	now := readCPU(t)
	total, steal := now.total-from.total, now.steal-from.steal
	if total == 0 {
		return "host CPU steal: no ticks elapsed"
	}
	return fmt.Sprintf("host CPU steal during the run: %.0f%% (time the hypervisor gave to other machines; high steal slows every row)", 100*float64(steal)/float64(total))
}

func TestParseCPU(t *testing.T) {
	c := parseCPU(t, "cpu  100 5 50 800 10 1 2 32 7 0")
	if c.total != 1000 || c.steal != 32 {
		t.Fatalf("parseCPU = %+v, want total 1000 (guest not counted twice), steal 32", c)
	}
	if s := stealSince(t, cpuTimes{}); !strings.Contains(s, "% (") {
		t.Fatalf("stealSince since boot = %q, want a percentage", s)
	}
}
