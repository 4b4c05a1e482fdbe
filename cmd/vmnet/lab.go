package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/templates"
)

func labCommand() *cli.Command {
	accelFlag := &cli.StringFlag{Name: "accel", Value: "auto", Usage: "accelerator: auto (KVM only where a test guest really runs), kvm or tcg"}
	junitFlag := &cli.StringFlag{Name: "junit", Usage: "also write the checks as JUnit XML to `FILE` (for CI)", TakesFile: true}
	return &cli.Command{
		Name:  "lab",
		Usage: "bring up, check, inspect, draw and remove whole labs: networks, VMs (nodes) and checks in one YAML file",
		Description: "A lab file declares networks (kind nat, isolated or bridge), nodes (VMs) with their NICs, and\n" +
			"checks; examples/office.lab.yaml is a complete one. Built-in labs: " + strings.Join(templates.LabNames(), ", ") + ".\n" +
			"Everything a lab makes carries its name, so 'lab down NAME' needs no file.\n\n" +
			"Examples:\n" +
			"   vmnet sandbox up lab && vmnet sandbox exec lab -- vmnet lab up capstone\n" +
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
					"what this up made is removed again.",
				Flags: []cli.Flag{accelFlag,
					&cli.StringSliceFlag{Name: "node", Usage: "bring up only `NODE` (repeat for more) and the networks it uses"},
					&cli.BoolFlag{Name: "no-check", Usage: "skip the checks that end a successful up"},
					junitFlag,
				},
				Action: labUp,
			},
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
			{
				Name:      "check",
				Usage:     "run a lab's checks again: derived and declared, with the failing hop named",
				ArgsUsage: "NAME|FILE",
				Flags:     []cli.Flag{junitFlag},
				Action:    labCheck,
			},
			{
				Name:      "validate",
				Usage:     "check a lab file, changing nothing: every error with its line and field",
				ArgsUsage: "FILE",
				UsageText: "vmnet lab validate examples/office.lab.yaml",
				Action:    labValidate,
			},
			{
				Name:      "graph",
				Usage:     "draw a lab file: nodes as boxes, networks by kind, a line per NIC with its address",
				ArgsUsage: "FILE",
				UsageText: "vmnet lab graph examples/office.lab.yaml --format svg --file office.svg\n" +
					"   vmnet lab graph examples/office.lab.yaml --format mermaid   (paste into a GitHub README)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "format", Value: lab.FormatSVG, Usage: "svg, png (both through Graphviz's dot), dot or mermaid"},
					&cli.StringFlag{Name: "file", Usage: "write the picture to `PATH` instead of standard output"},
				},
				Action: labGraph,
			},
		},
	}
}

func labFile(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usagef("%s: missing FILE, a lab file (for example: vmnet %s examples/office.lab.yaml)", commandPath(c), commandPath(c))
	default:
		return "", usagef("%s: takes one FILE, got %d arguments: %s", commandPath(c), c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
}

func labValidate(c *cli.Context) error {
	path, err := labFile(c)
	if err != nil {
		return err
	}
	l, err := lab.Load(path)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.App.Writer, "lab %s: %d nodes, %d networks, %d checks: valid\n", l.Name, len(l.Nodes), len(l.Networks), len(l.Checks))
	return err
}

func labGraph(c *cli.Context) error {
	path, err := labFile(c)
	if err != nil {
		return err
	}
	format := c.String("format")
	if !slices.Contains(lab.Formats, format) {
		return &errs.FieldError{Field: "--format", Value: format, Problem: "is not a graph format", Fix: "use one of " + strings.Join(lab.Formats, ", ")}
	}
	l, err := lab.Load(path)
	if err != nil {
		return err
	}
	out, err := lab.Render(c.Context, l, nil, format)
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
