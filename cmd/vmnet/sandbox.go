package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"vmnet/internal/sandbox"
)

func sandboxCommand() *cli.Command {
	return &cli.Command{
		Name:  "sandbox",
		Usage: "a private host for tests and demos: own network namespace (no way out), own libvirtd",
		Description: "A sandbox is a network namespace with no link or route to the outside plus a mount namespace\n" +
			"with its own libvirtd and virtlogd and their own state. Inside it vmnet, virsh and any other\n" +
			"command see an ordinary host with an empty libvirt; nothing they do reaches the real host's network.\n\n" +
			"Examples:\n" +
			"   vmnet sandbox up lab\n" +
			"   vmnet sandbox exec lab -- virsh -c qemu:///system net-list --all\n" +
			"   vmnet --output json sandbox list\n" +
			"   vmnet sandbox down lab",
		Subcommands: []*cli.Command{
			{
				Name:      "up",
				Usage:     "make sandbox NAME (or repair it) and wait until its libvirtd answers",
				ArgsUsage: "NAME",
				Description: "A second up of a healthy sandbox changes nothing and says \"unchanged\". A sandbox left half-made\n" +
					"by a killed run is repaired, or removed and made again.",
				Action: sandboxUp,
			},
			{
				Name:      "exec",
				Usage:     "run a command inside sandbox NAME and exit with its exit code",
				ArgsUsage: "NAME -- COMMAND [ARG...]",
				Description: "The command gets this terminal, the current directory and environment, plus VMNET_SANDBOX=NAME.\n\n" +
					"Example:\n" +
					"   vmnet sandbox exec lab -- ip -o link",
				// COMMAND's own flags (ip -o link) are not vmnet's.
				SkipFlagParsing: true,
				Action:          sandboxExec,
			},
			{
				Name:        "down",
				Aliases:     []string{"rm"},
				Usage:       "stop everything in sandbox NAME and remove it",
				ArgsUsage:   "NAME",
				Description: "Stops the sandbox's daemons, guests and commands (by pid), removes its namespaces and state.\nDown of a sandbox that does not exist succeeds.",
				Action:      sandboxDown,
			},
			{
				Name:    "list",
				Aliases: []string{"ls"},
				Usage:   "list sandboxes and their state",
				Action:  sandboxList,
			},
		},
	}
}

// sandboxNameArg returns the single NAME argument, checked, or a usage error.
func sandboxNameArg(c *cli.Context) (string, error) {
	name, err := oneArg(c, "lab")
	if err != nil {
		return "", err
	}
	if err := sandbox.ValidateName(name); err != nil {
		return "", usagef("%s: %v", commandPath(c), err)
	}
	return name, nil
}

func sandboxUp(c *cli.Context) error {
	name, err := sandboxNameArg(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	res, err := sandbox.Up(c.Context, name)
	if err != nil {
		return err
	}
	if format == "json" {
		return writeJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "sandbox %s: %s (libvirtd pid %d, virtlogd pid %d, netns %s)\n",
		res.Name, res.Change, res.LibvirtdPID, res.VirtlogdPID, res.NetNS)
	if res.Change != sandbox.Unchanged {
		fmt.Fprintf(c.App.Writer, "run commands in it with: vmnet sandbox exec %s -- COMMAND\n", res.Name)
	}
	return nil
}

func sandboxExec(c *cli.Context) error {
	args := c.Args().Slice()
	full := "sandbox exec"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return cli.ShowSubcommandHelp(c)
	}
	if len(args) == 0 {
		return usagef("%s: missing NAME and COMMAND (for example: vmnet %s lab -- ip -o link)", full, full)
	}
	name, argv := args[0], args[1:]
	if err := sandbox.ValidateName(name); err != nil {
		return usagef("%s: %v", full, err)
	}
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return usagef("%s: missing COMMAND after NAME (for example: vmnet %s %s -- ip -o link)", full, full, name)
	}
	code, err := sandbox.Exec(c.Context, name, argv, sandbox.Stdio{Stdin: os.Stdin, Stdout: c.App.Writer, Stderr: c.App.ErrWriter})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}

// exitStatus carries the exit code of a command run by sandbox exec; it
// implements cli.ExitCoder so run can exit with that code.
type exitStatus int

func (e exitStatus) Error() string { return "command exited with status " + strconv.Itoa(int(e)) }

// ExitCode returns the command's exit code.
func (e exitStatus) ExitCode() int { return int(e) }

var _ cli.ExitCoder = exitStatus(0)

func sandboxDown(c *cli.Context) error {
	name, err := sandboxNameArg(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	existed, err := sandbox.Exists(name)
	if err != nil {
		return err
	}
	if err := sandbox.Down(c.Context, name); err != nil {
		return err
	}
	outcome := "removed"
	if !existed {
		outcome = "absent, nothing to do"
	}
	if format == "json" {
		return writeJSON(c.App.Writer, removedView{Name: name, Outcome: outcome})
	}
	fmt.Fprintf(c.App.Writer, "sandbox %s: %s\n", name, outcome)
	return nil
}

func sandboxList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("sandbox list: takes no arguments, got: %s", strings.Join(c.Args().Slice(), " "))
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	infos, err := sandbox.List()
	if err != nil {
		return err
	}
	if format == "json" {
		if infos == nil {
			infos = []sandbox.Info{}
		}
		return writeJSON(c.App.Writer, infos)
	}
	t := newTable("NAME", "STATE", "NETNS", "LIBVIRTD", "VIRTLOGD")
	for _, in := range infos {
		t.row(in.Name, in.State, presence(in.NetNS, in.NetNSPresent), pidState(in.LibvirtdPID, in.LibvirtdAlive), pidState(in.VirtlogdPID, in.VirtlogdAlive))
	}
	return t.write(c.App.Writer)
}

func presence(name string, ok bool) string {
	if ok {
		return name
	}
	return name + " (missing)"
}

func pidState(pid int, alive bool) string {
	switch {
	case pid <= 0:
		return "-"
	case alive:
		return strconv.Itoa(pid)
	default:
		return strconv.Itoa(pid) + " (dead)"
	}
}
