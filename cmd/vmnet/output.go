package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// outputFormat reads the global --output flag from any command's context.
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
	}
	return "", usagef("--output %q: use table or json", f)
}

func writeJSON(w io.Writer, v any) error {
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

// hintError is a failure with advice for the user.
type hintError struct {
	msg, hint string
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Hint() string  { return e.hint }
