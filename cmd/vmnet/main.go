// Command vmnet builds a small virtual network lab on one Linux host — bridges,
// libvirt networks, QEMU guests and containers — and proves that it works.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"vmnet/internal/errs"
	"vmnet/internal/safe"
	"vmnet/internal/virt"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes: one place maps errors to them.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without os.Exit, so tests can drive the whole CLI.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		// A bug must still end as one line and exit 1, not a Go stack (that
		// is logged with --verbose). Other goroutines use safe.Go.
		if err := safe.Recovered("vmnet", recover()); err != nil {
			fmt.Fprintf(stderr, "vmnet: %v\n", err)
			code = exitFail
		}
	}()
	app := newApp(stdout, stderr)
	var unknown string
	app.CommandNotFound = func(c *cli.Context, name string) { unknown = name }
	err := app.RunContext(ctx, interspersed(app, args))
	if err == nil && unknown != "" {
		err = usagef("unknown command %q", unknown)
	}
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		// A command run by vmnet (sandbox exec) passes its own exit code through.
		return ec.ExitCode()
	}
	err = virt.Classify(err) // libvirtd gone midway: say so, and the way back
	fmt.Fprintf(stderr, "vmnet: %v\n", err)
	var h errs.Hinted
	if errors.As(err, &h) && h.Hint() != "" {
		fmt.Fprintf(stderr, "hint: %s\n", h.Hint())
	}
	// The one rule for exit code 2: every error about what the user typed or
	// wrote (flags, arguments, names, addresses, spec files) satisfies
	// errs.ErrInvalid, and is returned before anything changed.
	if errors.Is(err, errs.ErrInvalid) {
		return exitUsage
	}
	return exitFail
}

// usageError is bad command-line usage: an unknown command or flag, a
// missing or extra argument. Like every input error it satisfies
// errs.ErrInvalid (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Hint points to the help, the one place that lists commands and flags.
func (e usageError) Hint() string { return "run 'vmnet --help' (or 'vmnet COMMAND --help') for usage" }

// Is makes errors.Is(err, errs.ErrInvalid) true.
func (e usageError) Is(target error) bool { return target == errs.ErrInvalid }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:    "vmnet",
		Usage:   "build virtual network labs (bridges, networks, VMs, containers) and prove they work",
		Version: version,
		UsageText: "vmnet [--verbose] [--output table|json|markdown] COMMAND [options]\n\n" +
			"Examples: a built-in lab in a sandbox (a private host: its own network namespace and libvirtd)\n" +
			"   vmnet image build --lab capstone && vmnet sandbox up lab\n" +
			"   vmnet sandbox exec lab -- vmnet lab up capstone\n" +
			"   vmnet sandbox exec lab -- vmnet lab check capstone --output markdown >> \"$GITHUB_STEP_SUMMARY\"\n" +
			"   vmnet sandbox exec lab -- vmnet lab down capstone\n" +
			"and one piece at a time:\n" +
			"   vmnet bridge create br0 --address 192.0.2.1/24\n" +
			"   vmnet bridge show br0 --output json\n\n" +
			"'vmnet COMMAND --help' says more; 'vmnet doctor' checks what this host can do.",
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Usage: "log what vmnet does (debug level) to stderr"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table, json, or markdown (check reports only)"},
		},
		Before: func(c *cli.Context) error {
			level := slog.LevelWarn
			if c.Bool("verbose") {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
			if _, err := outputFormat(c); err != nil {
				return err
			}
			return nil
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		ExitErrHandler: func(c *cli.Context, err error) {}, // run maps errors to exit codes
		Commands: []*cli.Command{
			bridgeCommand(),
			sandboxCommand(),
			netCommand(),
			vmCommand(),
			imageCommand(),
			checkCommand(),
			labCommand(),
			perfCommand(),
			doctorCommand(),
		},
	}
	quietUsageErrors(app.Commands)
	return app
}

// quietUsageErrors makes a bad flag on any command a one-line usage error
// (exit 2) instead of a page of help.
func quietUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
			return usagef("%s: %v", commandPath(c), err)
		}
		quietUsageErrors(c.Subcommands)
	}
}

// commandPath is the full command as typed, e.g. "bridge create".
func commandPath(c *cli.Context) string {
	var parts []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			parts = append([]string{ctx.Command.Name}, parts...)
		}
	}
	return strings.Join(parts, " ")
}
