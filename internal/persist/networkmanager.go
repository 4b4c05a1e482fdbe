package persist

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
)

// nmMode is what NetworkManager requires: it ignores keyfiles that anyone
// but root can read, because keyfiles may hold secrets.
const nmMode = 0o600

// renderNetworkManager writes keyfiles in the layout `nmcli --offline
// connection add` produces (NM 1.42): a bridge profile and, for an uplink, an
// ethernet port profile.
func renderNetworkManager(p *plan) []File {
	h := header(p.Name)
	id := "vmnet-" + p.Name
	uuid := stableUUID(id)
	files := []File{nmBridgeProfile(p, h, id, uuid)}
	if p.Uplink != "" {
		files = append(files, nmPortProfile(p, h, id, uuid))
	}
	return files
}

// nmBridgeProfile is the keyfile of the bridge itself, with its addresses.
func nmBridgeProfile(p *plan, h, id, uuid string) File {
	var w ini
	w.b.WriteString(h)
	w.section("connection")
	w.kv("id", id)
	w.kv("uuid", uuid)
	w.kv("type", "bridge")
	if p.Uplink != "" {
		// Bring the port profile up whenever the bridge comes up, also when
		// the bridge is activated by hand.
		w.kv("autoconnect-slaves", "1")
	}
	w.kv("interface-name", p.Name)
	w.section("ethernet")
	if p.MTU > 0 {
		w.kv("mtu", strconv.Itoa(p.MTU)) // NM 1.42 has no bridge.mtu; ethernet.mtu applies
	}
	w.section("bridge")
	w.kv("mac-address", p.mac)
	w.kv("stp", strconv.FormatBool(p.STP))
	if p.VLANFiltering {
		w.kv("vlan-filtering", "true") // only when on, as for networkd: off is the kernel's default
	}

	w.section("ipv4")
	nmAddresses(&w, p.addr4, p.gw4, "0.0.0.0/0")
	switch {
	case p.DHCP4:
		w.kv("method", "auto")
	case len(p.addr4) > 0:
		w.kv("method", "manual")
	default:
		w.kv("method", "disabled")
	}

	w.section("ipv6")
	// eui64 derives the link-local address from the pinned MAC, as the
	// kernel does for the live bridge, so the address is the same after a
	// reboot. (A keyfile without the key means eui64 too.)
	w.kv("addr-gen-mode", "eui64")
	nmAddresses(&w, p.addr6, p.gw6, "::/0")
	switch {
	case !p.lab:
		w.kv("method", "auto")
	case len(p.addr6) > 0:
		w.kv("method", "manual")
	default:
		w.kv("method", "link-local")
	}
	w.section("proxy")
	return File{Path: path.Join(nmDir, id+".nmconnection"), Mode: nmMode, Content: []byte(w.b.String())}
}

// nmPortProfile is the keyfile that enslaves the uplink NIC to the bridge
// profile whose UUID is bridgeUUID.
func nmPortProfile(p *plan, h, id, bridgeUUID string) File {
	portID := id + "-port-" + p.Uplink
	var pw ini
	pw.b.WriteString(h)
	pw.section("connection")
	pw.kv("id", portID)
	pw.kv("uuid", stableUUID(portID))
	pw.kv("type", "ethernet")
	// The NIC usually has a profile of its own already (the installer's
	// or "Wired connection 1"); NM autoconnects the highest priority
	// one, and the default is 0.
	pw.kv("autoconnect-priority", "10")
	pw.kv("interface-name", p.Uplink)
	pw.kv("master", bridgeUUID) // the UUID binds the port to vmnet's profile, not any profile for the bridge name
	pw.kv("slave-type", "bridge")
	pw.section("ethernet")
	if p.MTU > 0 {
		pw.kv("mtu", strconv.Itoa(p.MTU))
	}
	pw.section("bridge-port")
	return File{Path: path.Join(nmDir, portID+".nmconnection"), Mode: nmMode, Content: []byte(pw.b.String())}
}

// nmAddresses writes addressN keys and the gateway. NM refuses a gateway on a
// profile without static addresses, so then the default route goes in as a
// static route instead, which NM accepts with the auto and link-local methods.
func nmAddresses(w *ini, addrs []netip.Prefix, gw netip.Addr, dflt string) {
	for i, a := range addrs {
		w.kv(fmt.Sprintf("address%d", i+1), a.String())
	}
	switch {
	case !gw.IsValid():
	case len(addrs) > 0:
		w.kv("gateway", gw.String())
	default:
		w.kv("route1", dflt+","+gw.String())
	}
}
