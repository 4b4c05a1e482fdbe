package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/lab"
	"vmnet/internal/labrun"
	"vmnet/internal/perf"
	"vmnet/internal/vmspec"
)

func perfCommand() *cli.Command {
	return &cli.Command{
		Name:      "perf",
		Usage:     "iperf3 between a lab's VMs and containers, pair by pair, against its bridge pair",
		ArgsUsage: "NAME|FILE",
		Description: "Runs iperf3 between pairs of a lab that is up, one pair at a time: TCP for --seconds, then UDP\n" +
			"at --udp-rate. The pairs follow from the lab: host -> VM on each nat, isolated and bridge network,\n" +
			"VM -> VM on each bridge and macvtap network two nodes share (the host cannot reach a macvtap guest\n" +
			"through its parent, so a peer guest measures it). Then one pair per network mode of the lab's\n" +
			"containers (NODE/CONTAINER): VM -> its podman bridge container (or container -> container on one\n" +
			"podman network), host -> a network host container (its server in the VM's namespace), host -> a\n" +
			"macvlan or ipvlan container on its parent network (its own VM cannot reach it). A pair is named\n" +
			"CLIENT-SERVER:NET; the client sends. Each pair is printed with its ratio to the baseline: the podman\n" +
			"bridge container pair when there is one, else the VM -> VM pair on a bridge network: absolute\n" +
			"numbers depend on the machine (TCG or KVM), ratios much less. The guests need iperf3 (the tiny\n" +
			"image has it; capstone's container rootfs has it, for its containers and the VM), and so does the\n" +
			"host (Debian's iperf3).\n\n" +
			"Examples:\n" +
			"   vmnet sandbox exec lab -- vmnet perf duo\n" +
			"   vmnet sandbox exec lab -- vmnet perf duo --pairs host-left:br0,left-right:br0 --seconds 10\n" +
			"   vmnet sandbox exec lab -- vmnet perf duo -o json --svg duo-perf.svg\n" +
			"   vmnet sandbox exec lab -- vmnet perf modes --pairs modes-modes/plain:podman,host-modes/lanapi:br0",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "pairs", Usage: "measure only these `PAIRS` (CLIENT-SERVER:NET, comma-separated; default: all the lab allows)"},
			&cli.IntFlag{Name: "seconds", Value: perf.DefaultSeconds, Usage: "length of each test (TCP and UDP) in `N` seconds, 1-600"},
			&cli.StringFlag{Name: "udp-rate", Value: "100M", Usage: "the UDP test's send `RATE` in bits per second (K, M, G: powers of 1000)"},
			&cli.StringFlag{Name: "baseline", Usage: "compare with this `PAIR` (default: the podman bridge container pair, else the VM -> VM pair on a bridge network)"},
			&cli.StringFlag{Name: "svg", Usage: "also draw the results as a bar chart in `FILE` (SVG)", TakesFile: true},
		},
		Action: perfRun,
	}
}

// perfOptions reads and checks the flags, before anything runs.
func perfOptions(c *cli.Context) (perf.Options, error) {
	n := c.Int("seconds")
	if n < 1 || n > 600 {
		return perf.Options{}, &errs.FieldError{Field: "--seconds", Value: fmt.Sprint(n), Problem: "is outside 1-600",
			Fix: "give each test 1 to 600 seconds; 5 is the default", Form: errs.FlagForm}
	}
	rate, err := perf.ParseRate(c.String("udp-rate"))
	if err != nil {
		return perf.Options{}, err
	}
	if err := checkSVGPath(c.String("svg")); err != nil {
		return perf.Options{}, err
	}
	return perf.Options{Seconds: n, UDPRate: rate, Baseline: c.String("baseline")}, nil
}

// perfLab loads the lab: a file as given, or the file lab up saved for NAME.
func perfLab(stateDir, ref string) (lab.Lab, error) {
	if !lab.IsBuiltinName(ref) {
		return lab.Load(ref)
	}
	if err := vmspec.ValidateName(ref); err != nil {
		return lab.Lab{}, err
	}
	return labrun.Saved(stateDir, ref)
}

func perfRun(c *cli.Context) error {
	ref, err := labRef(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	opt, err := perfOptions(c)
	if err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	l, err := perfLab(env.StateDir, ref)
	if err != nil {
		return err
	}
	pairs, err := perf.Select(l, c.StringSlice("pairs"))
	if err != nil {
		return err
	}
	penv, err := perf.LabEnv(env, l)
	if err != nil {
		return err
	}
	rep, err := perf.Run(c.Context, penv, l.Name, pairs, opt)
	if err != nil {
		return err
	}
	return perfOutput(c, rep, format)
}

// perfOutput prints the report and draws the chart; its error is the
// report's (some pair failed) once everything is written.
func perfOutput(c *cli.Context, rep *perf.Report, format string) error {
	if path := c.String("svg"); path != "" {
		var b bytes.Buffer
		if err := perf.SVG(&b, rep); err != nil {
			return err
		}
		if err := fsperm.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write the chart: %w", err)
		}
		fmt.Fprintf(c.App.ErrWriter, "perf %s: chart in %s\n", rep.Lab, path)
	}
	var err error
	if format == "json" {
		err = writeJSON(c.App.Writer, rep)
	} else {
		err = perf.Table(c.App.Writer, rep)
	}
	if err != nil {
		return err
	}
	return rep.Err()
}

// checkSVGPath refuses an --svg FILE in a directory that does not exist
// before the pairs run, rather than after their minutes.
func checkSVGPath(path string) error {
	if path == "" {
		return nil
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return &errs.FieldError{Field: "--svg", Value: path, Problem: "is in a directory that does not exist", Form: errs.FlagForm,
			Fix: "make the directory first, or write the chart somewhere that exists, for example ./perf.svg"}
	}
	return nil
}
