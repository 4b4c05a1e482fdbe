package vmspec

import (
	"fmt"
	"slices"
	"strings"

	"vmnet/internal/valid"
)

// Macvtap modes of a direct NIC (libvirt's <source mode=...>): how the
// kernel's macvtap device on the parent treats traffic between guests on the
// same parent. In every mode the host cannot reach the guest through the
// parent itself: the parent's own traffic leaves by the wire and never
// comes back up to a macvtap child.
const (
	DirectBridge      = "bridge"      // guests on one parent reach each other directly
	DirectVEPA        = "vepa"        // guest-to-guest traffic goes out to the switch, which must send it back (hairpin)
	DirectPrivate     = "private"     // guests on one parent never reach each other
	DirectPassthrough = "passthrough" // the guest gets the parent to itself: one NIC per parent
)

// DirectModes lists the modes, the default first.
var DirectModes = []string{DirectBridge, DirectVEPA, DirectPrivate, DirectPassthrough}

// Direct attaches a NIC to a host interface through macvtap (libvirt's
// <interface type='direct'>): the guest appears on the parent's link with
// its own MAC, with no bridge and nothing vmnet makes. The parent must exist
// where libvirtd runs.
type Direct struct {
	Parent string `yaml:"parent" json:"parent"`       // the host interface, e.g. eth0
	Mode   string `yaml:"mode" json:"mode,omitempty"` // bridge (default), vepa, private or passthrough
}

// IsZero reports whether the NIC is not a direct one.
func (d Direct) IsZero() bool { return d == Direct{} }

// ModeOrDefault is the mode, bridge when unset; "" for a NIC that is not
// a direct one.
func (d Direct) ModeOrDefault() string {
	if d.Parent == "" {
		return ""
	}
	if d.Mode == "" {
		return DirectBridge
	}
	return d.Mode
}

// Parents lists the host interfaces the direct NICs use, once each, in NIC
// order.
func (s Spec) Parents() []string {
	var out []string
	for _, n := range s.NICs {
		if n.Direct.Parent != "" && !slices.Contains(out, n.Direct.Parent) {
			out = append(out, n.Direct.Parent)
		}
	}
	return out
}

// CheckDirect checks a direct NIC's parent and mode at field (the NIC's
// direct key): the lab package uses it for its macvtap networks too.
func CheckDirect(field string, d Direct) Errors {
	var l errorList
	if d.Parent == "" {
		l.add(field+".parent", "", "is missing", "name the host interface the guest appears on, for example parent: eth0")
	} else {
		l.addErr(field+".parent", valid.InterfaceName(field+".parent", d.Parent))
	}
	if d.Mode != "" && !slices.Contains(DirectModes, d.Mode) {
		l.add(field+".mode", d.Mode, "is not a macvtap mode"+closestHint(d.Mode, DirectModes), "use one of "+strings.Join(DirectModes, ", ")+" (default bridge)")
	}
	return l.errs
}

// closestHint is " (did you mean X?)" when word looks like a typo of one of names.
func closestHint(word string, names []string) string {
	if best := Closest(word, names); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

// validateAttach checks what NIC i attaches to: exactly one of network,
// bridge and direct.
func (s Spec) validateAttach(l *errorList, i int, n NIC) {
	f := func(name string) string { return fmt.Sprintf("nics[%d].%s", i, name) }
	set := 0
	for _, b := range []bool{n.Network != "", n.Bridge != "", !n.Direct.IsZero()} {
		if b {
			set++
		}
	}
	switch {
	case set == 0:
		l.add(fmt.Sprintf("nics[%d]", i), "", "has neither network, bridge nor direct", "attach it to a libvirt network (network: nat0), a Linux bridge (bridge: br0) or a host interface through macvtap (direct: {parent: eth0})")
	case set > 1 && !n.Direct.IsZero():
		l.add(f("direct"), n.Direct.Parent, "is set together with network or bridge", "give each NIC one of network, bridge and direct; add a second NIC for the other")
	case n.Network != "" && n.Bridge != "":
		l.add(f("bridge"), n.Bridge, "is set together with network "+n.Network, "give each NIC either network or bridge; add a second NIC for the other")
	case n.Network != "":
		l.addErr(f("network"), ValidateNetworkName(f("network"), n.Network))
	case n.Bridge != "":
		l.addErr(f("bridge"), valid.InterfaceName(f("bridge"), n.Bridge))
	default:
		l.errs = append(l.errs, CheckDirect(f("direct"), n.Direct)...)
		s.validatePassthrough(l, i, n)
	}
}

// validatePassthrough refuses a second NIC on a parent that a passthrough
// NIC takes for itself.
func (s Spec) validatePassthrough(l *errorList, i int, n NIC) {
	for j, o := range s.NICs[:i] {
		if o.Direct.Parent != n.Direct.Parent {
			continue
		}
		if n.Direct.Mode == DirectPassthrough || o.Direct.Mode == DirectPassthrough {
			l.add(fmt.Sprintf("nics[%d].direct.parent", i), n.Direct.Parent, fmt.Sprintf("is also nics[%d]'s parent, and passthrough gives a parent to one NIC only", j), "use another parent, or mode bridge for both")
			return
		}
	}
}
