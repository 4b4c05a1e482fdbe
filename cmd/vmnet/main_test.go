package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"vmnet"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help", "bridge"}, {"bridge", "create", "--help"}, {"help"}} {
		out, errs, code := runCLI(t, args...)
		if code != exitOK || !strings.Contains(out, "vmnet") || errs != "" {
			t.Errorf("vmnet %v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	out, _, code := runCLI(t, "--version")
	if code != exitOK || !strings.HasPrefix(out, "vmnet version ") {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	out, _, _ = runCLI(t, "bridge", "create", "--help")
	for _, flag := range []string{"--address", "--mtu", "--stp", "--vlan-filtering", "--mac", "--uplink", "--probe", "--confirm-timeout", "--persist", "--root", "--dry-run"} {
		if !strings.Contains(out, flag) {
			t.Errorf("bridge create --help does not mention %s", flag)
		}
	}
}

// Usage errors are one line (plus a pointer to help), exit 2, and need no
// root: they are refused before vmnet touches anything.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frob"}, `vmnet: unknown command "frob"`},
		{[]string{"bridge", "frob"}, `vmnet: unknown command "frob"`},
		{[]string{"bridge", "create"}, "vmnet: bridge create: missing NAME"},
		{[]string{"bridge", "create", "a", "b"}, "vmnet: bridge create: takes one NAME, got 2 arguments"},
		{[]string{"bridge", "create", "br0", "--mtu", "x"}, `vmnet: bridge create: invalid value "x" for flag -mtu`},
		{[]string{"bridge", "create", "br0", "--nope"}, "vmnet: bridge create: flag provided but not defined: -nope"},
		{[]string{"--output", "yaml", "bridge", "list"}, `vmnet: --output "yaml": use table or json`},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.1"}, `vmnet: --address "192.0.2.1": has no prefix length`},
		{[]string{"bridge", "create", "br0123456789abcd"}, `vmnet: bridge name "br0123456789abcd": is 16 bytes long`},
		{[]string{"bridge", "create", "br0", "--persist", "yaml"}, `vmnet: --persist "yaml": is not a persistence backend`},
		{[]string{"bridge", "create", "br0", "--probe", "192.0.2.1"}, "vmnet: --probe only applies with --uplink"},
	} {
		out, errs, code := runCLI(t, tc.args...)
		if code != exitUsage || !strings.HasPrefix(errs, tc.want) || out != "" {
			t.Errorf("vmnet %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
		if n := strings.Count(strings.TrimSpace(errs), "\n"); n > 1 {
			t.Errorf("vmnet %v: %d lines of error, want at most 2:\n%s", tc.args, n+1, errs)
		}
	}
}

func TestInterspersedFlags(t *testing.T) {
	app := newApp(nil, nil)
	for _, tc := range []struct{ in, want string }{
		{"vmnet bridge create br0 --address 192.0.2.1/24 --stp", "vmnet bridge create --address 192.0.2.1/24 --stp br0"},
		{"vmnet -o json bridge show br0 --root /tmp/r", "vmnet -o json bridge show --root /tmp/r br0"},
		{"vmnet bridge create br0 --mtu=9000 --dry-run", "vmnet bridge create --mtu=9000 --dry-run br0"},
		{"vmnet sandbox exec lab -- ip -br link", "vmnet sandbox exec lab -- ip -br link"},
		{"vmnet sandbox exec lab ip -br link", "vmnet sandbox exec lab ip -br link"},
		{"vmnet vm exec capstone --timeout 5m -- ls -l", "vmnet vm exec --timeout 5m capstone -- ls -l"},
		{"vmnet bridge", "vmnet bridge"},
		{"vmnet bridge show br0 --output json", "vmnet --output json bridge show br0"},
		{"vmnet bridge list -o json --root /r", "vmnet -o json bridge list --root /r"},
	} {
		got := strings.Join(interspersed(app, strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzInterspersed(f *testing.F) {
	f.Add("bridge create br0 --address 192.0.2.1/24 --stp")
	f.Add("sandbox exec lab -- ip link")
	f.Add("-o json bridge list --root")
	app := newApp(nil, nil)
	f.Fuzz(func(t *testing.T, s string) {
		args := append([]string{"vmnet"}, strings.Fields(s)...)
		got := interspersed(app, args)
		// Reordering may move words, never add or drop one.
		a, b := slices.Clone(args), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("interspersed(%q) = %q: words changed", args, got)
		}
	})
}

// TestHelpForNewcomers: the help a newcomer reads first fits 100 columns,
// shows a lab's whole life (up, check as Markdown, down), and says which
// outputs exist and where markdown applies.
func TestHelpForNewcomers(t *testing.T) {
	wants := map[string][]string{
		"--help": {"--output table|json|markdown", "markdown (check reports only)", "vmnet lab up capstone",
			"vmnet lab check capstone --output markdown", "vmnet lab down capstone"},
		"lab --help":       {"lab check capstone --output markdown", "lab down office", "Built-in labs: "},
		"lab check --help": {"--output markdown", "--junit"},
		"lab up --help":    {"--accel", "once per boot"},
	}
	for _, args := range [][]string{{"--help"}, {"lab", "--help"}, {"lab", "up", "--help"}, {"lab", "check", "--help"},
		{"lab", "graph", "--help"}, {"vm", "up", "--help"}, {"check", "--help"}} {
		out, _, code := runCLI(t, args...)
		if code != exitOK {
			t.Errorf("vmnet %v: exit %d", args, code)
		}
		for i, l := range strings.Split(out, "\n") {
			if n := len([]rune(l)); n > 100 {
				t.Errorf("vmnet %v: line %d is %d columns: %q", args, i+1, n, l)
			}
		}
		for _, w := range wants[strings.Join(args, " ")] {
			if !strings.Contains(out, w) {
				t.Errorf("vmnet %v does not say %q:\n%s", args, w, out)
			}
		}
	}
}
