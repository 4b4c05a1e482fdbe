package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"vmnet/internal/doctor"
	"vmnet/internal/image"
	"vmnet/internal/labrun"
	"vmnet/internal/network"
	"vmnet/internal/perf"
	"vmnet/internal/sandbox"
	"vmnet/internal/vm"
)

// outputFormat reads the global --output flag from any command's context:
// table or json for every command, markdown only for those that print a
// check report (checkReportCommands).
func outputFormat(c *cli.Context) (string, error) {
	f := "table"
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("output") {
			f = ctx.String("output")
			break
		}
	}
	switch f {
	case "table", "json":
		return f, nil
	case "markdown":
		cmd := commandPath(c)
		if cmd == "" { // the app's Before: the command is still in the arguments
			cmd = typedCommand(c)
		}
		if checkReportCommands[cmd] {
			return f, nil
		}
		return "", usagef("--output markdown: only check reports are written as Markdown (vmnet check, "+
			"lab check, lab up, vm up); %s prints table or json", strings.TrimSpace("vmnet "+cmd))
	}
	return "", usagef("--output %q: use table or json (or markdown, for check reports)", f)
}

// checkReportCommands are the commands that print a check report, which
// --output markdown renders as a GitHub-flavoured table.
var checkReportCommands = map[string]bool{"check": true, "lab check": true, "lab up": true, "vm up": true}

// typedCommand is the command named in the arguments not parsed yet, e.g.
// "lab check" for "lab check capstone"; flags are skipped.
func typedCommand(c *cli.Context) string {
	var parts []string
	cmds := c.App.Commands
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			continue
		}
		var found *cli.Command
		for _, cmd := range cmds {
			if cmd.HasName(a) {
				found = cmd
			}
		}
		if found == nil {
			break
		}
		parts, cmds = append(parts, found.Name), found.Subcommands
	}
	return strings.Join(parts, " ")
}

// removedView is what a removal (sandbox down, image rm) prints as JSON.
type removedView struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"` // removed, or absent, nothing to do
}

// jsonOutput is every type that --output json prints. The compiler keeps
// it complete (writeJSON takes nothing else); TestJSONOutputConvention walks
// each with reflection.
type jsonOutput interface {
	bridgeView | []bridgeView | resultView |
		*network.Result | []network.Info |
		vmUpView | *vm.DownResult | []vm.Info |
		sandbox.Result | []sandbox.Info |
		imageBuildView | []imageBuildView | []image.Image | removedView |
		[]doctor.Finding |
		labUpView | *labrun.DownResult | []labrun.Summary | *labrun.Inspection | *labrun.SaveResult |
		*perf.Report
}

// writeJSON prints v for --output json. Every type it prints follows one
// convention: snake_case field names, and a duration or size carries its
// unit in its name (ready_seconds, duration_ms, size_bytes). (Check reports
// go through report.JSON, which follows it too.)
func writeJSON[T jsonOutput](w io.Writer, v T) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table prints aligned columns for people.
type table struct {
	rows [][]string
}

func newTable(header ...string) *table { return &table{rows: [][]string{header}} }

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeOutcome prints what a command did for people: the outcome line,
// then one "  - " line per change.
func writeOutcome(w io.Writer, line string, changes []string) {
	fmt.Fprintln(w, line)
	for _, ch := range changes {
		fmt.Fprintf(w, "  - %s\n", ch)
	}
}
