package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/app/registry"
	"vmnet/internal/check"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/report"
	"vmnet/internal/vmspec"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "prove a VM's lab works: ping, TCP, HTTP and DNS between host, VM and containers",
		ArgsUsage: "NAME",
		Description: "Runs a matrix of checks against the running VM NAME, each with its source, target, method,\n" +
			"expected and actual result and time, and exits 0 only when every check passes.\n" +
			"  basic:    host → VM and VM → host ping on every NIC\n" +
			"  capstone: basic, plus VM → each container, each container → VM and → host (plain bridges),\n" +
			"            name resolution on app-net, host → http://VM:8080/ returning the API's JSON with\n" +
			"            the database's version (proxy → api → db); VM:5432 and VM:5000 closed to the host\n" +
			"A failed check names the hop that failed and its most likely cause, one of:\n" +
			"  " + causeList() + "\n" +
			"with the evidence the probes saw.\n\n" +
			"Examples:\n" +
			"   vmnet check capstone\n" +
			"   vmnet check tiny --output json\n" +
			"   vmnet check capstone --output markdown >> \"$GITHUB_STEP_SUMMARY\"\n" +
			"   vmnet check capstone --junit results.xml",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "matrix", Value: check.MatrixAuto, Usage: "auto, basic or capstone (auto: by the VM's spec)"},
			&cli.StringFlag{Name: "junit", Usage: "also write the results as JUnit XML to `FILE` (for CI)", TakesFile: true},
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "guest commands run at once (1 without a guest agent)"},
		},
		Action: checkRun,
	}
}

// causeList is the cause vocabulary, wrapped for the help text.
func causeList() string {
	var lines []string
	line := ""
	for i, c := range check.Causes {
		word := string(c)
		if i < len(check.Causes)-1 {
			word += ","
		}
		if line != "" && len(line)+1+len(word) > 96 {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return strings.Join(append(lines, line), "\n  ")
}

func checkRun(c *cli.Context) error {
	if c.NArg() == 0 {
		return usagef("check: missing NAME, the VM to check (for example: vmnet check capstone)")
	}
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := vmspec.ValidateName(name); err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	apps := registry.Builtin()
	if m := c.String("matrix"); m != check.MatrixAuto && m != check.MatrixBasic {
		if _, ok := apps.Lookup(m); !ok {
			return usagef("check: --matrix %q: use auto, basic or %s", m, apps)
		}
	}
	if c.Int("parallel") < 1 {
		return usagef("check: --parallel %d: use 1 or more", c.Int("parallel"))
	}
	if err := checkJUnitPath(c.String("junit")); err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	rep, err := check.VM(c.Context, env, name, c.String("matrix"), check.Options{Parallel: c.Int("parallel"), Apps: apps})
	if err != nil {
		return err
	}
	return checkOutput(c, rep, format)
}

// checkOutput writes a check report the way the command line asks (--junit
// FILE when the command has that flag, then the table, the JSON or the
// Markdown on stdout) and returns the report's verdict: nil only when every check
// passed. vm up ends with it too.
func checkOutput(c *cli.Context, rep *check.Report, format string) error {
	if path := c.String("junit"); path != "" {
		if err := writeJUnit(path, rep); err != nil {
			return err
		}
	}
	if f, _ := outputFormat(c); f == "markdown" { // vm up and lab up pass "table" for their human form
		format = f
	}
	var err error
	switch format {
	case "json":
		err = report.JSON(c.App.Writer, rep)
	case "markdown":
		err = report.Markdown(c.App.Writer, rep)
	default:
		err = report.Table(c.App.Writer, rep)
	}
	if err != nil {
		return err
	}
	return rep.Err()
}

// checkJUnitPath refuses a --junit FILE whose directory does not exist
// before the checks run, rather than after they took their minute.
func checkJUnitPath(path string) error {
	if path == "" {
		return nil
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return &errs.FieldError{Field: "--junit", Value: path, Problem: "is in a directory that does not exist",
			Fix: "make the directory first, or write the file somewhere that exists, for example ./results.xml"}
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return &errs.FieldError{Field: "--junit", Value: path, Problem: "is a directory", Fix: "name a file, for example " + filepath.Join(path, "results.xml")}
	}
	return nil
}

// writeJUnit writes the JUnit file whole or not at all: a CI job must never
// read half a report.
func writeJUnit(path string, rep *check.Report) error {
	var b bytes.Buffer
	if err := report.JUnit(&b, rep); err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write --junit %s: %w", path, err)
	}
	return nil
}
