package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

func labCommand() *cli.Command {
	return &cli.Command{
		Name:  "lab",
		Usage: "validate and draw a lab file: networks, VMs (nodes) and checks in one YAML file (up, down, inspect, check come next)",
		Description: "A lab file declares networks (kind nat, isolated or bridge), nodes with their NICs, and checks;\n" +
			"examples/office.lab.yaml is a complete one. Today vmnet validates and draws a lab;\n" +
			"lab up, down, inspect and check, which build, remove, show and test it, come next.",
		Subcommands: []*cli.Command{
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
	out, err := lab.Render(c.Context, l, format)
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
