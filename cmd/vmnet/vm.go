package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"vmnet/internal/accel"
	"vmnet/internal/app/registry"
	"vmnet/internal/check"
	"vmnet/internal/domain"
	"vmnet/internal/lab"
	"vmnet/internal/labenv"
	"vmnet/internal/labrun"
	"vmnet/internal/report"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

func vmCommand() *cli.Command {
	accelFlag := &cli.StringFlag{Name: "accel", Value: "auto", Usage: "auto (KVM where a test guest runs), kvm or tcg"}
	return &cli.Command{
		Name:  "vm",
		Usage: "boot, list, inspect and remove QEMU guests from profiles or spec files",
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "make a VM run and wait until it is ready",
				ArgsUsage: "PROFILE|FILE",
				Description: "Boots the VM a built-in profile (" + strings.Join(profileNames(), ", ") + ") or a spec file describes:\n" +
					"ensures the networks and bridges a built-in profile needs, the guest image (built once, cached),\n" +
					"a qcow2 overlay, DHCP reservations and the libvirt domain, then waits until the guest is ready\n" +
					"(console line, DHCP lease or guest agent) and prints each NIC's address. A second up of a running\n" +
					"VM changes nothing. 'vm up capstone' brings up the built-in one-node lab capstone (as 'lab up\n" +
					"capstone' does, with vm up's output). The boot may take the spec's timeout, else 30 s under KVM,\n" +
					"ten times that under TCG.\n" + accelHelp + "\n\n" +
					"Examples:\n" +
					"   vmnet sandbox up lab && vmnet sandbox exec lab -- vmnet vm up tiny\n" +
					"   vmnet vm up ./web.yaml --accel tcg",
				Flags: []cli.Flag{accelFlag,
					&cli.BoolFlag{Name: "no-check", Usage: "skip the connectivity checks that end a successful up"},
					&cli.StringFlag{Name: "junit", Usage: "also write the checks as JUnit XML to `FILE`"},
				},
				Action: vmUp,
			},
			{
				Name:        "down",
				Aliases:     []string{"rm"},
				Usage:       "stop and remove a VM with its disks, logs and DHCP reservations",
				ArgsUsage:   "NAME",
				Description: "Removing a VM that does not exist succeeds; down also cleans up after an up that was killed midway.",
				Action:      vmDown,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list VMs with their state and every NIC's network, MAC and address",
				Action:  vmList,
			},
			{
				Name:      "xml",
				Usage:     "print the libvirt domain XML vmnet would define (touches nothing)",
				ArgsUsage: "PROFILE|FILE",
				Flags:     []cli.Flag{accelFlag},
				Action:    vmXML,
			},
			{
				Name:      "console",
				Usage:     "print the VM's serial console log",
				ArgsUsage: "NAME",
				Action:    vmConsole,
			},
			{
				Name:      "exec",
				Usage:     "run a command in the VM through the QEMU guest agent",
				ArgsUsage: "NAME -- COMMAND [ARGS...]",
				Flags:     []cli.Flag{&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "how long the command may run"}},
				Action:    vmExec,
			},
		},
	}
}

func profileNames() []string {
	names := templates.ProfileNames()
	if len(names) == 0 {
		return []string{"tiny"}
	}
	return names
}

// accelHelp says what --accel does, for the descriptions of the commands
// that have it (the flag's own line stays short).
var accelHelp = "--accel auto runs a test guest under KVM once per boot (its answer is kept in\n" +
	accel.DefaultCache + "); kvm is forced once /dev/kvm opens and creates a VM;\n" +
	"tcg probes nothing."

// upEnv refuses a bad --accel, --junit or --markdown (for the commands
// that have them) before connecting to libvirt, then opens the environment
// with the accelerator probed and says which one was chosen, and why.
func upEnv(c *cli.Context) (vm.Env, func(), error) {
	if err := accel.ValidateWant(c.String("accel")); err != nil {
		return vm.Env{}, nil, err
	}
	if err := checkJUnitPath(c.String("junit")); err != nil {
		return vm.Env{}, nil, err
	}
	if err := checkMarkdownPath(c.String("markdown")); err != nil {
		return vm.Env{}, nil, err
	}
	env, done, err := vmEnv(c, true)
	if err != nil {
		return vm.Env{}, nil, err
	}
	fmt.Fprintf(env.Progress, "accelerator: %s (%s)\n", env.Accel.Type, env.Accel.Reason)
	return env, done, nil
}

// vmEnv opens the environment the vm and check commands act in; probe
// also picks the accelerator (--accel), for commands that start a guest.
func vmEnv(c *cli.Context, probe bool) (vm.Env, func(), error) {
	o := labenv.Options{Progress: progressWriter(c)}
	if probe {
		o.Accel = c.String("accel")
	}
	return labenv.Open(c.Context, o)
}

// progressWriter is stderr, so stdout stays the result (and valid JSON).
func progressWriter(c *cli.Context) io.Writer { return c.App.ErrWriter }

func loadSpec(c *cli.Context) (vmspec.Spec, error) {
	arg, err := oneName(c)
	if err != nil {
		return vmspec.Spec{}, err
	}
	return vmspec.Load(arg)
}

func vmUp(c *cli.Context) error {
	if l, ok := oneNodeLab(c.Args().First()); ok && c.NArg() == 1 {
		return vmUpLab(c, l)
	}
	spec, err := loadSpec(c)
	if err != nil {
		return err
	}
	env, done, err := upEnv(c)
	if err != nil {
		return err
	}
	defer done()
	res, err := vm.Up(c.Context, env, spec)
	if err != nil {
		return err
	}
	// up ends with the checks: a lab is up when it is proved to work.
	var rep *check.Report
	if !c.Bool("no-check") {
		start := time.Now()
		fmt.Fprintf(env.Progress, "checking %s\n", res.Name)
		if rep, err = check.VM(c.Context, env, res.Name, check.MatrixAuto, check.Options{Apps: registry.Builtin()}); err != nil {
			return err
		}
		res.Phases = append(res.Phases, vm.Phase{Name: "checks", Seconds: time.Since(start).Seconds()})
	}
	return vmUpOutput(c, res, rep)
}

// oneNodeLab is the built-in lab that `vm up NAME` brings up: one whose
// only node is called NAME, as the capstone lab's is (the design card's
// `vm up capstone` is a one-node lab).
func oneNodeLab(arg string) (lab.Lab, bool) {
	if !lab.IsBuiltinName(arg) {
		return lab.Lab{}, false
	}
	if _, err := templates.Lab(arg); err != nil {
		return lab.Lab{}, false
	}
	l, err := lab.LoadRef(arg)
	if err != nil || len(l.NodeOrder) != 1 || l.NodeOrder[0] != arg {
		return lab.Lab{}, false
	}
	return l, true
}

// vmUpLab is vm up of a one-node lab: the lab comes up (tagged, so `lab
// down` removes it too), its checks run, and the output is vm up's.
func vmUpLab(c *cli.Context, l lab.Lab) error {
	env, done, err := upEnv(c)
	if err != nil {
		return err
	}
	defer done()
	lr, err := labrun.Up(c.Context, env, l, labrun.Options{})
	if err != nil {
		return err
	}
	res := lr.Nodes[0].UpResult
	res.Changes = append(lr.Changes, res.Changes...)
	var rep *check.Report
	if !c.Bool("no-check") {
		start := time.Now()
		fmt.Fprintf(env.Progress, "checking %s\n", res.Name)
		if rep, err = check.Lab(c.Context, env, l, check.Options{}); err != nil {
			return err
		}
		// vm up's report names the VM's own matrix, as it always did.
		rep.Matrix = check.MatrixBasic
		if app := l.Nodes[res.Name].App; app != "" {
			rep.Matrix = app // an app's matrix is named after it
		}
		res.Phases = append(res.Phases, vm.Phase{Name: "checks", Seconds: time.Since(start).Seconds()})
	}
	return vmUpOutput(c, res, rep)
}

// vmUpOutput prints what vm up did and the checks it ended with, and
// returns their verdict.
func vmUpOutput(c *cli.Context, res *vm.UpResult, rep *check.Report) error {
	if f, _ := outputFormat(c); f == "json" {
		out := vmUpView{UpResult: res, ReadySeconds: res.Ready.Seconds()}
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
	writeOutcome(w, fmt.Sprintf("vm %s: %s, ready after %.1fs", res.Name, res.Outcome, res.Ready.Seconds()), res.Changes)
	if len(res.Phases) > 0 {
		var parts []string
		for _, p := range res.Phases {
			parts = append(parts, fmt.Sprintf("%s %.1fs", p.Name, p.Seconds))
		}
		fmt.Fprintf(w, "phases: %s\n", strings.Join(parts, ", "))
	}
	if err := writeNICs(w, res.NICs); err != nil {
		return err
	}
	if rep == nil {
		return nil
	}
	fmt.Fprintln(w)
	return checkOutput(c, rep, "table")
}

// vmUpView is what vm up prints as JSON: the result, the time to ready in
// seconds (vm.UpResult keeps a time.Duration), and the checks.
type vmUpView struct {
	*vm.UpResult
	ReadySeconds float64            `json:"ready_seconds"`
	Check        *report.JSONReport `json:"check,omitempty"`
}

func writeNICs(w io.Writer, nics []vm.NICInfo) error {
	t := newTable("NIC", "ON", "MAC", "ADDRESS", "FROM")
	for _, n := range nics {
		t.row(fmt.Sprintf("eth%d", n.Index), nicOn(n), n.MAC, dash(n.Address), dash(n.Source))
	}
	return t.write(w)
}

func vmDown(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := vmspec.ValidateName(name); err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	labName := ""
	if infos, err := vm.List(env); err == nil {
		if i := slices.IndexFunc(infos, func(in vm.Info) bool { return in.Name == name }); i >= 0 {
			labName = infos[i].Lab
		}
	}
	res, err := vm.Down(c.Context, env, name)
	if err != nil {
		return err
	}
	if forgot, err := labrun.Forget(env, labName); err != nil {
		return err
	} else if forgot {
		res.Changes = append(res.Changes, "remove lab "+labName+"'s saved file (its last VM is gone)")
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, res)
	}
	writeOutcome(c.App.Writer, fmt.Sprintf("vm %s: %s", res.Name, res.Outcome), res.Changes)
	return nil
}

func vmList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("vm list takes no arguments")
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	infos, err := vm.List(env)
	if err != nil {
		return err
	}
	if f, _ := outputFormat(c); f == "json" {
		return writeJSON(c.App.Writer, infos)
	}
	t := newTable("NAME", "STATE", "OWNER", "NIC", "ON", "MAC", "ADDRESS")
	for _, in := range infos {
		if len(in.NICs) == 0 {
			t.row(in.Name, in.State, in.Owner, "-", "-", "-", "-")
		}
		for i, n := range in.NICs {
			name, state, owner := in.Name, in.State, in.Owner
			if i > 0 {
				name, state, owner = "", "", ""
			}
			t.row(name, state, owner, fmt.Sprintf("eth%d", n.Index), nicOn(n), n.MAC, dash(n.Address))
		}
	}
	return t.write(c.App.Writer)
}

func vmXML(c *cli.Context) error {
	spec, err := loadSpec(c)
	if err != nil {
		return err
	}
	choice, err := accel.Probe(c.Context, c.String("accel"))
	if err != nil {
		return err
	}
	info, err := labenv.PlannedImage(spec) // where the image is or would be: nothing is built
	if err != nil {
		return err
	}
	plan, err := domain.NewPlan(spec, info, choice, domain.DefaultStateDir)
	if err != nil {
		return err
	}
	d, err := domain.Build(plan)
	if err != nil {
		return err
	}
	x, err := d.Marshal()
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, x)
	return nil
}

func vmConsole(c *cli.Context) error {
	name, err := oneName(c)
	if err != nil {
		return err
	}
	if err := vmspec.ValidateName(name); err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	b, err := vm.Console(env, name)
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(b)
	return err
}

func vmExec(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) < 2 {
		return usagef("vm exec: usage: vmnet vm exec NAME -- COMMAND [ARGS...]")
	}
	name, argv := args[0], args[1:]
	if argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return usagef("vm exec: missing COMMAND after --")
	}
	if err := vmspec.ValidateName(name); err != nil {
		return err
	}
	env, done, err := vmEnv(c, false)
	if err != nil {
		return err
	}
	defer done()
	stdout, stderr, code, err := vm.Exec(c.Context, env, name, argv, c.Duration("timeout"))
	if err != nil {
		return err
	}
	c.App.Writer.Write(stdout)
	c.App.ErrWriter.Write(stderr)
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}
