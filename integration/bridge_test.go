package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Acceptance 2: create, create again (unchanged), delete twice.
func TestBridgeCreateDeleteInNetns(t *testing.T) {
	ns := newNetns(t)
	r := mustVmnet(t, ns, "bridge", "create", "br0", "--address", "192.0.2.1/24")
	if !strings.Contains(r.stdout, "bridge br0: created") {
		t.Fatalf("first create did not say created: %q", r.stdout)
	}
	link := run(t, "ip", "-n", ns, "-o", "link", "show", "br0")
	if !regexp.MustCompile(`[<,]UP[,>]`).MatchString(link) {
		t.Fatalf("br0 is not up: %s", link)
	}
	if addr := run(t, "ip", "-n", ns, "-o", "addr", "show", "br0"); !strings.Contains(addr, "inet 192.0.2.1/24") {
		t.Fatalf("br0 lacks its address: %s", addr)
	}
	if d := run(t, "ip", "-n", ns, "-d", "link", "show", "br0"); !strings.Contains(d, "bridge ") {
		t.Fatalf("br0 is not a bridge: %s", d)
	}
	r = mustVmnet(t, ns, "bridge", "create", "br0", "--address", "192.0.2.1/24")
	if !strings.Contains(r.stdout, "bridge br0: unchanged") {
		t.Fatalf("second create did not say unchanged: %q", r.stdout)
	}
	mustVmnet(t, ns, "bridge", "delete", "br0")
	r = mustVmnet(t, ns, "bridge", "delete", "br0")
	if !strings.Contains(r.stdout, "absent") {
		t.Fatalf("second delete: %q", r.stdout)
	}
	if out, _ := exec.Command("ip", "-n", ns, "link", "show", "br0").CombinedOutput(); !bytes.Contains(out, []byte("does not exist")) {
		t.Fatalf("br0 still exists: %s", out)
	}
}

// Acceptance 4: bad input exits non-zero with one clear line (and a hint)
// and changes nothing.
func TestBridgeBadInputChangesNothing(t *testing.T) {
	ns := newNetns(t)
	mustVmnet(t, ns, "bridge", "create", "br9", "--address", "198.51.100.1/24")
	before := linkState(t, ns)
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bridge", "create", "br0123456789abcd"}, `vmnet: bridge name "br0123456789abcd": is 16 bytes long; Linux allows at most 15`},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.1"}, `vmnet: --address "192.0.2.1": has no prefix length`},
		{[]string{"bridge", "create", "br0", "--address", "192.0.2.300/24"}, `vmnet: --address "192.0.2.300/24": is not an address in CIDR form`},
		{[]string{"bridge", "create", "br0", "--uplink", "eth7"}, `vmnet: --uplink "eth7": does not exist`},
		{[]string{"bridge", "create", "br0", "--address", "198.51.100.2/24"}, `vmnet: --address "198.51.100.2/24": overlaps route 198.51.100.0/24 dev br9`},
		{[]string{"bridge", "create", "br0", "--mtu", "40"}, `vmnet: --mtu "40": is outside 68-65535`},
		{[]string{"bridge", "create", "br0", "--mac", "01:00:5e:00:00:01"}, `vmnet: --mac "01:00:5e:00:00:01": is a multicast address`},
		{[]string{"bridge", "create", "br0", "--persist", "yaml", "--root", root}, `vmnet: --persist "yaml": is not a persistence backend`},
		{[]string{"bridge", "create", "br0", "--persist", "netplan"}, `vmnet: --persist netplan would write this host's files`},
		{[]string{"bridge", "create", "lo"}, `vmnet: link "lo" exists but is a device, not a bridge`},
	} {
		r := vmnet(t, ns, tc.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || !strings.HasPrefix(lines[0], tc.want) {
			t.Errorf("vmnet %v: exit %d, stderr %q; want non-zero and first line starting %q", tc.args, r.code, r.stderr, tc.want)
		}
		if len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[1], "hint: ") {
			t.Errorf("vmnet %v: want one error line and at most a hint, got %q", tc.args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("vmnet %v printed to stdout: %q", tc.args, r.stdout)
		}
		if after := linkState(t, ns); after != before {
			t.Fatalf("vmnet %v changed the namespace:\nbefore:\n%s\nafter:\n%s", tc.args, before, after)
		}
		if entries, _ := os.ReadDir(root); len(entries) != 0 {
			t.Fatalf("vmnet %v wrote files under --root", tc.args)
		}
	}
}

// Acceptance 3: each backend's own tool accepts the files vmnet writes.
func TestBridgePersistFilesAcceptedByBackendTools(t *testing.T) {
	ns := newNetns(t)
	for _, tc := range []struct {
		backend string
		file    string
		check   func(t *testing.T, root, file string)
	}{
		{"netplan", "etc/netplan/60-vmnet-br0.yaml", func(t *testing.T, root, file string) {
			need(t, "netplan")
			run(t, "netplan", "generate", "--root-dir", root)
			for _, f := range []string{"run/systemd/network/10-netplan-br0.netdev", "run/systemd/network/10-netplan-br0.network"} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("netplan generate did not produce %s: %v", f, err)
				}
			}
		}},
		{"ifupdown", "etc/network/interfaces.d/vmnet-br0", func(t *testing.T, root, file string) {
			need(t, "ifquery")
			out := run(t, "ifquery", "-i", file, "br0")
			for _, want := range []string{"address: 192.0.2.1\n", "bridge_ports: none", "bridge_hw: "} {
				if !strings.Contains(out, want) {
					t.Errorf("ifquery br0 lacks %q:\n%s", want, out)
				}
			}
		}},
		{"networkmanager", "etc/NetworkManager/system-connections/vmnet-br0.nmconnection", func(t *testing.T, root, file string) {
			need(t, "nmcli")
			cmd := exec.Command("nmcli", "--offline", "connection", "modify", "connection.autoconnect", "yes")
			in, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			cmd.Stdin = in
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("nmcli --offline refused the keyfile: %v\n%s", err, out)
			}
			for _, want := range []string{"interface-name=br0", "type=bridge", "address1=192.0.2.1/24"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("NetworkManager's reading of the keyfile lacks %q:\n%s", want, out)
				}
			}
		}},
		{"networkd", "etc/systemd/network/10-vmnet-br0.netdev", func(t *testing.T, root, file string) {
			// networkd itself reads the files in TestBridgeRebootEquivalence.
			if b, err := os.ReadFile(file); err != nil || !bytes.Contains(b, []byte("Kind=bridge")) {
				t.Fatalf("netdev file: %v %s", err, b)
			}
		}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			root := t.TempDir()
			mustVmnet(t, ns, "bridge", "create", "br0", "--address", "192.0.2.1/24", "--persist", tc.backend, "--root", root)
			file := filepath.Join(root, tc.file)
			st, err := os.Stat(file)
			if err != nil {
				t.Fatalf("vmnet did not write %s: %v", tc.file, err)
			}
			t.Logf("%s mode %v", tc.file, st.Mode().Perm())
			tc.check(t, root, file)
			b := show(t, ns, "br0", "--root", root)
			if b.Persistence != tc.backend || len(b.Files) == 0 {
				t.Errorf("bridge show: persistence %q files %v", b.Persistence, b.Files)
			}
			mustVmnet(t, ns, "bridge", "delete", "br0", "--root", root)
			if _, err := os.Stat(file); !os.IsNotExist(err) {
				t.Errorf("delete left %s: %v", tc.file, err)
			}
		})
	}
}

// Reboot equivalence: vmnet creates the bridge and writes a backend's files;
// the live bridge is deleted (what a reboot does); the backend's own tool
// brings it back from vmnet's files; the result must equal what vmnet made.
func TestBridgeRebootEquivalence(t *testing.T) {
	args := []string{"bridge", "create", "br0", "--address", "192.0.2.1/24", "--address", "2001:db8::1/64", "--mtu", "1400", "--stp"}
	for _, tc := range []struct {
		backend string
		boot    func(t *testing.T, ns, root string)
	}{
		{"ifupdown", func(t *testing.T, ns, root string) {
			need(t, "ifup")
			if err := os.MkdirAll(filepath.Join(root, "run/ifstate"), 0o755); err != nil {
				t.Fatal(err)
			}
			run(t, "ip", "netns", "exec", ns, "ifup", "-i", filepath.Join(root, "etc/network/interfaces.d/vmnet-br0"),
				"--state-dir", filepath.Join(root, "run/ifstate"), "br0")
		}},
		{"networkd", func(t *testing.T, ns, root string) {
			runNetworkd(t, ns, filepath.Join(root, "etc/systemd/network"), "/etc/systemd/network")
		}},
		{"netplan", func(t *testing.T, ns, root string) {
			need(t, "netplan")
			// netplan generate writes networkd's files under /run; networkd brings them up.
			run(t, "netplan", "generate", "--root-dir", root)
			runNetworkd(t, ns, filepath.Join(root, "run/systemd/network"), "/run/systemd/network")
		}},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			ns := newNetns(t)
			root := t.TempDir()
			mustVmnet(t, ns, append(args, "--persist", tc.backend, "--root", root)...)
			want := show(t, ns, "br0", "--root", root)
			run(t, "ip", "-n", ns, "link", "del", "br0")
			tc.boot(t, ns, root)
			got := show(t, ns, "br0", "--root", root)
			for _, d := range diffBridge(want, got) {
				t.Error(d)
			}
			// After a reboot vmnet still knows the bridge as its own: a create is a no-op
			// apart from marking it, and delete cleans up.
			mustVmnet(t, ns, append(args, "--persist", tc.backend, "--root", root)...)
			if r := mustVmnet(t, ns, append(args, "--persist", tc.backend, "--root", root)...); !strings.Contains(r.stdout, "unchanged") {
				t.Errorf("create after reboot did not settle: %s", r.stdout)
			}
			mustVmnet(t, ns, "bridge", "delete", "br0", "--root", root)
		})
	}
}

func diffBridge(want, got bridgeJSON) []string {
	var d []string
	check := func(field string, w, g any) {
		if fmt.Sprint(w) != fmt.Sprint(g) {
			d = append(d, fmt.Sprintf("%s after reboot = %v, vmnet made %v", field, g, w))
		}
	}
	check("MAC", want.MAC, got.MAC)
	check("MTU", want.MTU, got.MTU)
	check("STP", want.STP, got.STP)
	check("addresses", want.Addresses, got.Addresses)
	check("admin state", strings.HasPrefix(want.State, "up"), strings.HasPrefix(got.State, "up"))
	check("ports", want.Ports, got.Ports)
	check("owned by vmnet", want.Managed, got.Managed)
	return d
}

// runNetworkd runs systemd-networkd inside ns with its own /run/systemd and
// the given config dir, until br0 has its addresses, then stops it by pid.
func runNetworkd(t *testing.T, ns, configDir, mountAt string) {
	t.Helper()
	const networkd = "/lib/systemd/systemd-networkd"
	if _, err := os.Stat(networkd); err != nil {
		t.Skip("systemd-networkd is not installed")
	}
	// networkd waits for udev to initialise each link unless /sys is
	// read-only (its sign of a container); the namespace's own sysfs mount,
	// made by ip netns exec, is made read-only in this private mount namespace.
	script := fmt.Sprintf(`set -e
mount -o remount,bind,ro /sys
mount -t tmpfs vmnet-it /run/systemd
mkdir -p /run/systemd/netif /run/systemd/network
chown systemd-network:systemd-network /run/systemd/netif
mount --bind %q %q
exec %s`, configDir, mountAt, networkd)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start networkd: %v", err)
	}
	// ip, unshare and sh all exec: the pid is networkd's own.
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("systemd-networkd said:\n%s", logs.String())
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		out, _ := exec.Command("ip", "-n", ns, "-o", "addr", "show", "br0").CombinedOutput()
		if bytes.Contains(out, []byte("192.0.2.1/24")) && bytes.Contains(out, []byte("2001:db8::1/64")) {
			time.Sleep(500 * time.Millisecond) // let it finish the link's settings
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("systemd-networkd did not configure br0 within 20s")
}
