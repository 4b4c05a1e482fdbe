package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DefaultConfirmTimeout bounds the wait for the probe after a takeover.
const DefaultConfirmTimeout = 20 * time.Second

// uplinkState is the NIC a bridge takes over, as it was before.
type uplinkState struct {
	link     netlink.Link
	takeover bool // the NIC is not yet a port of the bridge
	addrs    []netlink.Addr
	routes   []netlink.Route
	dhcp4    bool
	gw4, gw6 netip.Addr

	probeNote string
}

// readUplink checks that the NIC can be taken over and records its
// addresses and routes: from the NIC before a takeover, from the bridge when
// the NIC is already its port.
func readUplink(k Kernel, name string, cur *State, allowNoCarrier bool) (*uplinkState, error) {
	nic, err := k.LinkByName(name)
	if isNotFound(err) {
		return nil, &FieldError{Field: "--uplink", Value: name, Problem: "does not exist",
			Fix: "name an existing NIC; 'ip -br link' lists them" + available(k)}
	}
	if err != nil {
		return nil, fmt.Errorf("look up uplink %q: %w", name, err)
	}
	a := nic.Attrs()
	switch nic.Type() {
	case "bridge", "bond", "vlan", "device", "veth", "dummy", "macvlan", "ipvlan", "vxlan", "tuntap":
	default:
		return nil, &FieldError{Field: "--uplink", Value: name, Problem: "is a " + nic.Type() + " link, not a NIC",
			Fix: "name an Ethernet NIC (or bond, VLAN or veth) to take over"}
	}
	if nic.Type() == "bridge" {
		return nil, &FieldError{Field: "--uplink", Value: name, Problem: "is itself a bridge", Fix: "name the NIC under it instead"}
	}
	if a.Flags&net.FlagLoopback != 0 {
		return nil, &FieldError{Field: "--uplink", Value: name, Problem: "is the loopback device", Fix: "name an Ethernet NIC"}
	}
	up := &uplinkState{link: nic}
	src := nic
	switch {
	case a.MasterIndex == 0:
		up.takeover = true
		if err := checkCarrier(nic, allowNoCarrier); err != nil {
			return nil, err
		}
	case cur != nil && a.MasterIndex == cur.Index:
		if src, err = k.LinkByName(cur.Name); err != nil {
			return nil, fmt.Errorf("look up %q: %w", cur.Name, err)
		}
	default:
		master := fmt.Sprint(a.MasterIndex)
		if m, err := k.LinkByIndex(a.MasterIndex); err == nil {
			master = m.Attrs().Name
		}
		return nil, &FieldError{Field: "--uplink", Value: name, Problem: "is already enslaved to " + master,
			Fix: fmt.Sprintf("release it first (ip link set %s nomaster), or name another NIC", name)}
	}
	if up.addrs, err = userAddresses(k, src); err != nil {
		return nil, err
	}
	if up.routes, err = movableRoutes(k, src); err != nil {
		return nil, err
	}
	for _, ad := range up.addrs {
		if ad.IP.To4() != nil && ad.Flags&unix.IFA_F_PERMANENT == 0 {
			up.dhcp4 = true
		}
	}
	for _, r := range up.routes {
		if !isDefault(r) || r.Gw == nil {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		gw = gw.Unmap()
		if gw.Is4() && !up.gw4.IsValid() {
			up.gw4 = gw
		} else if gw.Is6() && !up.gw6.IsValid() {
			up.gw6 = gw
		}
	}
	return up, nil
}

// checkCarrier refuses a NIC without carrier: the probe could not be
// answered, and routes through it are marked linkdown.
func checkCarrier(nic netlink.Link, allow bool) error {
	a := nic.Attrs()
	if allow || a.RawFlags&unix.IFF_LOWER_UP != 0 {
		return nil
	}
	if a.Flags&net.FlagUp == 0 {
		return &FieldError{Field: "--uplink", Value: a.Name, Problem: "is down (administratively), so it has no carrier",
			Fix: fmt.Sprintf("bring it up first (ip link set %s up) and check that 'ip link show %s' says LOWER_UP, or pass --allow-no-carrier to take it over anyway", a.Name, a.Name)}
	}
	return &FieldError{Field: "--uplink", Value: a.Name, Problem: fmt.Sprintf("has no carrier (operstate %s: no cable, or the switch port or peer is down)", a.OperState),
		Fix: fmt.Sprintf("connect it and check that 'ip link show %s' says LOWER_UP, or pass --allow-no-carrier to take it over anyway (a probe cannot be answered without a carrier)", a.Name)}
}

// available lists NICs that could be an uplink, for an error message.
func available(k Kernel) string {
	links, err := k.LinkList()
	if err != nil {
		return ""
	}
	var names []string
	for _, l := range links {
		if l.Attrs().Flags&net.FlagLoopback == 0 && l.Type() != "bridge" && l.Attrs().MasterIndex == 0 {
			names = append(names, l.Attrs().Name)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (free here: " + strings.Join(names, ", ") + ")"
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

// movableRoutes lists the routes through a link, in every table but the
// kernel's local one, that an admin would move with its addresses; the
// kernel's own subnet routes come back by themselves when the addresses move.
func movableRoutes(k Kernel, link netlink.Link) ([]netlink.Route, error) {
	rs, err := k.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of %q: %w", link.Attrs().Name, err)
	}
	var out []netlink.Route
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_KERNEL || r.Protocol == unix.RTPROT_RA || r.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		if r.Dst != nil {
			if d, ok := netip.AddrFromSlice(r.Dst.IP); ok && (d.IsLinkLocalUnicast() || d.IsMulticast()) {
				continue
			}
		}
		out = append(out, r)
	}
	// Routes without a gateway first, then specific routes, default routes
	// last: each gateway must be reachable when its route is added.
	rank := func(r netlink.Route) int {
		switch {
		case r.Gw == nil:
			return 0
		case !isDefault(r):
			return 1
		}
		return 2
	}
	slices.SortStableFunc(out, func(a, b netlink.Route) int { return rank(a) - rank(b) })
	return out, nil
}

// moveAddr is an address as it can be added to another link.
func moveAddr(a netlink.Addr) *netlink.Addr {
	na := a
	na.LinkIndex = 0
	na.Label = "" // a label must start with the link's name
	na.Flags = a.Flags & (unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MANAGETEMPADDR)
	if a.IP.To4() == nil {
		na.Flags |= unix.IFA_F_NODAD // the address was in use a moment ago
	}
	return &na
}

// restoreOn adds addresses, then routes, to a link; what exists is fine.
func restoreOn(k Kernel, link netlink.Link, addrs []netlink.Addr, routes []netlink.Route) error {
	var errs []error
	for _, a := range addrs {
		if err := k.AddrAdd(link, moveAddr(a)); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add address %s: %w", toPrefix(a), err))
		}
	}
	for _, r := range routes {
		nr := r
		nr.LinkIndex = link.Attrs().Index
		// A route read from a link without carrier is flagged linkdown; the
		// kernel refuses that flag in a new route (EINVAL).
		nr.Flags &^= routeStateFlags
		if err := k.RouteAdd(&nr); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add route %s: %w", routeString(r), err))
		}
	}
	return errors.Join(errs...)
}

// strip removes routes, then addresses, from a link; what is gone is fine.
func strip(k Kernel, link netlink.Link, addrs []netlink.Addr, routes []netlink.Route) error {
	var errs []error
	for _, r := range slices.Backward(routes) {
		nr := r
		nr.LinkIndex = link.Attrs().Index
		if err := k.RouteDel(&nr); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", routeString(r), err))
		}
	}
	for _, a := range addrs {
		if err := k.AddrDel(link, moveAddr(a)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("delete address %s: %w", toPrefix(a), err))
		}
	}
	return errors.Join(errs...)
}

func routeString(r netlink.Route) string {
	dst := "default"
	if !isDefault(r) {
		dst = r.Dst.String()
	}
	if r.Gw != nil {
		dst += " via " + r.Gw.String()
	}
	if r.Table != 0 && r.Table != unix.RT_TABLE_MAIN {
		dst += fmt.Sprintf(" table %d", r.Table)
	}
	return dst
}

func (u *uplinkState) describe(bridge string) []string {
	nic := u.link.Attrs().Name
	out := []string{fmt.Sprintf("enslave %s to %s", nic, bridge)}
	for _, a := range u.addrs {
		out = append(out, fmt.Sprintf("move address %s from %s to %s", toPrefix(a), nic, bridge))
	}
	for _, r := range u.routes {
		out = append(out, fmt.Sprintf("move route %s from %s to %s", routeString(r), nic, bridge))
	}
	return out
}

// takeover applies the bridge's own changes and moves the NIC under it, then
// probes. When any step fails, or the probe gets no answer in time, every
// step is undone in reverse order, leaving the host as it was.
func takeover(ctx context.Context, k Kernel, spec Spec, cur *State, w desired, changes []change, up *uplinkState, saved *savedUplink) (done []string, err error) {
	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		if rerr := rollBack(k, undo, saved); rerr != nil {
			err = fmt.Errorf("%w; rollback was incomplete (%s keeps the state before; the next 'vmnet bridge create' or 'delete' tries again): %w",
				err, saved.path, rerr)
			return
		}
		done = append(done, "rolled back: the host is as it was before")
		err = &RolledBackError{Err: err}
	}()

	nic := up.link
	name := spec.Name
	undo = append(undo, undoBridgeChanges(k, name, cur, w))
	for _, c := range changes {
		if err := c.apply(); err != nil {
			return done, fmt.Errorf("bridge %q: %s: %w", name, c.what, err)
		}
		done = append(done, c.what)
	}
	br, err := k.LinkByName(name)
	if err != nil {
		return done, fmt.Errorf("look up %q: %w", name, err)
	}

	nicName := nic.Attrs().Name
	if err := k.LinkSetMaster(nic, br); err != nil {
		return done, fmt.Errorf("enslave %q to %q: %w", nicName, name, err)
	}
	undo = append(undo, func() error { return k.LinkSetNoMaster(nic) })
	done = append(done, fmt.Sprintf("enslave %s to %s", nicName, name))

	// From here the NIC's addresses and routes must come back on any
	// failure: the rollback restores them from the saved state.
	if err := strip(k, nic, up.addrs, up.routes); err != nil {
		return done, fmt.Errorf("take addresses off %q: %w", nicName, err)
	}
	undo = append(undo, func() error { return strip(k, br, up.addrs, up.routes) })
	if err := restoreOn(k, br, up.addrs, up.routes); err != nil {
		return done, fmt.Errorf("move addresses to %q: %w", name, err)
	}
	done = append(done, up.describe(name)[1:]...)

	confirmed, err := confirm(ctx, k, spec, up)
	if err != nil {
		return done, err
	}
	if confirmed != "" {
		done = append(done, confirmed)
	}
	return done, commit(saved)
}

// rollBack runs the undo steps of a failed takeover in reverse order, then
// puts the NIC back from the state saved before the first change. It returns
// what could not be undone; nil means the host is as it was.
func rollBack(k Kernel, undo []func() error, saved *savedUplink) error {
	var rerrs []error
	for _, u := range slices.Backward(undo) {
		if rerr := u(); rerr != nil {
			rerrs = append(rerrs, rerr)
		}
	}
	// Last, with the bridge gone, the NIC from the state saved before the
	// first change, checked against it; the saved file goes only when both
	// succeeded, so a half rollback can be finished later.
	if rerr := restoreSaved(k, saved); rerr != nil {
		rerrs = append(rerrs, rerr)
	} else if rerr := verifySaved(k, saved); rerr != nil {
		rerrs = append(rerrs, rerr)
	} else if rerr := saved.remove(); rerr != nil {
		rerrs = append(rerrs, rerr)
	}
	return errors.Join(rerrs...)
}

// undoBridgeChanges returns the undo step for the bridge's own changes:
// delete a bridge this takeover made; give an existing one back its alias,
// MAC, MTU and addresses as they were in cur.
func undoBridgeChanges(k Kernel, name string, cur *State, w desired) func() error {
	if cur == nil {
		return func() error {
			l, err := k.LinkByName(name)
			if isNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			return k.LinkDel(l)
		}
	}
	prev := *cur
	return func() error {
		l, err := k.LinkByName(name)
		if err != nil {
			return err
		}
		errs := []error{k.LinkSetAlias(l, alias(prev.Uplink, prev.Lab)), k.LinkSetHardwareAddr(l, prev.MAC), k.LinkSetMTU(l, prev.MTU)}
		for _, p := range w.addresses {
			if !slices.Contains(prev.Addresses, p) {
				if err := k.AddrDel(l, toAddr(p)); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	}
}

// confirm pings the probe target (--probe, else the NIC's IPv4 then IPv6
// gateway) through the bridge and returns the line that says it answered.
// With no target it returns "" and leaves a note in up.probeNote, which
// Ensure passes on to the user: the takeover stands, unconfirmed.
func confirm(ctx context.Context, k Kernel, spec Spec, up *uplinkState) (string, error) {
	target := spec.Probe
	if !target.IsValid() {
		target = up.gw4
	}
	if !target.IsValid() {
		target = up.gw6
	}
	if !target.IsValid() {
		up.probeNote = fmt.Sprintf("%s had no default gateway and no --probe was given: the takeover was not confirmed", up.link.Attrs().Name)
		return "", nil
	}
	timeout := spec.ConfirmTimeout
	if timeout == 0 {
		timeout = DefaultConfirmTimeout
	}
	slog.Debug("probing after takeover", "target", target, "timeout", timeout)
	start := time.Now()
	if err := Ping(ctx, k, target, timeout); err != nil {
		return "", fmt.Errorf("%s did not answer through %s within %s (%w)", target, spec.Name, timeout, err)
	}
	return fmt.Sprintf("confirmed: %s answered through %s after %s", target, spec.Name, time.Since(start).Round(time.Millisecond)), nil
}

// commit marks the saved state as that of a finished takeover: kept while
// the bridge holds the NIC, for bridge delete.
func commit(saved *savedUplink) error {
	saved.Committed = true
	return saved.write()
}

// RolledBackError wraps the failure that made a takeover roll back.
type RolledBackError struct{ Err error }

func (e *RolledBackError) Error() string {
	return e.Err.Error() + "; rolled back: addresses, routes, MAC and master are as they were"
}

func (e *RolledBackError) Unwrap() error { return e.Err }

// Hint tells the user what to check.
func (e *RolledBackError) Hint() string {
	return "check the uplink's cable and switch port, pass --probe ADDR for a host that answers ping, or raise --confirm-timeout"
}
