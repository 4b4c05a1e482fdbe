package perf

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table writes the report for people: a row per pair with TCP in Gbit/s,
// its ratio to the baseline, retransmits, and the UDP test's throughput,
// jitter and loss; then what the ratio is against, and each failed pair's
// error.
func Table(w io.Writer, rep *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PAIR\tMODE\tTCP Gbit/s\tRATIO\tRETRANSMITS\tUDP Mbit/s (of %g)\tJITTER ms\tLOST %%\n", rep.UDPRateBitsPerSecond/1e6)
	for _, r := range rep.Pairs {
		fmt.Fprintln(tw, strings.Join(tableRow(r), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, ratioNote(rep))
	for _, r := range rep.Pairs {
		if r.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", r.Pair, r.Error)
		}
	}
	return nil
}

// tableRow is one pair's cells.
func tableRow(r Result) []string {
	row := []string{r.Pair, r.Mode, "-", "-", "-", "-", "-", "-"}
	if r.TCP != nil {
		row[2] = fmt.Sprintf("%.3f", r.TCP.BitsPerSecond/1e9)
		row[4] = fmt.Sprint(r.TCP.Retransmits)
	}
	if r.Ratio != nil {
		row[3] = fmt.Sprintf("%.2f", *r.Ratio)
	}
	if r.Baseline {
		row[3] += " (baseline)"
	}
	if r.UDP != nil {
		row[5] = fmt.Sprintf("%.1f", r.UDP.BitsPerSecond/1e6)
		row[6] = fmt.Sprintf("%.3f", r.UDP.JitterMS)
		row[7] = fmt.Sprintf("%.2f", r.UDP.LostPercent)
	}
	if r.Error != "" {
		row[1] += " (failed)"
	}
	return row
}

// ratioNote says what the ratios are against, and why there are ratios.
func ratioNote(rep *Report) string {
	base := baselineResult(rep)
	switch {
	case base == nil:
		return "no ratios: no pair crosses a bridge network (name one with --baseline)"
	case base.TCP == nil:
		return fmt.Sprintf("no ratios: the baseline %s could not be measured", base.Pair)
	}
	return fmt.Sprintf("RATIO: TCP throughput over %s (%s) in this run; %d s per test. Absolute numbers depend on the machine, ratios less.",
		base.Pair, base.Mode, rep.TestSeconds)
}

// baselineResult is the baseline pair's result, or nil.
func baselineResult(rep *Report) *Result {
	for i := range rep.Pairs {
		if rep.Pairs[i].Baseline {
			return &rep.Pairs[i]
		}
	}
	return nil
}
