package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vmnet/internal/accel"
	"vmnet/internal/check"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/lab"
	"vmnet/internal/labrun"
	"vmnet/internal/report"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// labRef is the one FILE|NAME argument of lab up and lab check.
func labRef(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usagef("%s: missing FILE|NAME, a lab file or a built-in lab (for example: vmnet %s capstone)", commandPath(c), commandPath(c))
	default:
		return "", usagef("%s: takes one FILE|NAME, got %d arguments: %s", commandPath(c), c.NArg(), strings.Join(c.Args().Slice(), " "))
	}
}

// labName is the one NAME argument of lab down and lab inspect.
func labName(c *cli.Context) (string, error) {
	name, err := oneName(c)
	if err != nil {
		return "", err
	}
	if err := vmspec.ValidateName(name); err != nil {
		return "", err
	}
	return name, nil
}

func labUp(c *cli.Context) error {
	ref, err := labRef(c)
	if err != nil {
		return err
	}
	l, err := lab.LoadRef(ref)
	if err != nil {
		return err
	}
	env, done, err := upEnv(c)
	if err != nil {
		return err
	}
	defer done()
	up := labrun.Up
	if c.Bool("from-save") {
		up = labrun.Restore
	}
	res, err := up(c.Context, env, l, labrun.Options{Nodes: c.StringSlice("node")})
	if err != nil {
		return err
	}
	var rep *check.Report
	if !c.Bool("no-check") {
		start := time.Now()
		fmt.Fprintf(env.Progress, "checking lab %s\n", l.Name)
		converge := c.Duration("converge")
		if !c.IsSet("converge") {
			converge = accel.Converge(env.Accel.Type)
		}
		if rep, err = check.Lab(c.Context, env, l, check.Options{Converge: converge, Nodes: c.StringSlice("node")}); err != nil {
			return err
		}
		saveLastCheck(c, env.StateDir, l.Name, rep)
		res.ChecksSeconds = time.Since(start).Seconds()
		if err := writeMarkdown(c.String("markdown"), rep); err != nil {
			return err
		}
	}
	return labUpOutput(c, res, rep, env.Accel)
}

// labUpOutput prints what lab up did and the checks it ended with.
func labUpOutput(c *cli.Context, res *labrun.UpResult, rep *check.Report, ac accel.Choice) error {
	if f, _ := outputFormat(c); f == "json" {
		out := labUpView{UpResult: res, Accel: ac}
		if rep != nil {
			j := report.ToJSON(rep)
			out.Check = &j
		}
		if err := writeJSON(c.App.Writer, out); err != nil {
			return err
		}
		if path := c.String("junit"); path != "" && rep != nil {
			if err := writeJUnit(path, rep); err != nil {
				return err
			}
		}
		if rep != nil {
			return rep.Err()
		}
		return nil
	}
	w := c.App.Writer
	writeOutcome(w, fmt.Sprintf("lab %s: %s, every node ready after %.1fs", res.Lab, res.Outcome, res.Seconds), res.Changes)
	t := newTable("NODE", "OUTCOME", "READY", "NIC", "ON", "MAC", "ADDRESS")
	for _, n := range res.Nodes {
		for i, nic := range n.NICs {
			node, outcome, ready := n.Node, n.Outcome, fmt.Sprintf("%.1fs", n.ReadySeconds)
			if i > 0 {
				node, outcome, ready = "", "", ""
			}
			t.row(node, outcome, ready, fmt.Sprintf("eth%d", nic.Index), nicOn(nic), nic.MAC, dash(nic.Address))
		}
	}
	if err := t.write(w); err != nil {
		return err
	}
	if rep == nil {
		return nil
	}
	fmt.Fprintln(w)
	return checkOutput(c, rep, "table")
}

// labUpView is what lab up prints as JSON: the result and the checks.
type labUpView struct {
	*labrun.UpResult
	Accel accel.Choice       `json:"accel"` // type kvm or qemu (TCG), and why
	Check *report.JSONReport `json:"check,omitempty"`
}

// checkMarkdownPath refuses a --markdown FILE that cannot be written, before
// the lab comes up.
func checkMarkdownPath(path string) error {
	if err := checkJUnitPath(path); err != nil {
		var fe *errs.FieldError
		if errors.As(err, &fe) {
			fe.Field, fe.Fix = "--markdown", strings.ReplaceAll(fe.Fix, "results.xml", "checks.md")
		}
		return err
	}
	return nil
}

// writeMarkdown writes the checks as GitHub Markdown to path (none when
// empty), whole or not at all, for a CI job's summary: the same run that
// decided lab up's exit code, so the summary never disagrees with it.
func writeMarkdown(path string, rep *check.Report) error {
	if path == "" {
		return nil
	}
	var b bytes.Buffer
	if err := report.Markdown(&b, rep); err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write --markdown %s: %w", path, err)
	}
	return nil
}

// nicOn says what a NIC is on: a libvirt network, a bridge, or a host
// interface through macvtap.
func nicOn(n vm.NICInfo) string {
	switch {
	case n.Bridge != "":
		return "bridge " + n.Bridge
	case n.Parent != "":
		return "macvtap " + n.Parent + " (" + n.Mode + ")"
	}
	return "network " + n.Network
}

func labDown(c *cli.Context) error {
	name, err := labName(c)
	if err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	res, err := labrun.Down(c.Context, env, name)
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, res)
	}
	writeOutcome(c.App.Writer, fmt.Sprintf("lab %s: %s", res.Lab, res.Outcome), res.Changes)
	return nil
}

func labList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("lab list takes no arguments")
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	labs, err := labrun.List(env)
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, labs)
	}
	t := newTable("LAB", "NODES", "RUNNING", "NETWORKS MADE", "FILE SAVED")
	for _, s := range labs {
		t.row(s.Lab, dash(strings.Join(s.Nodes, ", ")), fmt.Sprint(s.Running), dash(strings.Join(s.Networks, ", ")), yesNo(s.File))
	}
	return t.write(c.App.Writer)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func labInspect(c *cli.Context) error {
	name, err := labName(c)
	if err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	in, err := labrun.Inspect(env, name)
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, in)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "lab %s\n", in.Lab)
	t := newTable("NODE", "STATE", "NIC", "ON", "MAC", "ADDRESS", "FROM")
	for _, n := range in.Nodes {
		if len(n.NICs) == 0 {
			t.row(n.Node, n.State, "-", "-", "-", "-", "-")
		}
		for i, nic := range n.NICs {
			node, state := n.Node, n.State
			if i > 0 {
				node, state = "", ""
			}
			t.row(node, state, fmt.Sprintf("eth%d", nic.Index), nicOn(nic), nic.MAC, dash(nic.Address), dash(nic.Source))
		}
	}
	if err := t.write(w); err != nil {
		return err
	}
	if err := writeContainers(w, in.Nodes); err != nil {
		return err
	}
	fmt.Fprintln(w)
	nt := newTable("NETWORK", "KIND", "SUBNET", "MADE BY THE LAB")
	for _, n := range in.Networks {
		nt.row(n.Name, dash(n.Kind), dash(n.Subnet), yesNo(n.Made))
	}
	return nt.write(w)
}

func labCheck(c *cli.Context) error {
	ref, err := labRef(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if err := checkJUnitPath(c.String("junit")); err != nil {
		return err
	}
	var l lab.Lab
	if !lab.IsBuiltinName(ref) {
		if l, err = lab.Load(ref); err != nil {
			return err
		}
	} else if err := vmspec.ValidateName(ref); err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	if l.Name == "" {
		if l, err = labrun.Saved(env.StateDir, ref); err != nil {
			return err
		}
	}
	rep, err := check.Lab(c.Context, env, l, check.Options{Converge: c.Duration("converge"), Nodes: c.StringSlice("node")})
	if err != nil {
		return err
	}
	saveLastCheck(c, env.StateDir, l.Name, rep)
	return checkOutput(c, rep, format)
}

// writeContainers prints the nodes' containers as the lab plans them, when
// any node has some.
func writeContainers(w io.Writer, nodes []labrun.NodeInfo) error {
	t := newTable("NODE", "CONTAINER", "MODE", "ON", "ADDRESS", "PORTS")
	any := false
	for _, n := range nodes {
		for _, c := range n.Containers {
			t.row(n.Node, c.Name, c.Mode, dash(c.Network), dash(c.Address), dash(strings.Join(c.Ports, ", ")))
			any = true
		}
	}
	if !any {
		return nil
	}
	fmt.Fprintln(w)
	return t.write(w)
}

// labSave saves a running lab's VMs for 'lab up --from-save'.
func labSave(c *cli.Context) error {
	name, err := labName(c)
	if err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	res, err := labrun.Save(c.Context, env, name)
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "lab %s: saved in %.1fs; restore it with 'vmnet lab up %s --from-save'\n", name, res.Seconds, name)
	t := newTable("NODE", "OUTCOME", "SECONDS")
	for _, n := range res.Nodes {
		t.row(n.Name, n.Outcome, fmt.Sprintf("%.1f", n.Seconds))
	}
	return t.write(c.App.Writer)
}
