package bridge

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// fullSnap is everything in a namespace a takeover may touch, in every
// routing table: links (MAC, MTU, master, flags), addresses with their
// flags and scope, and routes with table, type, protocol, scope, metric,
// source and next-hop flags. IPv6 link-local addresses and their routes are
// left out: the kernel adds them when a carrier comes, at its own pace.
func fullSnap(t *testing.T, k Kernel) snapshot {
	t.Helper()
	var s snapshot
	links, err := k.LinkList()
	must(t, err)
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	for _, l := range links {
		a := l.Attrs()
		s.Links = append(s.Links, strings.Join([]string{a.Name, l.Type(), a.HardwareAddr.String(), itoa(a.MTU), "master=" + names[a.MasterIndex],
			a.Alias, (a.Flags & net.FlagUp).String(), "lower_up=" + itoa(int(a.RawFlags&unix.IFF_LOWER_UP))}, " "))
		addrs, err := k.AddrList(l, unix.AF_UNSPEC)
		must(t, err)
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() {
				continue
			}
			flags := ad.Flags &^ (unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC)
			s.Addrs = append(s.Addrs, strings.Join([]string{a.Name, ad.IPNet.String(), "scope", itoa(ad.Scope), "flags", itoa(flags), "label", ad.Label}, " "))
		}
	}
	routes, err := k.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	must(t, err)
	for _, r := range routes {
		if r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() {
			continue
		}
		dst := "default"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		s.Routes = append(s.Routes, strings.Join([]string{"table", itoa(r.Table), "type", itoa(r.Type), dst, "via", r.Gw.String(), "src", r.Src.String(),
			"dev", names[r.LinkIndex], "proto", itoa(int(r.Protocol)), "scope", itoa(int(r.Scope)), "metric", itoa(r.Priority), "flags", itoa(r.Flags)}, " "))
	}
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

// richLab is newLab plus routes an admin keeps beside the default one: a
// policy table, a metric with an explicit protocol, an onlink gateway.
func richLab(t *testing.T, silent bool) *lab {
	t.Helper()
	l := newLab(t, silent)
	idx := l.eth0.Attrs().Index
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: mustCIDR("198.51.100.0/24"), Gw: net.ParseIP("192.0.2.253"), Table: 100}))
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: mustCIDR("203.0.113.128/25"), Gw: net.ParseIP("192.0.2.252"),
		Priority: 50, Protocol: unix.RTPROT_STATIC}))
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: mustCIDR("198.18.0.0/15"), Gw: net.ParseIP("198.18.0.1"), Flags: int(netlink.FLAG_ONLINK)}))
	must(t, l.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: mustCIDR("2001:db8:1::/48"), Gw: net.ParseIP("2001:db8::1")}))
	l.settle(t)
	return l
}

// settle waits until the kernel has acted on eth0's carrier: its routes lose
// the linkdown flag and IPv6 adds its multicast route, both a moment after
// the carrier comes.
func (l *lab) settle(t *testing.T) {
	t.Helper()
	waitFor(t, "eth0's routes to settle", func() bool {
		routes, err := l.host.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{LinkIndex: l.eth0.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			return false
		}
		mcast := false
		for _, r := range routes {
			if r.Flags&unix.RTNH_F_LINKDOWN != 0 {
				return false
			}
			mcast = mcast || r.Type == unix.RTN_MULTICAST
		}
		return mcast
	})
}

// cutCarrier takes the gateway's side down, so eth0 has no carrier.
func (l *lab) cutCarrier(t *testing.T) {
	t.Helper()
	gw0, err := l.gw.LinkByName("gw0")
	must(t, err)
	must(t, l.gw.LinkSetDown(gw0))
	waitFor(t, "eth0 to lose its carrier", func() bool {
		e, err := l.host.LinkByName("eth0")
		return err == nil && e.Attrs().RawFlags&unix.IFF_LOWER_UP == 0
	})
}

func (l *lab) restoreCarrier(t *testing.T) {
	t.Helper()
	gw0, err := l.gw.LinkByName("gw0")
	must(t, err)
	must(t, l.gw.LinkSetUp(gw0))
	waitFor(t, "eth0 to get its carrier back", func() bool {
		e, err := l.host.LinkByName("eth0")
		return err == nil && e.Attrs().RawFlags&unix.IFF_LOWER_UP != 0
	})
	l.settle(t)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// The issue: with eth0 down to no carrier, a takeover failed re-adding the
// routes (the kernel refuses RTNH_F_LINKDOWN in a new route's flags) and the
// rollback lost the default and the static routes for good.
func TestUplinkNoCarrierRollbackKeepsEveryRoute(t *testing.T) {
	l := richLab(t, false)
	l.cutCarrier(t)
	before := fullSnap(t, l.host)
	_, err := Ensure(context.Background(), l.host, Spec{Name: "br0", Uplink: "eth0", ConfirmTimeout: time.Second, AllowNoCarrier: true}, l.opt())
	if err == nil {
		t.Fatal("a takeover of a NIC without carrier was confirmed")
	}
	t.Logf("Ensure: %v", err)
	if strings.Contains(err.Error(), "rollback was incomplete") {
		t.Errorf("rollback was incomplete: %v", err)
	}
	equalSnap(t, before, fullSnap(t, l.host))
	// And the routes are there when the link returns.
	l.restoreCarrier(t)
	got := fullSnap(t, l.host).Routes
	for _, want := range []string{"0.0.0.0/0 via 192.0.2.1 ", "203.0.113.0/24 via 192.0.2.254 ", "198.51.100.0/24 via 192.0.2.253 "} {
		if !slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, want) }) {
			t.Errorf("route %q is gone after the link came back: %v", want, got)
		}
	}
}

// A takeover and its release give the NIC back every route in every table,
// its metrics, protocols and onlink flags included.
func TestUplinkDeleteRestoresEveryTable(t *testing.T) {
	l := richLab(t, false)
	before := fullSnap(t, l.host)
	ctx := context.Background()
	defer syscall.Umask(syscall.Umask(0))
	_, err := Ensure(ctx, l.host, Spec{Name: "br0", Uplink: "eth0", ConfirmTimeout: 10 * time.Second}, l.opt())
	must(t, err)
	// The state before stays on disk while the bridge holds the NIC:
	// 0600 in a 0700 directory, even under umask 0.
	for path, want := range map[string]os.FileMode{l.dir: 0o700, filepath.Join(l.dir, "eth0.json"): 0o600} {
		st, err := os.Stat(path)
		must(t, err)
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), want)
		}
	}
	_, err = Delete(ctx, l.host, "br0", l.opt())
	must(t, err)
	equalSnap(t, before, fullSnap(t, l.host))
	if _, err := os.Stat(filepath.Join(l.dir, "eth0.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("delete left the saved state: %v", err)
	}
}

// Without --allow-no-carrier a NIC without carrier is refused as bad input
// before anything changes, and no state is saved.
func TestUplinkWithoutCarrierRefused(t *testing.T) {
	l := richLab(t, false)
	l.cutCarrier(t)
	before := fullSnap(t, l.host)
	_, err := Ensure(context.Background(), l.host, Spec{Name: "br0", Uplink: "eth0"}, l.opt())
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != "--uplink" || fe.Value != "eth0" ||
		!strings.Contains(fe.Problem, "no carrier") || !strings.Contains(fe.Fix, "--allow-no-carrier") {
		t.Fatalf("Ensure on a NIC without carrier = %v, want a --uplink field error naming the fix", err)
	}
	equalSnap(t, before, fullSnap(t, l.host))
	if entries, _ := os.ReadDir(l.dir); len(entries) != 0 {
		t.Fatalf("a refused takeover saved state: %v", entries)
	}
}
