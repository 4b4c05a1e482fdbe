package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"vmnet/internal/check"
)

// TestOutputMarkdownOnlyForCheckReports: the commands that print a check
// report take --output markdown (they fail later, for the missing NAME);
// every other command refuses it, naming what it prints instead.
func TestOutputMarkdownOnlyForCheckReports(t *testing.T) {
	for _, args := range [][]string{
		{"--output", "markdown", "check"}, {"-o", "markdown", "lab", "check"}, {"lab", "up", "-o", "markdown"},
		{"vm", "up", "--output", "markdown"},
	} {
		_, errs, code := runCLI(t, args...)
		if code != exitUsage || strings.Contains(errs, "--output") || !strings.Contains(errs, "missing") {
			t.Errorf("vmnet %v: exit %d, stderr %q; want markdown accepted and the missing NAME refused", args, code, errs)
		}
	}
	for _, args := range [][]string{
		{"--output", "markdown", "bridge", "list"}, {"doctor", "-o", "markdown"}, {"-o", "markdown", "lab", "list"},
		{"-o", "markdown", "vm", "list"},
	} {
		out, errs, code := runCLI(t, args...)
		want := "vmnet: --output markdown: only check reports are written as Markdown"
		if code != exitUsage || !strings.HasPrefix(errs, want) || !strings.Contains(errs, "prints table or json") || out != "" {
			t.Errorf("vmnet %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, code, out, errs, want)
		}
	}
	if _, errs, _ := runCLI(t, "-o", "yaml", "check", "x"); !strings.Contains(errs, "use table or json (or markdown, for check reports)") {
		t.Errorf("--output yaml: %q", errs)
	}
}

// TestCheckOutputMarkdown: checkOutput writes the Markdown table for
// --output markdown, also when vm up and lab up pass "table", and returns
// the report's verdict.
func TestCheckOutputMarkdown(t *testing.T) {
	rep := &check.Report{VM: "tiny", Matrix: "basic", Started: time.Now(), Duration: time.Second,
		Results: []check.Result{{Check: check.Check{ID: "ping:host->tiny:eth0", Source: "host", Target: "tiny:eth0",
			Method: check.MethodPing, Expect: "reply"}, Pass: false, Actual: "no reply", Hop: "tap", Cause: check.CauseTapNotAttached}}}
	for _, passed := range []string{"markdown", "table"} {
		var out bytes.Buffer
		app := &cli.App{Name: "vmnet", Writer: &out, Commands: []*cli.Command{{Name: "check"}}}
		set := flag.NewFlagSet("vmnet", flag.ContinueOnError)
		set.String("output", "table", "")
		set.String("junit", "", "")
		if err := set.Parse([]string{"--output", "markdown"}); err != nil {
			t.Fatal(err)
		}
		c := cli.NewContext(app, set, nil)
		c.Command = app.Commands[0]
		err := checkOutput(c, rep, passed)
		if err == nil || !strings.Contains(out.String(), "| ❌ FAIL | host → tiny:eth0 | ping |") {
			t.Errorf("checkOutput(%q) with --output markdown: %v\n%s", passed, err, out.String())
		}
	}
}
