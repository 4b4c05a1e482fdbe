package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/errs"
	"vmnet/internal/sandbox"
	"vmnet/internal/testutil"
	"vmnet/internal/virt"
)

// lab is one sandbox with its own libvirtd, shared by the tests of this
// package (starting one takes seconds) and removed by TestMain. Each test
// uses its own network names and subnets, so the tests do not depend on
// each other's order.
var lab struct {
	once sync.Once
	name string // sandbox name; "" until made
	skip string
	err  error
	conn *libvirt.Connect
	k    *netlink.Handle
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if lab.k != nil {
		lab.k.Close()
	}
	if lab.conn != nil {
		lab.conn.Close()
	}
	if lab.name != "" {
		if err := sandbox.Down(context.Background(), lab.name); err != nil {
			fmt.Fprintf(os.Stderr, "remove sandbox %s: %v\n", lab.name, err)
			code = 1
		}
	}
	os.Exit(code)
}

// needTool finds a program on PATH or in /usr/sbin (root's tools).
func needTool(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	_, err := os.Stat("/usr/sbin/" + name)
	return err == nil
}

// requireLab returns a connection to the sandbox's libvirtd and a netlink
// handle in its network namespace, or skips the test with the reason.
func requireLab(t *testing.T) (*libvirt.Connect, *netlink.Handle) {
	t.Helper()
	lab.once.Do(func() {
		switch {
		case os.Geteuid() != 0:
			lab.skip = "needs root: starts a sandboxed libvirtd"
			return
		case testing.Short():
			lab.skip = "starts libvirtd: skipped with -short"
			return
		}
		for _, tool := range []string{"libvirtd", "virtlogd", "dnsmasq", "iptables", "ip"} {
			if !needTool(tool) {
				lab.skip = tool + " is not installed (bash scripts/deps.sh installs it)"
				return
			}
		}
		b := make([]byte, 3)
		rand.Read(b)
		name := "nettest-" + hex.EncodeToString(b)
		lab.name = name // set before Up, so TestMain removes a half-made one too
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, lab.err = sandbox.Up(ctx, name); lab.err != nil {
			return
		}
		uri, err := testutil.SandboxURI(name)
		if err != nil {
			lab.err = err
			return
		}
		if lab.conn, lab.err = virt.Connect(uri); lab.err != nil {
			return
		}
		lab.k, lab.err = OpenKernel(uri)
	})
	if lab.skip != "" {
		t.Skip(lab.skip)
	}
	if lab.err != nil {
		t.Fatalf("sandbox %s: %v", lab.name, lab.err)
	}
	return lab.conn, lab.k
}

// ipn runs ip in the sandbox's network namespace, as a person would look.
func ipn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", "vmnet-" + lab.name}, args...)...).CombinedOutput()
	return string(out), err
}

func mustIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := ipn(t, args...)
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func ensure(t *testing.T, conn *libvirt.Connect, k Kernel, s Spec) *Result {
	t.Helper()
	res, err := Ensure(context.Background(), Conn(conn), s, k)
	if err != nil {
		t.Fatalf("Ensure(%+v): %v", s, err)
	}
	return res
}

func cleanupNet(t *testing.T, conn *libvirt.Connect, name string) {
	t.Cleanup(func() {
		if _, err := Delete(Conn(conn), name); err != nil {
			t.Errorf("cleanup: delete network %s: %v", name, err)
		}
	})
}

// checkRunning asserts the network is active, autostarted and persistent.
func checkRunning(t *testing.T, conn *libvirt.Connect, name string) {
	t.Helper()
	n, err := conn.LookupNetworkByName(name)
	if err != nil {
		t.Fatalf("network %s: %v", name, err)
	}
	defer n.Free()
	active, _ := n.IsActive()
	auto, _ := n.GetAutostart()
	persistent, _ := n.IsPersistent()
	if !active || !auto || !persistent {
		t.Fatalf("network %s: active %v, autostart %v, persistent %v; want all true", name, active, auto, persistent)
	}
}

func TestEnsureNATAndIsolated(t *testing.T) {
	conn, k := requireLab(t)
	specs := []Spec{
		{Name: "nat0", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")},
		{Name: "iso", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("203.0.113.0/24")},
	}
	for _, s := range specs {
		cleanupNet(t, conn, s.Name)
		if res := ensure(t, conn, k, s); res.Outcome != Created {
			t.Fatalf("first Ensure(%s) = %+v, want created", s.Name, res)
		}
		checkRunning(t, conn, s.Name)
		// The bridge is in the sandbox's namespace, with the gateway address.
		out := mustIP(t, "-4", "addr", "show", "dev", BridgeName(s.Name))
		if want := Gateway(s.CIDR).String() + "/24"; !strings.Contains(out, want) {
			t.Errorf("bridge %s has no %s:\n%s", BridgeName(s.Name), want, out)
		}
		if res := ensure(t, conn, k, s); res.Outcome != Unchanged || len(res.Changes) != 0 {
			t.Errorf("second Ensure(%s) = %+v, want unchanged", s.Name, res)
		}
	}
	// The host's machine namespace has no such bridge.
	if _, err := netlink.LinkByName("vmnet-nat0"); err == nil {
		t.Error("vmnet-nat0 appeared in the test's own network namespace")
	}
	// NAT networks get masquerade rules in the sandbox.
	if out, err := exec.Command("ip", "netns", "exec", "vmnet-"+lab.name, "iptables-save").CombinedOutput(); err == nil &&
		!strings.Contains(string(out), "198.51.100.0/24") {
		t.Errorf("no NAT rule for 198.51.100.0/24 in the sandbox:\n%s", out)
	}

	infos, err := List(Conn(conn))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Info{}
	for _, in := range infos {
		got[in.Name] = in
	}
	want := map[string]Info{
		"nat0": {Name: "nat0", Owner: "vmnet", Mode: ModeNAT, Bridge: "vmnet-nat0", CIDR: "198.51.100.0/24", Gateway: "198.51.100.1",
			DHCPRange: "198.51.100.128-198.51.100.254", Active: true, Autostart: true, Persistent: true},
		"iso": {Name: "iso", Owner: "vmnet", Mode: ModeIsolated, Bridge: "vmnet-iso", CIDR: "203.0.113.0/24", Gateway: "203.0.113.1",
			DHCPRange: "203.0.113.128-203.0.113.254", Active: true, Autostart: true, Persistent: true},
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("List: %s = %+v, want %+v", name, got[name], w)
		}
	}

	// Delete twice: deleted, then absent; the bridge goes with it.
	for _, s := range specs {
		res, err := Delete(Conn(conn), s.Name)
		if err != nil || res.Outcome != Deleted {
			t.Fatalf("Delete(%s) = %+v, %v; want deleted", s.Name, res, err)
		}
		res, err = Delete(Conn(conn), s.Name)
		if err != nil || res.Outcome != Absent {
			t.Fatalf("second Delete(%s) = %+v, %v; want absent", s.Name, res, err)
		}
		if out, err := ipn(t, "link", "show", BridgeName(s.Name)); err == nil {
			t.Errorf("bridge %s still exists after delete:\n%s", BridgeName(s.Name), out)
		}
	}
}

func TestEnsureRefusesOverlaps(t *testing.T) {
	conn, k := requireLab(t)
	cleanupNet(t, conn, "base")
	ensure(t, conn, k, Spec{Name: "base", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.50.0.0/24")})

	// Another libvirt network's subnet.
	_, err := Ensure(context.Background(), Conn(conn), Spec{Name: "ovl", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.50.0.128/25")}, k)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "--cidr" || !strings.Contains(fe.Problem, `libvirt network "base"`) {
		t.Fatalf("overlap with network base: %v, want a --cidr FieldError naming it", err)
	}

	// A route on a link libvirt does not know, made by hand in the sandbox.
	// A veth, since container kernels often lack the dummy module.
	mustIP(t, "link", "add", "vx7", "type", "veth", "peer", "name", "vx7p")
	t.Cleanup(func() { ipn(t, "link", "del", "vx7") })
	mustIP(t, "addr", "add", "10.60.0.1/24", "dev", "vx7")
	mustIP(t, "link", "set", "vx7", "up")
	_, err = Ensure(context.Background(), Conn(conn), Spec{Name: "ovl", Mode: ModeNAT, CIDR: netip.MustParsePrefix("10.60.0.0/16")}, k)
	if !errors.As(err, &fe) || fe.Field != "--cidr" || !strings.Contains(fe.Problem, "overlaps route 10.60.0.0/24 dev vx7") {
		t.Fatalf("overlap with a route: %v, want a --cidr FieldError naming route 10.60.0.0/24 dev vx7", err)
	}
	if n, err := conn.LookupNetworkByName("ovl"); err == nil {
		n.Free()
		t.Fatal("a refused network was defined anyway")
	}
}

func TestEnsureConvergesAndKeepsReservations(t *testing.T) {
	conn, k := requireLab(t)
	s := Spec{Name: "hosts", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.70.0.0/24")}
	cleanupNet(t, conn, s.Name)
	ensure(t, conn, k, s)

	const mac, mac2 = "52:54:00:AA:00:01", "52:54:00:aa:00:02"
	ip, _ := HostAddress(s.CIDR, 10)
	for i, want := range []bool{true, false} {
		changed, err := AddHost(Conn(conn), s.Name, mac, ip, "web")
		if err != nil || changed != want {
			t.Fatalf("AddHost #%d = %v, %v; want changed %v", i+1, changed, err, want)
		}
	}
	// In the persistent config and in the running dnsmasq's config both.
	for _, flags := range []libvirt.NetworkXMLFlags{0, libvirt.NETWORK_XML_INACTIVE} {
		n, _ := conn.LookupNetworkByName(s.Name)
		text, _ := n.GetXMLDesc(flags)
		n.Free()
		if !strings.Contains(text, "mac='52:54:00:aa:00:01' name='web' ip='10.70.0.10'") {
			t.Errorf("XML (flags %d) lacks the reservation:\n%s", flags, text)
		}
	}
	var hostsFile strings.Builder
	if code, err := sandbox.Exec(context.Background(), lab.name, []string{"cat", "/var/lib/libvirt/dnsmasq/hosts.hostsfile"},
		sandbox.Stdio{Stdout: &hostsFile}); err != nil || code != 0 {
		t.Errorf("read dnsmasq's hosts file: exit %d, %v", code, err)
	}
	if !strings.Contains(hostsFile.String(), "52:54:00:aa:00:01,10.70.0.10,web") {
		t.Errorf("dnsmasq's hosts file lacks the reservation:\n%s", hostsFile.String())
	}

	// Conflicts: the IP or the hostname of another MAC.
	var ce *ConflictError
	if _, err := AddHost(Conn(conn), s.Name, mac2, ip, "db"); !errors.As(err, &ce) || ce.What != "IP" {
		t.Errorf("AddHost with a taken IP = %v, want a ConflictError on the IP", err)
	}
	ip2, _ := HostAddress(s.CIDR, 11)
	if _, err := AddHost(Conn(conn), s.Name, mac2, ip2, "web"); !errors.As(err, &ce) || ce.What != "hostname" {
		t.Errorf("AddHost with a taken hostname = %v, want a ConflictError on the hostname", err)
	}
	if _, err := AddHost(Conn(conn), s.Name, mac2, netip.MustParseAddr("10.71.0.5"), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddHost outside the subnet = %v, want a FieldError", err)
	}
	if _, err := AddHost(Conn(conn), s.Name, mac2, Gateway(s.CIDR), ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddHost of the gateway = %v, want a FieldError", err)
	}
	var nf *NotFoundError
	if _, err := AddHost(Conn(conn), "nosuchnet", mac2, ip2, ""); !errors.As(err, &nf) {
		t.Errorf("AddHost on a missing network = %v, want NotFoundError", err)
	}
	// A second guest, then the first one moves to another address.
	if changed, err := AddHost(Conn(conn), s.Name, mac2, ip2, "db"); err != nil || !changed {
		t.Fatalf("AddHost(mac2) = %v, %v", changed, err)
	}
	ip3, _ := HostAddress(s.CIDR, 12)
	if changed, err := AddHost(Conn(conn), s.Name, mac, ip3, "web"); err != nil || !changed {
		t.Fatalf("AddHost moving mac to %s = %v, %v", ip3, changed, err)
	}
	hosts, err := Hosts(Conn(conn), s.Name)
	if err != nil || len(hosts) != 2 || hosts[0] != (Reservation{MAC: "52:54:00:aa:00:01", IP: ip3, Hostname: "web"}) {
		t.Fatalf("Hosts = %+v, %v; want web on %s and db", hosts, err, ip3)
	}

	// A new DHCP range converges by redefine + restart; reservations stay.
	s2 := s
	s2.DHCPRange = [2]netip.Addr{netip.MustParseAddr("10.70.0.200"), netip.MustParseAddr("10.70.0.250")}
	res := ensure(t, conn, k, s2)
	if res.Outcome != Changed || !strings.Contains(strings.Join(res.Changes, "\n"), "DHCP range 10.70.0.128-10.70.0.254 → 10.70.0.200-10.70.0.250") {
		t.Fatalf("Ensure with a new range = %+v, want changed naming the range", res)
	}
	checkRunning(t, conn, s.Name)
	if after, _ := Hosts(Conn(conn), s.Name); len(after) != 2 {
		t.Errorf("reservations after the redefinition = %+v, want both kept", after)
	}
	if res := ensure(t, conn, k, s2); res.Outcome != Unchanged {
		t.Errorf("Ensure again = %+v, want unchanged", res)
	}
	// A new subnet drops reservations outside it, and says so.
	s3 := s2
	s3.CIDR, s3.DHCPRange = netip.MustParsePrefix("10.72.0.0/24"), [2]netip.Addr{}
	res = ensure(t, conn, k, s3)
	if res.Outcome != Changed || len(res.Notes) != 2 {
		t.Fatalf("Ensure with a new subnet = %+v, want changed with two dropped reservations noted", res)
	}
	if out := mustIP(t, "-4", "addr", "show", "dev", BridgeName(s.Name)); !strings.Contains(out, "10.72.0.1/24") {
		t.Errorf("bridge after the move:\n%s", out)
	}
	ensure(t, conn, k, s2) // back, for RemoveHost below
	if changed, err := AddHost(Conn(conn), s.Name, mac2, ip2, "db"); err != nil || !changed {
		t.Fatalf("AddHost(mac2) after the move = %v, %v", changed, err)
	}

	for i, want := range []bool{true, false} {
		changed, err := RemoveHost(Conn(conn), s.Name, strings.ToLower(mac2))
		if err != nil || changed != want {
			t.Fatalf("RemoveHost #%d = %v, %v; want changed %v", i+1, changed, err, want)
		}
	}
	if changed, err := RemoveHost(Conn(conn), "nosuchnet", mac); err != nil || changed {
		t.Errorf("RemoveHost on a missing network = %v, %v; want false, nil", changed, err)
	}
	leases, err := Leases(Conn(conn), s.Name)
	if err != nil || len(leases) != 0 {
		t.Errorf("Leases with no guests = %v, %v; want empty", leases, err)
	}
}

func TestBridgeMode(t *testing.T) {
	conn, k := requireLab(t)
	s := Spec{Name: "brnet", Mode: ModeBridge, Bridge: "br7"}
	cleanupNet(t, conn, s.Name)
	var fe *FieldError
	if _, err := Ensure(context.Background(), Conn(conn), s, k); !errors.As(err, &fe) || fe.Field != "--bridge" || !strings.Contains(fe.Problem, "does not exist") {
		t.Fatalf("bridge mode without the bridge: %v, want a --bridge FieldError", err)
	}
	mustIP(t, "link", "add", "br7", "type", "veth", "peer", "name", "br7p")
	if _, err := Ensure(context.Background(), Conn(conn), s, k); !errors.As(err, &fe) || !strings.Contains(fe.Problem, "veth link, not a bridge") {
		t.Fatalf("bridge mode on a veth: %v, want a --bridge FieldError", err)
	}
	mustIP(t, "link", "del", "br7")
	mustIP(t, "link", "add", "br7", "type", "bridge")
	t.Cleanup(func() { ipn(t, "link", "del", "br7") })
	if res := ensure(t, conn, k, s); res.Outcome != Created {
		t.Fatalf("Ensure = %+v, want created", res)
	}
	checkRunning(t, conn, s.Name)
	if res := ensure(t, conn, k, s); res.Outcome != Unchanged {
		t.Fatalf("second Ensure = %+v, want unchanged", res)
	}
	if _, err := AddHost(Conn(conn), s.Name, "52:54:00:00:00:09", netip.MustParseAddr("192.0.2.9"), ""); err == nil {
		t.Error("AddHost on a bridge-mode network succeeded")
	}
}

func TestForeignNetwork(t *testing.T) {
	conn, k := requireLab(t)
	def := &libvirtxml.Network{Name: "foreign", Bridge: &libvirtxml.NetworkBridge{Name: "virbr9"},
		IPs: []libvirtxml.NetworkIP{{Address: "10.80.0.1", Prefix: 24}}}
	text, _ := def.Marshal()
	n, err := conn.NetworkDefineXML(text)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Undefine(); n.Free() })

	var fo *errs.ForeignError
	if _, err := Delete(Conn(conn), "foreign"); !errors.As(err, &fo) {
		t.Errorf("Delete of a foreign network = %v, want ForeignError", err)
	}
	if _, err := Ensure(context.Background(), Conn(conn), Spec{Name: "foreign", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.81.0.0/24")}, k); !errors.As(err, &fo) {
		t.Errorf("Ensure over a foreign network = %v, want ForeignError", err)
	}
	if _, err := Ensure(context.Background(), Conn(conn), Spec{Name: "mine", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.80.0.0/16")}, k); !errors.Is(err, ErrInvalid) {
		t.Errorf("Ensure overlapping an inactive foreign network = %v, want a FieldError", err)
	}
	infos, err := List(Conn(conn))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == "foreign" && (in.Owner != "other" || in.Active || in.CIDR != "10.80.0.0/24") {
			t.Errorf("List: foreign = %+v, want owner other, inactive, 10.80.0.0/24", in)
		}
	}
	if n2, err := conn.LookupNetworkByName("foreign"); err != nil {
		t.Error("the foreign network is gone")
	} else {
		n2.Free()
	}
}

// TestInUse plugs a real guest (QEMU under TCG, no disk: it idles in the
// firmware) into a network and checks that vmnet will not cut it off.
func TestInUse(t *testing.T) {
	conn, k := requireLab(t)
	if !needTool("qemu-system-x86_64") {
		t.Skip("qemu-system-x86_64 is not installed (bash scripts/deps.sh installs it)")
	}
	s := Spec{Name: "busy", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.90.0.0/24")}
	cleanupNet(t, conn, s.Name)
	ensure(t, conn, k, s)
	dom := &libvirtxml.Domain{
		Type: "qemu", Name: "nettest-guest",
		Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"}},
		Devices: &libvirtxml.DomainDeviceList{Interfaces: []libvirtxml.DomainInterface{{
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.Name}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}}},
	}
	text, _ := dom.Marshal()
	d, err := conn.DomainCreateXML(text, 0)
	if err != nil {
		t.Fatalf("start a guest: %v", err)
	}
	defer d.Free()
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			d.Destroy()
		}
	})

	var iu *InUseError
	if _, err := Delete(Conn(conn), s.Name); !errors.As(err, &iu) || iu.Ports != 1 {
		t.Errorf("Delete of a network in use = %v, want InUseError with 1 port", err)
	}
	s2 := s
	s2.DHCPRange = [2]netip.Addr{netip.MustParseAddr("10.90.0.100"), netip.MustParseAddr("10.90.0.110")}
	if _, err := Ensure(context.Background(), Conn(conn), s2, k); !errors.As(err, &iu) || !strings.Contains(err.Error(), "DHCP range") {
		t.Errorf("Ensure changing a network in use = %v, want InUseError naming the DHCP range", err)
	}
	if res := ensure(t, conn, k, s); res.Outcome != Unchanged {
		t.Errorf("Ensure of a network in use, unchanged = %+v", res)
	}
	// Reservations change live without a restart, guest or no guest.
	if changed, err := AddHost(Conn(conn), s.Name, "52:54:00:00:90:01", netip.MustParseAddr("10.90.0.5"), "g"); err != nil || !changed {
		t.Errorf("AddHost on a network in use = %v, %v", changed, err)
	}
	if err := d.Destroy(); err != nil {
		t.Fatal(err)
	}
	destroyed = true
	if res, err := Delete(Conn(conn), s.Name); err != nil || res.Outcome != Deleted {
		t.Errorf("Delete after the guest stopped = %+v, %v", res, err)
	}
}

// TestEnsureMakesTransientPersistent: a vmnet network started with
// net-create (transient, gone at the next libvirtd restart) is made persistent.
func TestEnsureMakesTransientPersistent(t *testing.T) {
	conn, k := requireLab(t)
	s := Spec{Name: "trans", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.95.0.0/24")}
	cleanupNet(t, conn, s.Name)
	def, _ := Build(s)
	text, _ := def.Marshal()
	n, err := conn.NetworkCreateXML(text)
	if err != nil {
		t.Fatal(err)
	}
	n.Free()
	res := ensure(t, conn, k, s)
	if res.Outcome != Changed || !strings.Contains(strings.Join(res.Changes, "\n"), "persistent") {
		t.Fatalf("Ensure of a transient vmnet network = %+v, want changed, made persistent", res)
	}
	checkRunning(t, conn, s.Name)
}

// A network that an older vmnet made, with the <vmnet:owner> element
// instead of today's <network owner="vmnet">, is still vmnet's: Ensure
// converges it without calling it foreign, List says vmnet, Delete removes it.
func TestOlderOwnerMarkStillOwned(t *testing.T) {
	conn, k := requireLab(t)
	s := Spec{Name: "oldmark", Mode: ModeIsolated, CIDR: netip.MustParsePrefix("10.86.0.0/24")}
	def, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	def.Metadata = &libvirtxml.NetworkMetadata{XML: `<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet</vmnet:owner>`}
	text, _ := def.Marshal()
	n, err := conn.NetworkDefineXML(text)
	if err != nil {
		t.Fatal(err)
	}
	n.Free()
	cleanupNet(t, conn, s.Name)
	if res := ensure(t, conn, k, s); res.Outcome != Changed {
		t.Errorf("Ensure over an older vmnet network: %+v, want it started (changed)", res)
	}
	checkRunning(t, conn, s.Name)
	infos, err := List(Conn(conn))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == s.Name && in.Owner != "vmnet" {
			t.Errorf("List: %+v, want owner vmnet", in)
		}
	}
	if res, err := Delete(Conn(conn), s.Name); err != nil || res.Outcome != Deleted {
		t.Errorf("Delete = %+v, %v; want deleted", res, err)
	}
}
