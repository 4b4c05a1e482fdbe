package bridge

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vmnet/internal/nsdo"
)

// newNetns makes a throwaway network namespace for one test and returns a
// handle in it. Nothing the test does reaches the machine's own namespace.
func newNetns(t *testing.T) *Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	ns, err := nsdo.New()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	h, err := Open(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func addr(t *testing.T, s string) *netlink.Addr {
	t.Helper()
	return toAddr(netip.MustParsePrefix(s))
}

// lab is a host namespace with NIC eth0 (192.0.2.10/24, default route via
// 192.0.2.1), whose veth peer sits in a second namespace acting as the
// gateway. silent makes the gateway keep its address off, so nothing answers.
type lab struct {
	host, gw *Handle
	eth0     netlink.Link
	dir      string // the saved uplink states
}

// opt is the options for a run in the lab: its own state directory.
func (l *lab) opt() Options { return Options{HostID: "t", StateDir: l.dir} }

func newLab(t *testing.T, silent bool) *lab {
	t.Helper()
	l := &lab{host: newNetns(t), gw: newNetns(t), dir: filepath.Join(t.TempDir(), "uplinks")}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "gw0", PeerNamespace: netlink.NsFd(l.gw.ns)}
	must(t, l.host.LinkAdd(veth))
	var err error
	l.eth0, err = l.host.LinkByName("eth0")
	must(t, err)
	must(t, l.host.AddrAdd(l.eth0, addr(t, "192.0.2.10/24")))
	a6 := addr(t, "2001:db8::10/64")
	a6.Flags = unix.IFA_F_NODAD
	must(t, l.host.AddrAdd(l.eth0, a6))
	must(t, l.host.LinkSetUp(l.eth0))
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: l.eth0.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}))
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: l.eth0.Attrs().Index, Dst: mustCIDR("203.0.113.0/24"), Gw: net.ParseIP("192.0.2.254")}))
	gw0, err := l.gw.LinkByName("gw0")
	must(t, err)
	if !silent {
		must(t, l.gw.AddrAdd(gw0, addr(t, "192.0.2.1/24")))
	}
	must(t, l.gw.LinkSetUp(gw0))
	l.settle(t)
	return l
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// snapshot is everything a takeover may touch, for before/after comparison.
type snapshot struct {
	Links  []string
	Addrs  []string
	Routes []string
}

func snap(t *testing.T, k Kernel) snapshot {
	t.Helper()
	var s snapshot
	links, err := k.LinkList()
	must(t, err)
	for _, l := range links {
		a := l.Attrs()
		s.Links = append(s.Links, strings.Join([]string{a.Name, l.Type(), a.HardwareAddr.String(), itoa(a.MTU), itoa(a.MasterIndex), a.Alias, (a.Flags & net.FlagUp).String()}, " "))
		addrs, err := userAddresses(k, l)
		must(t, err)
		for _, ad := range addrs {
			s.Addrs = append(s.Addrs, a.Name+" "+toPrefix(ad).String())
		}
	}
	routes, err := k.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	must(t, err)
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() {
			continue // the kernel adds fe80::/64 when the link's carrier comes up, at its own pace
		}
		name := itoa(r.LinkIndex)
		if l, err := k.LinkByIndex(r.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		s.Routes = append(s.Routes, routeString(r)+" dev "+name+" proto "+itoa(int(r.Protocol)))
	}
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func equalSnap(t *testing.T, before, after snapshot) {
	t.Helper()
	if !slices.Equal(before.Links, after.Links) || !slices.Equal(before.Addrs, after.Addrs) || !slices.Equal(before.Routes, after.Routes) {
		t.Fatalf("the namespace changed:\nbefore: %+v\nafter:  %+v", before, after)
	}
}

func TestEnsureCreateIsIdempotentAndDeleteTwice(t *testing.T) {
	k := newNetns(t)
	ctx := context.Background()
	spec := Spec{Name: "br0", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("2001:db8::1/64")}}
	res, err := Ensure(ctx, k, spec, Options{HostID: "test", StateDir: t.TempDir()})
	must(t, err)
	if !res.Created || res.Unchanged() {
		t.Fatalf("first Ensure: created=%v changes=%v", res.Created, res.Changes)
	}
	st, err := Inspect(k, "br0")
	must(t, err)
	if !st.Up || !st.Managed || st.MAC.String() != StableMAC("test", "br0").String() {
		t.Fatalf("bridge state after create: %+v", st)
	}
	if got := prefixes(st.Addresses); got != "192.0.2.1/24 2001:db8::1/64" {
		t.Fatalf("addresses = %s", got)
	}
	res, err = Ensure(ctx, k, spec, Options{HostID: "test", StateDir: t.TempDir()})
	must(t, err)
	if !res.Unchanged() {
		t.Fatalf("second Ensure changed %v", res.Changes)
	}
	for i := 0; i < 2; i++ {
		res, err = Delete(ctx, k, "br0", Options{StateDir: t.TempDir()})
		must(t, err)
	}
	if !res.Unchanged() {
		t.Fatalf("second Delete reported changes %v", res.Changes)
	}
	if _, err := Inspect(k, "br0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bridge still there after delete: %v", err)
	}
}

func prefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, " ")
}

func TestEnsureConverges(t *testing.T) {
	k := newNetns(t)
	ctx := context.Background()
	p := netip.MustParsePrefix
	_, err := Ensure(ctx, k, Spec{Name: "br0", Addresses: []netip.Prefix{p("192.0.2.1/24")}}, Options{HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0xbe, 0xef}
	vlan := kernelHasVLANFiltering(t, k)
	spec := Spec{Name: "br0", Addresses: []netip.Prefix{p("198.51.100.1/24")}, MTU: 9000, STP: true, VLANFiltering: vlan, MAC: mac}
	res, err := Ensure(ctx, k, spec, Options{HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	wantChanges := 5
	if vlan {
		wantChanges++
	}
	if res.Created || len(res.Changes) != wantChanges {
		t.Fatalf("converge: created=%v changes=%q", res.Created, res.Changes)
	}
	st, err := Inspect(k, "br0")
	must(t, err)
	if st.MTU != 9000 || !st.STP || st.VLANFiltering != vlan || st.MAC.String() != mac.String() || prefixes(st.Addresses) != "198.51.100.1/24" {
		t.Fatalf("state after converge: %+v", st)
	}
	res, err = Ensure(ctx, k, spec, Options{HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	if !res.Unchanged() {
		t.Fatalf("Ensure after converge changed %q", res.Changes)
	}
	// And back: STP off is a change too.
	spec.STP = false
	res, err = Ensure(ctx, k, spec, Options{HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	if strings.Join(res.Changes, ";") != "turn STP off" {
		t.Fatalf("changes = %q", res.Changes)
	}
}

// kernelHasVLANFiltering reports whether bridges here support VLAN
// filtering; some kernels are built without it (the sandbox's is).
func kernelHasVLANFiltering(t *testing.T, k Kernel) bool {
	on := true
	err := k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "vlanprobe"}, VlanFiltering: &on})
	if errors.Is(err, unix.EOPNOTSUPP) {
		t.Log("this kernel has no bridge VLAN filtering: testing without it")
		_, err := Ensure(context.Background(), k, Spec{Name: "vlanprobe", VLANFiltering: true}, Options{HostID: "t", StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "CONFIG_BRIDGE_VLAN_FILTERING") {
			t.Fatalf("Ensure with VLAN filtering on such a kernel = %v, want a clear error", err)
		}
		return false
	}
	must(t, err)
	l, err := k.LinkByName("vlanprobe")
	must(t, err)
	must(t, k.LinkDel(l))
	return true
}

func TestEnsureRefusesWithoutChanging(t *testing.T) {
	k := newNetns(t)
	ctx := context.Background()
	must(t, k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0"}, PeerName: "veth0p"}))
	d, err := k.LinkByName("veth0")
	must(t, err)
	must(t, k.AddrAdd(d, addr(t, "198.51.100.1/24")))
	must(t, k.LinkSetUp(d))
	must(t, k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "other0"}}))
	must(t, k.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth1"}, PeerName: "veth1p"}))
	other, err := k.LinkByName("other0")
	must(t, err)
	d1, err := k.LinkByName("veth1")
	must(t, err)
	must(t, k.LinkSetMaster(d1, other))
	before := snap(t, k)

	p := netip.MustParsePrefix
	for _, tc := range []struct {
		spec    Spec
		wantErr string
	}{
		{Spec{Name: "veth0"}, `link "veth0" exists but is a veth, not a bridge`},
		{Spec{Name: "other0"}, `bridge "other0" exists but was not created by vmnet`},
		{Spec{Name: "br0", Addresses: []netip.Prefix{p("198.51.100.9/24")}}, `--address "198.51.100.9/24": overlaps route 198.51.100.0/24 dev veth0`},
		{Spec{Name: "br0", Uplink: "eth9"}, `--uplink "eth9": does not exist`},
		{Spec{Name: "br0", Uplink: "veth1"}, `--uplink "veth1": is already enslaved to other0`},
		{Spec{Name: "br0", Uplink: "lo"}, `--uplink "lo"`},
		{Spec{Name: "1234567890123456"}, "is 16 bytes long"},
	} {
		_, err := Ensure(ctx, k, tc.spec, Options{HostID: "t", StateDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Ensure(%+v) = %v, want %q", tc.spec, err, tc.wantErr)
		}
		equalSnap(t, before, snap(t, k))
	}
	if _, err := Delete(ctx, k, "other0", Options{StateDir: t.TempDir()}); err == nil {
		t.Error("Delete removed a bridge vmnet did not create")
	}
	equalSnap(t, before, snap(t, k))
}

func TestDryRunTouchesNothing(t *testing.T) {
	k := newNetns(t)
	before := snap(t, k)
	res, err := Ensure(context.Background(), k, Spec{Name: "br0", Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}, Options{DryRun: true, HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	if len(res.Changes) != 3 || !res.DryRun {
		t.Fatalf("dry run result %+v", res)
	}
	equalSnap(t, before, snap(t, k))
}

func TestUplinkTakeoverAndRelease(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	before := snap(t, l.host)
	mac := l.eth0.Attrs().HardwareAddr.String()

	res, err := Ensure(ctx, l.host, Spec{Name: "br0", Uplink: "eth0", ConfirmTimeout: 10 * time.Second}, l.opt())
	must(t, err)
	if !strings.Contains(strings.Join(res.Changes, "\n"), "confirmed: 192.0.2.1 answered through br0") {
		t.Fatalf("takeover not confirmed: %q", res.Changes)
	}
	st, err := Inspect(l.host, "br0")
	must(t, err)
	if st.MAC.String() != mac || prefixes(st.Addresses) != "192.0.2.10/24 2001:db8::10/64" || !slices.Equal(st.Ports, []string{"eth0"}) || st.Uplink != "eth0" {
		t.Fatalf("bridge after takeover: %+v", st)
	}
	after := snap(t, l.host)
	for _, want := range []string{"default via 192.0.2.1 dev br0", "203.0.113.0/24 via 192.0.2.254 dev br0"} {
		if !slices.ContainsFunc(after.Routes, func(r string) bool { return strings.HasPrefix(r, want) }) {
			t.Fatalf("route %q did not move: %v", want, after.Routes)
		}
	}
	if slices.ContainsFunc(after.Addrs, func(a string) bool { return strings.HasPrefix(a, "eth0 ") }) {
		t.Fatalf("eth0 kept addresses: %v", after.Addrs)
	}
	// The gateway answers through the bridge, as vmnet's own probe said.
	must(t, Ping(ctx, l.host, netip.MustParseAddr("192.0.2.1"), 5*time.Second))

	res, err = Ensure(ctx, l.host, Spec{Name: "br0", Uplink: "eth0"}, l.opt())
	must(t, err)
	if !res.Unchanged() {
		t.Fatalf("second takeover changed %q", res.Changes)
	}

	_, err = Delete(ctx, l.host, "br0", l.opt())
	must(t, err)
	equalSnap(t, before, snap(t, l.host))
}

func TestUplinkRollbackWhenGatewaySilent(t *testing.T) {
	l := newLab(t, true)
	before := snap(t, l.host)
	_, err := Ensure(context.Background(), l.host, Spec{Name: "br0", Uplink: "eth0", ConfirmTimeout: 2 * time.Second}, l.opt())
	var rb *RolledBackError
	if !errors.As(err, &rb) || !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Ensure with a silent gateway = %v, want a rollback after no answer", err)
	}
	if !strings.Contains(err.Error(), "192.0.2.1 did not answer through br0 within 2s") {
		t.Fatalf("error does not say what failed: %v", err)
	}
	equalSnap(t, before, snap(t, l.host))
}

// failingKernel makes one kernel call fail, to test rollback from the middle.
type failingKernel struct {
	Kernel
	failRouteOn string // fail RouteAdd on this link
}

func (f failingKernel) RouteAdd(r *netlink.Route) error {
	if l, err := f.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Name == f.failRouteOn {
		return unix.ENETUNREACH
	}
	return f.Kernel.RouteAdd(r)
}

func TestUplinkRollbackOnNetlinkFailure(t *testing.T) {
	l := newLab(t, false)
	before := snap(t, l.host)
	k := failingKernel{Kernel: l.host, failRouteOn: "br0"}
	_, err := Ensure(context.Background(), k, Spec{Name: "br0", Uplink: "eth0"}, l.opt())
	var rb *RolledBackError
	if !errors.As(err, &rb) || !errors.Is(err, unix.ENETUNREACH) {
		t.Fatalf("Ensure with a failing route add = %v, want a rollback", err)
	}
	equalSnap(t, before, snap(t, l.host))
}

func TestPingNeedsAnAnswer(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	must(t, Ping(ctx, l.host, netip.MustParseAddr("192.0.2.1"), 5*time.Second))
	if err := Ping(ctx, l.host, netip.MustParseAddr("192.0.2.99"), time.Second); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("Ping of a silent address = %v", err)
	}
}
