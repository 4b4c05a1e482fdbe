package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/check"
	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/internal/labrun"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

func labCommand() *cli.Command {
	accelFlag := &cli.StringFlag{Name: "accel", Value: "auto", Usage: "auto (KVM where a test guest runs), kvm or tcg"}
	junitFlag := &cli.StringFlag{Name: "junit", Usage: "also write the checks as JUnit XML to `FILE` (for CI)", TakesFile: true}
	return &cli.Command{
		Name:  "lab",
		Usage: "bring up, check, inspect, draw and remove labs: networks, VMs and checks in one file",
		Description: "A lab file declares networks (kind nat, isolated or bridge), nodes (VMs) with their NICs, and\n" +
			"checks; examples/office.lab.yaml is a complete one.\n" +
			"Built-in labs: " + strings.Join(templates.LabNames(), ", ") + ".\n" +
			"Everything a lab makes carries its name, so 'lab down NAME' needs no file.\n\n" +
			"Examples:\n" +
			"   vmnet sandbox up lab && vmnet sandbox exec lab -- vmnet lab up capstone\n" +
			"   vmnet sandbox exec lab -- vmnet lab check capstone --output markdown\n" +
			"   vmnet lab up examples/office.lab.yaml --node client\n" +
			"   vmnet lab inspect office -o json\n" +
			"   vmnet lab down office",
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "bring a lab up (every node at once) and end with its checks",
				ArgsUsage: "FILE|NAME",
				Description: "Validates the whole lab before anything changes, builds each image once, makes the lab's\n" +
					"missing networks and bridges, boots every node at once, and ends with the check matrix: the\n" +
					"derived checks (every NIC host <-> VM both ways, VM <-> VM on every shared network, the app's\n" +
					"own) and the declared ones. A second up of a running lab changes nothing. When a node fails,\n" +
					"what this up made is removed again. With --node, the checks are those that need no other node.\n" +
					"A sandbox has no way out to Debian's mirror: build the images first, outside it, with\n" +
					"'vmnet image build --lab FILE|NAME'.\n" +
					accelHelp + "\n\n" +
					"Examples:\n" +
					"   vmnet image build --lab capstone && vmnet sandbox up lab\n" +
					"   vmnet sandbox exec lab -- vmnet lab up capstone --junit capstone.xml\n" +
					"   vmnet sandbox exec lab -- vmnet lab up examples/office.lab.yaml --node client",
				Flags: []cli.Flag{accelFlag,
					&cli.StringSliceFlag{Name: "node", Usage: "bring up only `NODE` (repeat for more) and the networks it uses"},
					&cli.BoolFlag{Name: "no-check", Usage: "skip the checks that end a successful up"},
					&cli.DurationFlag{Name: "converge", Usage: "retry failing checks this long (0: once)", DefaultText: "30s; TCG: 2m0s"},
					junitFlag,
					&cli.StringFlag{Name: "markdown", Usage: "also write the checks as GitHub Markdown to `FILE` (job summaries)", TakesFile: true},
					&cli.BoolFlag{Name: "from-save", Usage: "restore a saved lab (new secrets), not boot it"},
				},
				Action: labUp,
			},
			labSaveCommand(),
			{
				Name:        "down",
				Aliases:     []string{"rm"},
				Usage:       "remove everything a lab made, found by its tag (no file needed)",
				ArgsUsage:   "NAME",
				Description: "Removes the lab's VMs (disks, logs, DHCP reservations), the networks and bridges it made and its\nsaved file. Removing a lab that is gone succeeds; down also cleans up after an up killed midway.",
				Action:      labDown,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list the labs that are up, with their nodes and networks",
				Action:  labList,
			},
			{
				Name:      "inspect",
				Usage:     "show a lab's nodes (state, NICs, addresses) and networks",
				ArgsUsage: "NAME",
				Action:    labInspect,
			},
			labCheckCommand(junitFlag),
			{
				Name:      "validate",
				Usage:     "check a lab file, changing nothing: every error with its line and field",
				ArgsUsage: "FILE|NAME",
				UsageText: "vmnet lab validate examples/office.lab.yaml   (or a built-in lab: vmnet lab validate modes)",
				Action:    labValidate,
			},
			labGraphCommand(),
		},
	}
}

// labCheckCommand is lab check: the lab's checks again, in any report form.
func labCheckCommand(junitFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "run a lab's checks again: derived and declared, with the failing hop named",
		ArgsUsage: "NAME|FILE",
		Description: "Prints the checks as a table, or with the global --output as json or markdown (a GitHub table,\n" +
			"for $GITHUB_STEP_SUMMARY); exits 0 only when every check passes.\n\n" +
			"Examples:\n" +
			"   vmnet lab check capstone\n" +
			"   vmnet lab check capstone --output markdown >> \"$GITHUB_STEP_SUMMARY\"\n" +
			"   vmnet lab check office --junit office.xml --converge 30s",
		Flags: []cli.Flag{junitFlag,
			&cli.DurationFlag{Name: "converge", Usage: "rerun failing checks until this long (0: once)"},
		},
		Action: labCheck,
	}
}

// labGraphCommand is lab graph: the picture of a lab, live when it is up.
func labGraphCommand() *cli.Command {
	return &cli.Command{
		Name:      "graph",
		Usage:     "draw a lab: nodes, networks, a line per NIC; live, coloured by its last checks",
		ArgsUsage: "FILE|NAME",
		Description: "Draws from the file alone (a NAME is the lab file 'lab up' saved, or a built-in lab). When the\n" +
			"lab is up here, the picture is live: each node's state, each NIC's address now (DHCP leases too),\n" +
			"and each NIC's line coloured by the last 'lab up' or 'lab check' run: green when every check\n" +
			"crossing it passed, red and dashed when one failed (with its cause), grey and dotted when no\n" +
			"result is known. A failed VM-to-VM check is red only at the end whose own host checks failed too.",
		UsageText: "vmnet lab graph examples/office.lab.yaml --format svg --file office.svg\n" +
			"   vmnet lab graph examples/office.lab.yaml --format mermaid   (paste into a GitHub README)\n" +
			"   vmnet lab graph duo --format png --file duo.png             (live, inside the lab's sandbox)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: lab.FormatSVG, Usage: "svg, png (both through Graphviz's dot), dot or mermaid"},
			&cli.StringFlag{Name: "file", Usage: "write the picture to `PATH` instead of standard output"},
		},
		Action: labGraph,
	}
}

func labValidate(c *cli.Context) error {
	ref, err := labRef(c)
	if err != nil {
		return err
	}
	l, err := lab.LoadRef(ref)
	if err != nil {
		return err
	}
	// The one look at this host: whether its kernel has the link types
	// the lab's host containers need (a throwaway namespace, nothing kept).
	if err := labrun.CheckHost(l, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "lab %s: %s, %s, %s: valid\n", l.Name,
		plural(len(l.Nodes)+len(l.HostContainers), "node"), plural(len(l.Networks), "network"), plural(len(l.Checks), "declared check"))
	return err
}

func labGraph(c *cli.Context) error {
	ref, err := labRef(c)
	if err != nil {
		return err
	}
	format := c.String("format")
	if !slices.Contains(lab.Formats, format) {
		return &errs.FieldError{Field: "--format", Value: format, Problem: "is not a graph format", Fix: "use one of " + strings.Join(lab.Formats, ", ")}
	}
	l, err := graphLab(ref)
	if err != nil {
		return err
	}
	out, err := lab.Render(c.Context, l, liveOverlay(c, l), format)
	if err != nil {
		return err
	}
	if file := c.String("file"); file != "" {
		if err := os.WriteFile(file, out, 0o644); err != nil {
			return errs.WithHint(fmt.Errorf("--file: %w", err), "give a path in a directory that exists and that you may write")
		}
		return nil
	}
	_, err = c.App.Writer.Write(out)
	return err
}

// graphLab reads what lab graph draws: a file by path; by name, the lab
// file up saved (what runs), else the built-in lab. Neither needs libvirt.
func graphLab(ref string) (lab.Lab, error) {
	if !lab.IsBuiltinName(ref) {
		return lab.Load(ref)
	}
	if err := vmspec.ValidateName(ref); err != nil {
		return lab.Lab{}, err
	}
	l, err := labrun.Saved("", ref)
	if errors.Is(err, labrun.ErrNoRecord) {
		return lab.LoadRef(ref)
	}
	return l, err
}

// liveOverlay is what lab graph draws over a lab that is up here: node
// states and addresses from libvirt, link colours from the saved check
// run. It is nil, and the picture the file's, when libvirt is not reachable
// or no node of the lab runs.
func liveOverlay(c *cli.Context, l lab.Lab) *lab.Live {
	env, done, err := vmEnv(c, false)
	if err != nil {
		slog.Debug("lab graph: drawing the file alone", "lab", l.Name, "reason", err)
		return nil
	}
	defer done()
	in, err := labrun.Inspect(env, l.Name)
	if err != nil || !slices.ContainsFunc(in.Nodes, func(n labrun.NodeInfo) bool { return n.State == "running" }) {
		slog.Debug("lab graph: drawing the file alone: the lab is not up", "lab", l.Name, "err", err)
		return nil
	}
	last, err := labrun.LoadLastReport(env.StateDir, l.Name)
	if err != nil && !errors.Is(err, labrun.ErrNoLastReport) {
		fmt.Fprintf(c.App.ErrWriter, "warning: links drawn without check results: %v\n", err)
	}
	return labrun.Overlay(l, in, last)
}

// saveLastCheck keeps rep as lab name's last check run for lab graph. A
// failed save is a warning: the checks ran, and their result stands.
func saveLastCheck(c *cli.Context, stateDir, name string, rep *check.Report) {
	if err := labrun.SaveLastReport(stateDir, name, rep); err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", err)
	}
}

// plural is "1 node" or "3 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// labSaveCommand is 'vmnet lab save'.
func labSaveCommand() *cli.Command {
	return &cli.Command{
		Name:      "save",
		Usage:     "save a running lab's VMs with their memory, for a warm start with 'lab up --from-save'",
		ArgsUsage: "NAME",
		Description: "Stops every VM of the lab (found by its tag) with its memory and devices kept in libvirt's\n" +
			"managed save image; the networks stay. 'vmnet lab up NAME --from-save' restores them in seconds,\n" +
			"sets each guest's clock, gives every secret (the capstone's database password) a new value and\n" +
			"ends with the full check matrix. A lab file whose addresses, MACs or resources changed since the\n" +
			"save is refused by the restore: 'vmnet lab down NAME' and a plain 'lab up' start it afresh.\n\n" +
			"Examples:\n" +
			"   vmnet sandbox exec lab -- vmnet lab save capstone\n" +
			"   vmnet sandbox exec lab -- vmnet lab up capstone --from-save",
		Action: labSave,
	}
}
