package doctor

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vmnet/internal/nsdo"
)

// LinkSupport says whether this host's kernel makes one kind of link (or
// one mode of it).
type LinkSupport struct {
	Kind  string `json:"kind"`            // bridge, veth, macvtap/passthrough, ...
	OK    bool   `json:"ok"`              // the kernel made it
	Error string `json:"error,omitempty"` // why not, as the kernel said
}

// linkProbe makes one kind of link in the throwaway namespace, parent
// being a veth there (0 when the kernel has no veth), and removes it.
type linkProbe struct {
	kind string
	link func(parent int) netlink.Link
}

// attrs names a probe's link.
func attrs(name string, parent int) netlink.LinkAttrs {
	return netlink.LinkAttrs{Name: name, ParentIndex: parent}
}

// linkProbes are the links vmnet's labs and the course's modes use, in the
// order doctor lists them.
var linkProbes = []linkProbe{
	{"bridge", func(int) netlink.Link { return &netlink.Bridge{LinkAttrs: attrs("p-br", 0)} }},
	{"macvlan", func(p int) netlink.Link {
		return &netlink.Macvlan{LinkAttrs: attrs("p-mvl", p), Mode: netlink.MACVLAN_MODE_BRIDGE}
	}},
	{"macvtap/bridge", macvtap(netlink.MACVLAN_MODE_BRIDGE)},
	{"macvtap/vepa", macvtap(netlink.MACVLAN_MODE_VEPA)},
	{"macvtap/private", macvtap(netlink.MACVLAN_MODE_PRIVATE)},
	{"macvtap/passthrough", macvtap(netlink.MACVLAN_MODE_PASSTHRU)},
	{"vxlan", func(int) netlink.Link { return &netlink.Vxlan{LinkAttrs: attrs("p-vx", 0), VxlanId: 42, Port: 4789} }},
	{"tun", func(int) netlink.Link {
		return &netlink.Tuntap{LinkAttrs: attrs("p-tap", 0), Mode: netlink.TUNTAP_MODE_TAP}
	}},
	{"ipvlan", func(p int) netlink.Link {
		return &netlink.IPVlan{LinkAttrs: attrs("p-ipvl", p), Mode: netlink.IPVLAN_MODE_L2}
	}},
	{"wireguard", func(int) netlink.Link { return &netlink.Wireguard{LinkAttrs: attrs("p-wg", 0)} }},
	{"vlan", func(p int) netlink.Link { return &netlink.Vlan{LinkAttrs: attrs("p-vlan", p), VlanId: 10} }},
	{"bond", func(int) netlink.Link { return netlink.NewLinkBond(attrs("p-bond", 0)) }},
	{"dummy", func(int) netlink.Link { return &netlink.Dummy{LinkAttrs: attrs("p-dummy", 0)} }},
}

// macvtap is the probe of one macvtap mode.
func macvtap(mode netlink.MacvlanMode) func(int) netlink.Link {
	return func(p int) netlink.Link {
		return &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: attrs("p-mvt", p), Mode: mode}}
	}
}

// ProbeLinks tries to make each kind of link in a fresh, unnamed network
// namespace that it removes again (unshare --net, then 'ip link add ...
// type KIND' for each), so the host's own network never changes. Making a
// link may load its kernel module, as a lab using it would.
func ProbeLinks() ([]LinkSupport, error) {
	ns, err := nsdo.New()
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	var out []LinkSupport
	err = nsdo.Do(ns, func() error {
		out, err = probeIn(ns)
		return err
	})
	return out, err
}

// probeIn runs every probe inside ns, on the thread nsdo.Do put there (a
// tap is made by the thread that opens /dev/net/tun, in its namespace).
func probeIn(ns netns.NsHandle) ([]LinkSupport, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in the probe namespace: %w", err)
	}
	defer h.Close()
	out := []LinkSupport{try(h, "veth", &netlink.Veth{LinkAttrs: attrs("p-veth0", 0), PeerName: "p-veth1"}, false)}
	parent := 0
	if l, err := h.LinkByName("p-veth0"); err == nil {
		parent = l.Attrs().Index
	}
	for _, p := range linkProbes {
		if parent == 0 && p.link(1).Attrs().ParentIndex != 0 {
			out = append(out, LinkSupport{Kind: p.kind, Error: "not tried: it needs a parent link, and veth failed"})
			continue
		}
		out = append(out, try(h, p.kind, p.link(parent), true))
	}
	return out, nil
}

// try makes link l with h and, when remove is set, deletes it again.
func try(h *netlink.Handle, kind string, l netlink.Link, remove bool) LinkSupport {
	if err := h.LinkAdd(l); err != nil {
		return LinkSupport{Kind: kind, Error: kernelSays(err)}
	}
	if remove {
		if err := h.LinkDel(l); err != nil && !errors.As(err, new(netlink.LinkNotFoundError)) {
			return LinkSupport{Kind: kind, OK: true, Error: "made, but not removed: " + err.Error()}
		}
	}
	return LinkSupport{Kind: kind, OK: true}
}

// kernelSays words a refusal as 'ip link add' would.
func kernelSays(err error) string {
	if s := err.Error(); strings.Contains(s, "not supported") {
		return "Unknown device type (" + s + "): the kernel has no module for it"
	}
	return err.Error()
}

// checkLinks is doctor's finding about link kinds: every kind's answer,
// a failure when vmnet's own (bridge, tun) are missing, a warning when a
// mode a lab may ask for is, with where that mode can run instead.
func checkLinks(h Host) Finding {
	f := Finding{Check: "link types"}
	if h.Links == nil {
		f.Status, f.Detail = OK, "not probed"
		return f
	}
	links, err := h.Links()
	if err != nil {
		f.Status, f.Detail = Warn, "could not probe: "+err.Error()
		f.Fix = "run vmnet doctor as root: it tries each link type in a throwaway network namespace"
		return f
	}
	f.Links = links
	var have, missing []string
	f.Status = OK
	for _, l := range links {
		if l.OK {
			have = append(have, l.Kind)
			continue
		}
		missing = append(missing, l.Kind)
		if l.Kind == "bridge" || l.Kind == "tun" || l.Kind == "veth" {
			f.Status = Fail
		} else if f.Status == OK {
			f.Status = Warn
		}
	}
	f.Detail = "this kernel makes " + strings.Join(have, ", ")
	if len(missing) > 0 {
		f.Detail += "; it lacks " + strings.Join(missing, ", ")
		f.Fix = "modes on " + strings.Join(missing, ", ") + " cannot run on this host: run them inside a guest (the guests' Debian kernel has them all), or load the module (modprobe)"
	}
	return f
}
