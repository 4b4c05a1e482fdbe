package persist

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// networkdMode lets systemd-networkd, which runs as user systemd-network,
// read the files whatever umask the writing process had.
const networkdMode = 0o644

// ini builds a systemd-style INI file, keeping sections and keys in the
// order they are added so the output is stable and diffable.
type ini struct{ b strings.Builder }

func (w *ini) section(name string) {
	if w.b.Len() > 0 && !strings.HasSuffix(w.b.String(), "\n\n") {
		w.b.WriteString("\n")
	}
	fmt.Fprintf(&w.b, "[%s]\n", name)
}

func (w *ini) kv(key, value string) { fmt.Fprintf(&w.b, "%s=%s\n", key, value) }

// renderNetworkd writes a .netdev that creates the bridge, a .network that
// configures it, and for an uplink a .network that enslaves the NIC. The
// "10-" prefix sorts before the usual distribution files (20-wired,
// 50-dhcp, 99-default), and networkd applies the first .network that matches.
func renderNetworkd(p *plan) []File {
	h := header(p.Name)
	base := path.Join(networkdDir, "10-vmnet-"+p.Name)

	var nd ini
	nd.b.WriteString(h)
	nd.section("NetDev")
	nd.kv("Name", p.Name)
	nd.kv("Kind", "bridge")
	nd.kv("MACAddress", p.mac)
	if p.MTU > 0 {
		nd.kv("MTUBytes", strconv.Itoa(p.MTU))
	}
	nd.section("Bridge")
	nd.kv("STP", yesNo(p.STP, "yes", "no"))
	if p.VLANFiltering {
		// Only when on: "no" makes networkd send the attribute, and kernels
		// without CONFIG_BRIDGE_VLAN_FILTERING then refuse every bridge setting.
		nd.kv("VLANFiltering", "yes")
	}

	var nw ini
	nw.b.WriteString(h)
	nw.section("Match")
	nw.kv("Name", p.Name)
	// The .netdev is applied only when networkd creates the bridge; [Link]
	// also converges a bridge that already exists (vmnet made it live).
	nw.section("Link")
	nw.kv("MACAddress", p.mac)
	if p.MTU > 0 {
		nw.kv("MTUBytes", strconv.Itoa(p.MTU))
	}
	nw.section("Network")
	if p.DHCP4 {
		nw.kv("DHCP", "ipv4")
	}
	for _, a := range append(p.addr4, p.addr6...) {
		nw.kv("Address", a.String())
	}
	nw.kv("LinkLocalAddressing", "ipv6")
	if p.lab {
		nw.kv("IPv6AcceptRA", "no")
	}
	// A bridge without ports (a lab bridge before its first VM starts) has
	// no carrier; without this networkd would leave it unconfigured.
	nw.kv("ConfigureWithoutCarrier", "yes")
	for _, gw := range []string{addrString(p.gw4), addrString(p.gw6)} {
		if gw != "" {
			nw.section("Route")
			nw.kv("Gateway", gw)
		}
	}

	files := []File{
		{Path: base + ".netdev", Mode: networkdMode, Content: []byte(nd.b.String())},
		{Path: base + ".network", Mode: networkdMode, Content: []byte(nw.b.String())},
	}
	if p.Uplink != "" {
		var up ini
		up.b.WriteString(h)
		up.section("Match")
		up.kv("Name", p.Uplink)
		if p.MTU > 0 {
			up.section("Link")
			up.kv("MTUBytes", strconv.Itoa(p.MTU))
		}
		up.section("Network")
		up.kv("Bridge", p.Name)
		up.kv("LinkLocalAddressing", "no")
		up.kv("IPv6AcceptRA", "no")
		files = append(files, File{
			Path: base + "-uplink-" + p.Uplink + ".network", Mode: networkdMode, Content: []byte(up.b.String()),
		})
	}
	return files
}
