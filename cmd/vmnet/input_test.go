package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netns"

	"vmnet/internal/bridge"
	"vmnet/internal/vmspec"
)

// isolate makes the test safe to run as root on a real host: the test's
// goroutine is moved to a fresh network namespace (so a case that slipped
// past validation could only make a bridge there), libvirt points at a
// socket that does not exist (so such a case fails with "cannot reach
// libvirtd", exit 1, instead of changing a real libvirtd), and the image
// cache is a temporary directory.
func isolate(t *testing.T) {
	t.Helper()
	t.Setenv("VMNET_LIBVIRT_URI", "qemu:///system?socket=/nonexistent/vmnet-test-libvirt-sock")
	t.Setenv("VMNET_CACHE", t.TempDir())
	if os.Geteuid() != 0 {
		return // netlink refuses to change anything without root anyway
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := netns.New() // also enters it
	if err != nil {
		orig.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			panic("cannot return to the original network namespace: " + err.Error()) // leave the thread locked, it dies
		}
		fresh.Close()
		orig.Close()
		runtime.UnlockOSThread()
	})
}

// specFile writes a spec file named name with content into dir.
func specFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEveryInputErrorExits2 walks every kind of bad input the CLI can be
// given — flags, commands, argument counts, names, addresses, spec files —
// and checks the one rule: exit code 2, nothing on stdout, one "vmnet: "
// line on stderr and at most a "hint: " line after it. Each case is refused
// before vmnet connects to libvirt or opens netlink.
func TestEveryInputErrorExits2(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	const good = "name: t1\nimage: tiny\nnics:\n  - network: nat0\n"
	notYAML := specFile(t, dir, "notyaml.yaml", "name: t1\nnics: [\n  - network: nat0\n")
	tabs := specFile(t, dir, "tabs.yaml", "name: t1\n\timage: tiny\n")
	unknownKey := specFile(t, dir, "unknown.yaml", good+"colour: blue\n")
	badValue := specFile(t, dir, "badvalue.yaml", good+"memory: lots\n")
	badName := specFile(t, dir, "badname.yaml", strings.Replace(good, "t1", "no/slash", 1))
	badNIC := specFile(t, dir, "badnic.yaml", "name: t1\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.10\n")
	empty := specFile(t, dir, "empty.yaml", "")
	list := specFile(t, dir, "list.yaml", "- a\n- b\n")
	big := specFile(t, dir, "big.yaml", good+"# "+strings.Repeat("x", vmspec.MaxSpecSize)+"\n")
	missing := filepath.Join(dir, "missing.yaml")
	asDir := filepath.Join(dir, "dir.yaml")
	const goodLab = "name: l1\nnetworks:\n  lan: {kind: bridge, address: 192.0.2.1/24}\nnodes:\n  web:\n    image: tiny\n    nics: [{net: lan, address: 192.0.2.10/24}]\n"
	labMissingNet := specFile(t, dir, "missingnet.lab.yaml", strings.Replace(goodLab, "net: lan,", "net: lan2,", 1))
	labNotYAML := specFile(t, dir, "notyaml.lab.yaml", "name: l1\nnodes: [\n")
	labUnknown := specFile(t, dir, "unknown.lab.yaml", goodLab+"netwrks: {}\n")
	if err := os.Mkdir(asDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // a part of the error line
	}{
		// Global flags and commands.
		{[]string{"--nope"}, "flag provided but not defined: -nope"},
		{[]string{"--output", "yaml", "bridge", "list"}, `--output "yaml"`},
		{[]string{"bridge", "list", "--output", "xml"}, `--output "xml"`},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"bridge", "frob"}, `unknown command "frob"`},
		{[]string{"net", "frob"}, `unknown command "frob"`},
		{[]string{"vm", "frob"}, `unknown command "frob"`},
		{[]string{"sandbox", "frob"}, `unknown command "frob"`},
		{[]string{"image", "frob"}, `unknown command "frob"`},
		{[]string{"doctor", "extra"}, "doctor takes no arguments"},
		{[]string{"doctor", "--nope"}, "flag provided but not defined"},

		// bridge
		{[]string{"bridge", "create"}, "missing NAME"},
		{[]string{"bridge", "create", "a", "b"}, "takes one NAME, got 2"},
		{[]string{"bridge", "create", "br0", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"bridge", "create", "br0", "--mtu", "x"}, `invalid value "x" for flag -mtu`},
		{[]string{"bridge", "create", "br0", "--mtu", "10"}, `--mtu "10": is outside`},
		{[]string{"bridge", "create", "br0", "--confirm-timeout", "soon"}, "confirm-timeout"},
		{[]string{"bridge", "create", "br0", "--confirm-timeout", "-1s"}, "--confirm-timeout"},
		{[]string{"bridge", "create", "br0123456789abcd"}, `bridge name "br0123456789abcd"`},
		{[]string{"bridge", "create", "-br"}, "flag provided but not defined"},
		{[]string{"bridge", "create", "b r"}, `bridge name "b r"`},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.1"}, "has no prefix length"},
		{[]string{"bridge", "create", "br0", "--address", "banana"}, `--address "banana"`},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.0/24"}, "network address"},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.1/24", "--address", "192.0.2.1/24"}, "given twice"},
		{[]string{"bridge", "create", "br0", "--mac", "zz"}, `--mac "zz"`},
		{[]string{"bridge", "create", "br0", "--mac", "01:00:00:00:00:01"}, "--mac"},
		{[]string{"bridge", "create", "br0", "--uplink", "bad name"}, `--uplink "bad name"`},
		{[]string{"bridge", "create", "br0", "--uplink", "br0"}, "is the bridge itself"},
		{[]string{"bridge", "create", "br0", "--uplink", "eth0", "--mac", "02:00:00:00:00:01"}, "cannot be combined with --uplink"},
		{[]string{"bridge", "create", "br0", "--probe", "x", "--uplink", "eth0"}, `--probe "x"`},
		{[]string{"bridge", "create", "br0", "--probe", "192.0.2.1"}, "--probe only applies with --uplink"},
		{[]string{"bridge", "create", "br0", "--persist", "yaml"}, `--persist "yaml"`},
		{[]string{"bridge", "delete"}, "missing NAME"},
		{[]string{"bridge", "delete", "a", "b"}, "takes one NAME"},
		{[]string{"bridge", "delete", "bad/name"}, `bridge name "bad/name"`},
		{[]string{"bridge", "list", "extra"}, "takes no arguments"},
		{[]string{"bridge", "show"}, "missing NAME"},
		{[]string{"bridge", "show", "bad/name"}, `bridge name "bad/name"`},

		// net
		{[]string{"net", "create", "n0"}, "mode"},
		{[]string{"net", "create", "--mode", "nat"}, "missing NAME"},
		{[]string{"net", "create", "a", "b", "--mode", "nat"}, "takes one NAME"},
		{[]string{"net", "create", "n0", "--mode", "wan"}, `--mode "wan"`},
		{[]string{"net", "create", "bad/name", "--mode", "nat", "--cidr", "198.51.100.0/24"}, `network name "bad/name"`},
		{[]string{"net", "create", "n0", "--mode", "nat"}, "--cidr"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.1"}, "has no prefix length"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "banana"}, `--cidr "banana"`},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.1/24"}, "host bits"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "2001:db8::/64"}, "IPv6"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.0/30"}, "prefix length"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.0/24", "--dhcp-range", "x"}, `--dhcp-range "x"`},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.0/24", "--dhcp-range", "203.0.113.2-203.0.113.9"}, "is not inside"},
		{[]string{"net", "create", "n0", "--mode", "nat", "--cidr", "198.51.100.0/24", "--bridge", "br0"}, "--bridge"},
		{[]string{"net", "create", "n0", "--mode", "bridge"}, "--bridge"},
		{[]string{"net", "create", "n0", "--mode", "bridge", "--bridge", "bad name"}, `--bridge "bad name"`},
		{[]string{"net", "create", "n0", "--mode", "bridge", "--bridge", "br0", "--cidr", "198.51.100.0/24"}, "does not apply"},
		{[]string{"net", "delete"}, "missing NAME"},
		{[]string{"net", "delete", "bad/name"}, `network name "bad/name"`},
		{[]string{"net", "list", "extra"}, "takes no arguments"},

		// vm and its spec files
		{[]string{"vm", "up"}, "missing NAME"},
		{[]string{"vm", "up", "a", "b"}, "takes one NAME"},
		{[]string{"vm", "up", "nope"}, `no built-in profile "nope"`},
		{[]string{"vm", "up", "tiny", "--accel", "fast"}, `--accel "fast"`},
		{[]string{"vm", "up", "tiny", "--nope"}, "flag provided but not defined"},
		{[]string{"vm", "up", "tiny", "--junit", filepath.Join(missing, "r.xml")}, "--junit"},
		{[]string{"lab", "up", "duo", "--markdown", filepath.Join(missing, "c.md")}, "--markdown"},
		{[]string{"lab", "up", "duo", "--markdown", asDir}, "is a directory"},
		{[]string{"vm", "up", missing}, "missing.yaml"},
		{[]string{"vm", "up", asDir}, "dir.yaml"},
		{[]string{"vm", "up", big}, "larger than"},
		{[]string{"vm", "up", notYAML}, "line "},
		{[]string{"vm", "up", tabs}, "line 2"},
		{[]string{"vm", "up", empty}, "is empty"},
		{[]string{"vm", "up", list}, "must be a mapping"},
		{[]string{"vm", "up", unknownKey}, "line 5: colour is not a known field"},
		{[]string{"vm", "up", badValue}, `line 5: memory: "lots"`},
		{[]string{"vm", "up", badName}, "name"},
		{[]string{"vm", "up", badNIC}, "has no prefix length"},
		{[]string{"vm", "xml"}, "missing NAME"},
		{[]string{"vm", "xml", "nope"}, `no built-in profile "nope"`},
		{[]string{"vm", "xml", notYAML}, "line "},
		{[]string{"vm", "xml", "tiny", "--accel", "fast"}, `--accel "fast"`},
		{[]string{"vm", "down"}, "missing NAME"},
		{[]string{"vm", "down", "bad/name"}, "bad/name"},
		{[]string{"vm", "list", "extra"}, "takes no arguments"},
		{[]string{"vm", "console"}, "missing NAME"},
		{[]string{"vm", "console", "../etc"}, "../etc"},
		{[]string{"vm", "exec"}, "usage: vmnet vm exec NAME"},
		{[]string{"vm", "exec", "t1"}, "usage: vmnet vm exec NAME"},
		{[]string{"vm", "exec", "t1", "--"}, "missing COMMAND"},
		{[]string{"vm", "exec", "../etc", "--", "ls"}, "../etc"},
		{[]string{"vm", "exec", "--timeout", "soon", "t1", "--", "ls"}, "timeout"},

		// lab
		{[]string{"lab", "frob"}, `unknown command "frob"`},
		{[]string{"lab", "validate"}, "missing FILE"},
		{[]string{"lab", "validate", "a", "b"}, "takes one FILE"},
		{[]string{"lab", "validate", missing}, "missing.yaml"},
		{[]string{"lab", "validate", asDir}, "dir.yaml"},
		{[]string{"lab", "validate", labNotYAML}, "notyaml.lab.yaml:"},
		{[]string{"lab", "validate", labUnknown}, "unknown.lab.yaml:8: netwrks is not a known field (did you mean networks?)"},
		{[]string{"lab", "validate", labMissingNet}, `missingnet.lab.yaml:7: nodes.web.nics[0].net: "lan2" is not a network of this lab`},
		{[]string{"lab", "graph"}, "missing FILE"},
		{[]string{"lab", "graph", missing}, "missing.yaml"},
		{[]string{"lab", "graph", labMissingNet, "--format", "dot"}, "missingnet.lab.yaml:7"},
		{[]string{"lab", "graph", labMissingNet, "--format", "jpeg"}, `--format "jpeg"`},
		{[]string{"lab", "graph", labMissingNet, "--nope"}, "flag provided but not defined"},

		// check
		{[]string{"check"}, "missing NAME"},
		{[]string{"check", "a", "b"}, "takes one NAME"},
		{[]string{"check", "bad/name"}, "bad/name"},
		{[]string{"check", "t1", "--matrix", "full"}, `--matrix "full"`},
		{[]string{"check", "t1", "--parallel", "0"}, "--parallel 0"},
		{[]string{"check", "t1", "--parallel", "many"}, "parallel"},
		{[]string{"check", "t1", "--junit", filepath.Join(missing, "r.xml")}, "--junit"},
		{[]string{"check", "t1", "--junit", asDir}, "is a directory"},

		// sandbox
		{[]string{"sandbox", "up"}, "missing NAME"},
		{[]string{"sandbox", "up", "a", "b"}, "takes one NAME"},
		{[]string{"sandbox", "up", "bad/name"}, "bad/name"},
		{[]string{"sandbox", "exec"}, "missing NAME and COMMAND"},
		{[]string{"sandbox", "exec", "bad/name", "--", "true"}, "bad/name"},
		{[]string{"sandbox", "exec", "lab"}, "missing COMMAND"},
		{[]string{"sandbox", "exec", "lab", "--"}, "missing COMMAND"},
		{[]string{"sandbox", "down"}, "missing NAME"},
		{[]string{"sandbox", "down", "bad/name"}, "bad/name"},
		{[]string{"sandbox", "list", "extra"}, "takes no arguments"},

		// image
		{[]string{"image", "build"}, "missing NAME"},
		{[]string{"image", "build", "bad/name"}, "bad/name"},
		{[]string{"image", "build", "nosuchrecipe"}, `no recipe for image "nosuchrecipe"`},
		{[]string{"image", "build", "tiny", "--nope"}, "flag provided but not defined"},
		{[]string{"image", "rm"}, "missing NAME"},
		{[]string{"image", "rm", "bad/name"}, "bad/name"},
		{[]string{"image", "list", "extra"}, "takes no arguments"},
	} {
		out, errs, code := runCLI(t, tc.args...)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		ok := code == exitUsage && out == "" && strings.HasPrefix(lines[0], "vmnet: ") && strings.Contains(lines[0], tc.want) &&
			len(lines) <= 2 && (len(lines) == 1 || strings.HasPrefix(lines[1], "hint: "))
		if !ok {
			t.Errorf("vmnet %s: exit %d, stdout %q, stderr:\n%s\nwant exit 2, no stdout, one line \"vmnet: ...%s...\" and at most a \"hint: \" line",
				strings.Join(tc.args, " "), code, out, errs, tc.want)
		}
	}
}

// urfave/cli's own "Required flag not set" error has no type that errors.Is
// can match, so it would exit 1: commands check required flags themselves.
func TestNoFlagUsesCLIRequired(t *testing.T) {
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
					t.Errorf("vmnet %s%s: flag %v is Required; check it in the Action with a FieldError instead", path, c.Name, f.Names())
				}
			}
			walk(path+c.Name+" ", c.Subcommands)
		}
	}
	walk("", newApp(nil, nil).Commands)
}

// The one rule is errors.Is(err, bridge.ErrInvalid); usage errors follow it too.
func TestUsageErrorIsInvalid(t *testing.T) {
	if err := usagef("x"); !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("usagef(...) does not match bridge.ErrInvalid")
	}
}
