package hostctr

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vmnet/internal/lab"
	"vmnet/internal/nsdo"
)

// bridgeNetns is a throwaway namespace standing in for the lab host, with
// bridge lab0 (192.0.2.1/24, up) in it.
func bridgeNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	ns, err := nsdo.New()
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "lab0"}}
	must(t, h.LinkAdd(br))
	must(t, h.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 1), Mask: net.CIDRMask(24, 32)}}))
	must(t, h.LinkSetUp(br))
	return h
}

// containerProcess is a process in a namespace of its own, standing in
// for a --network none container: what Attach gets is its pid.
func containerProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "sleep", "120")
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ns, err := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); err == nil && ns != self {
			return cmd.Process.Pid
		}
	}
	t.Fatal("unshare did not enter a namespace of its own")
	return 0
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAttachNetns: in throwaway namespaces, Attach gives the process eth0
// with its address and default route on the bridge (veth: the host end a
// port of the bridge; macvlan: a child of it), and a second Attach changes
// nothing. The bridge's address answers a veth container's ping, and never
// a macvlan child's (the parent does not receive its children's frames).
func TestAttachNetns(t *testing.T) {
	for _, mode := range []string{lab.HostVeth, lab.HostMacvlan} {
		t.Run(mode, func(t *testing.T) {
			host := bridgeNetns(t)
			pid := containerProcess(t)
			s := Spec{Lab: "t", Node: "web", Bridge: "lab0", Mode: mode, Address: netip.MustParsePrefix("192.0.2.20/24"), Gateway: netip.MustParseAddr("192.0.2.1")}
			must(t, Attach(host, s, pid))
			must(t, Attach(host, s, pid)) // again: converged, not doubled
			ns, err := netns.GetFromPid(pid)
			must(t, err)
			defer ns.Close()
			in, err := netlink.NewHandleAt(ns)
			must(t, err)
			defer in.Close()
			eth0, err := in.LinkByName(Guest)
			must(t, err)
			addrs, _ := in.AddrList(eth0, netlink.FAMILY_V4)
			if len(addrs) != 1 || addrs[0].IPNet.String() != "192.0.2.20/24" || eth0.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("eth0: %v, flags %v; want 192.0.2.20/24 only, up", addrs, eth0.Attrs().Flags)
			}
			routes, _ := in.RouteList(eth0, netlink.FAMILY_V4)
			var gw string
			for _, r := range routes {
				if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
					gw = r.Gw.String()
				}
			}
			if gw != "192.0.2.1" {
				t.Errorf("default route via %q, want 192.0.2.1: %v", gw, routes)
			}
			if mode == lab.HostVeth {
				hl, err := host.LinkByName(s.HostLink())
				must(t, err)
				must(t, host.LinkSetNoMaster(hl)) // as when the bridge was removed and made again
				must(t, Attach(host, s, pid))
				hl, _ = host.LinkByName(s.HostLink())
				br, _ := host.LinkByName("lab0")
				if hl.Attrs().MasterIndex != br.Attrs().Index {
					t.Errorf("%s is not a port of lab0 after Attach ran again", s.HostLink())
				}
			}
			out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-n", "ping", "-c", "1", "-W", "2", "192.0.2.1").CombinedOutput()
			switch {
			case mode == lab.HostVeth && err != nil:
				t.Errorf("ping from the container's namespace to the bridge: %v\n%s", err, out)
			case mode == lab.HostMacvlan && err == nil:
				t.Errorf("a macvlan child of the bridge reached the bridge's own address, which the derived checks expect blocked:\n%s", out)
			}
		})
	}
}

// TestDropLinksNetns: the veth pair an up killed before moving its inner
// end leaves on the host goes with DropLinks, which may run again.
func TestDropLinksNetns(t *testing.T) {
	host := bridgeNetns(t)
	s := Spec{Lab: "t", Node: "web"}
	must(t, host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: s.HostLink()}, PeerName: s.tmpLink()}))
	must(t, DropLinks(host, "t", "web"))
	must(t, DropLinks(host, "t", "web"))
	for _, name := range []string{s.HostLink(), s.tmpLink()} {
		if _, err := host.LinkByName(name); err == nil {
			t.Errorf("%s is still there", name)
		}
	}
}
