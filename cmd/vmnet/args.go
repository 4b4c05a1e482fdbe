package main

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves a leaf command's flags in front of its arguments, so
// "vmnet bridge create br0 --address 192.0.2.1/24" works as users type it:
// urfave/cli v2, like Go's flag package, stops parsing flags at the first
// argument. Everything after "--" is left alone, and so is everything after
// the first argument of an "exec" command (that is the command to run).
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	cmds := app.Commands
	var leaf *cli.Command
	i := 1
	// Walk global flags and the command path.
	for i < len(args) {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			if leaf != nil {
				break // the command's own flags (and late global ones) are sorted below
			}
			out = append(out, a)
			i++
			if takesValue(app.Flags, a) && !strings.Contains(a, "=") && i < len(args) {
				out = append(out, args[i])
				i++
			}
			continue
		}
		next := find(cmds, a)
		if next == nil {
			break
		}
		out = append(out, a)
		leaf, cmds = next, next.Subcommands
		i++
	}
	if leaf == nil || len(leaf.Subcommands) > 0 {
		return append(out, args[i:]...)
	}
	var globals, flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		// exec's command starts at "--", or without one at the word after NAME.
		if a == "--" || (leaf.Name == "exec" && len(positional) > 0 && !slices.Contains(args[i:], "--")) {
			positional = append(positional, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			// A global flag (--output json) typed after the command goes to the front.
			dst, set := &flags, leaf.Flags
			if !defines(leaf.Flags, a) && defines(app.Flags, a) {
				dst, set = &globals, app.Flags
			}
			*dst = append(*dst, a)
			if takesValue(set, a) && !strings.Contains(a, "=") && i+1 < len(args) {
				i++
				*dst = append(*dst, args[i])
			}
			continue
		}
		positional = append(positional, a)
	}
	out = append(append([]string{out[0]}, globals...), out[1:]...)
	out = append(out, flags...)
	return append(out, positional...)
}

// defines reports whether the flag token names one of flags.
func defines(flags []cli.Flag, token string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(token, "-"), "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

func find(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// takesValue reports whether the flag token names a flag that takes a value.
func takesValue(flags []cli.Flag, token string) bool {
	name := strings.TrimLeft(token, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			_, isBool := f.(*cli.BoolFlag)
			return !isBool
		}
	}
	return false
}
