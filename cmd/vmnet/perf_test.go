package main

import (
	"strings"
	"testing"
)

// TestPerfUsageErrors: bad perf flags are refused with the flag named and
// exit 2, before vmnet connects to libvirt or runs anything.
func TestPerfUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"perf"}, "vmnet: perf: missing FILE|NAME"},
		{[]string{"perf", "duo", "capstone"}, "vmnet: perf: takes one FILE|NAME, got 2 arguments"},
		{[]string{"perf", "duo", "--seconds", "0"}, `vmnet: --seconds "0": is outside 1-600`},
		{[]string{"perf", "duo", "--seconds", "601"}, `vmnet: --seconds "601": is outside 1-600`},
		{[]string{"perf", "duo", "--udp-rate", "fast"}, `vmnet: --udp-rate "fast": is not a rate in bits per second`},
		{[]string{"perf", "duo", "--svg", "/nonexistent-h8/chart.svg"}, `vmnet: --svg "/nonexistent-h8/chart.svg": is in a directory that does not exist`},
		{[]string{"-o", "json", "perf", "duo", "--nope"}, "vmnet: perf: flag provided but not defined: -nope"},
	} {
		out, errs, code := runCLI(t, tc.args...)
		if code != exitUsage || !strings.HasPrefix(errs, tc.want) || out != "" {
			t.Errorf("vmnet %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
}
