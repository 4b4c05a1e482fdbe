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

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vmnet/internal/persist"
)

// Result says what Ensure changed, or with DryRun would change.
type Result struct {
	Name    string     `json:"name"`
	Created bool       `json:"created"`
	Changes []string   `json:"changes"` // live changes, in the order made
	Notes   []string   `json:"notes,omitempty"`
	Persist *Persisted `json:"persistence,omitempty"`
	DryRun  bool       `json:"dry_run"`
}

// Unchanged reports whether the run changed nothing, live or on disk.
func (r *Result) Unchanged() bool {
	return len(r.Changes) == 0 && (r.Persist == nil || len(r.Persist.Changed)+len(r.Persist.Removed) == 0)
}

// change is one step of a plan: a description for people and the action.
type change struct {
	what  string
	apply func() error
}

// desired is the spec with every default decided.
type desired struct {
	mac       net.HardwareAddr
	mtu       int
	stp       bool
	vlan      bool
	addresses []netip.Prefix
	additive  bool // an uplink is involved: add addresses, never remove them
	uplink    string
	lab       string // the alias's lab tag: the spec's for a new bridge, else the bridge's own
}

// Ensure makes the bridge match spec: it creates it when missing, converges
// MTU, MAC, STP, VLAN filtering and addresses when it differs, takes over the
// uplink (rolling back when the probe fails), and writes the persistence
// files. A second run with the same spec changes nothing.
func Ensure(ctx context.Context, k Kernel, spec Spec, opt Options) (*Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	// A takeover that did not finish is undone first, so this run starts
	// from the host as it was.
	recovered, err := recoverLeftovers(k, func(s *savedUplink) bool {
		return s.Bridge == spec.Name || spec.Uplink != "" && s.NIC == spec.Uplink
	}, opt)
	if err != nil {
		return nil, err
	}
	cur, err := Inspect(k, spec.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		cur = nil
	case err != nil:
		return nil, err
	}
	res := &Result{Name: spec.Name, DryRun: opt.DryRun, Notes: recovered}
	if cur != nil {
		reclaimed, err := claim(k, cur, opt)
		if err != nil {
			return nil, err
		}
		if reclaimed {
			res.Notes = append(res.Notes, fmt.Sprintf("bridge %s was brought up by the host's network config from vmnet's files; vmnet marks it as its own again", spec.Name))
		}
	}
	if cur != nil && cur.Lab != spec.Lab {
		res.Notes = append(res.Notes, labNote(cur))
	}
	up, err := resolveUplink(k, spec, cur, res)
	if err != nil {
		return nil, err
	}
	if err := checkOverlaps(k, spec, cur, up); err != nil {
		return nil, err
	}

	want := decide(spec, cur, up, opt.HostID)
	changes := plan(k, spec.Name, cur, want)
	res.Created = cur == nil

	files, err := renderPersist(spec.Name, want, up, opt)
	if err != nil {
		return nil, err
	}
	if files.note != "" {
		res.Notes = append(res.Notes, files.note)
	}

	if opt.DryRun {
		for _, c := range changes {
			res.Changes = append(res.Changes, c.what)
		}
		if up != nil && up.takeover {
			res.Changes = append(res.Changes, up.describe(spec.Name)...)
		}
		res.Persist, err = files.preview(true)
		return res, err
	}

	if err := apply(ctx, k, spec, cur, want, changes, up, opt, res); err != nil {
		return res, err
	}
	res.Persist, err = files.write()
	return res, err
}

// labNote says that an existing bridge keeps its lab tag.
func labNote(cur *State) string {
	if cur.Lab == "" {
		return fmt.Sprintf("bridge %s existed before and belongs to no lab; it stays so", cur.Name)
	}
	return fmt.Sprintf("bridge %s belongs to lab %s and stays so", cur.Name, cur.Lab)
}

// resolveUplink reads the uplink the bridge takes over or already has, nil
// when none. An existing uplink bridge keeps its NIC: another one is
// refused, and none asked for is noted.
func resolveUplink(k Kernel, spec Spec, cur *State, res *Result) (*uplinkState, error) {
	uplinkName := spec.Uplink
	if cur != nil && cur.Uplink != "" {
		if spec.Uplink != "" && spec.Uplink != cur.Uplink {
			return nil, &FieldError{Field: "--uplink", Value: spec.Uplink,
				Problem: fmt.Sprintf("differs from %q, the uplink bridge %q already has", cur.Uplink, spec.Name),
				Fix:     fmt.Sprintf("run 'vmnet bridge delete %s' first to give %s back its addresses, then create it again", spec.Name, cur.Uplink)}
		}
		if spec.Uplink == "" {
			res.Notes = append(res.Notes, fmt.Sprintf("keeps uplink %s (run 'vmnet bridge delete %s' to release it)", cur.Uplink, spec.Name))
		}
		uplinkName = cur.Uplink
	}
	if uplinkName == "" {
		return nil, nil
	}
	return readUplink(k, uplinkName, cur, spec.AllowNoCarrier)
}

// apply makes the planned changes: through a takeover, which saves the NIC's
// state first and rolls back when the probe fails, or one by one.
func apply(ctx context.Context, k Kernel, spec Spec, cur *State, want desired, changes []change, up *uplinkState, opt Options, res *Result) error {
	if up == nil || !up.takeover {
		for _, c := range changes {
			slog.Debug("bridge change", "bridge", spec.Name, "change", c.what)
			if err := c.apply(); err != nil {
				return fmt.Errorf("bridge %q: %s: %w", spec.Name, c.what, err)
			}
			res.Changes = append(res.Changes, c.what)
		}
		return nil
	}
	saved, err := saveBefore(k, spec, cur, up, opt)
	if err != nil {
		return err
	}
	res.Changes = append(res.Changes, fmt.Sprintf("save %s's state to %s", up.link.Attrs().Name, saved.path))
	done, err := takeover(ctx, k, spec, cur, want, changes, up, saved)
	res.Changes = append(res.Changes, done...)
	if err != nil {
		return err
	}
	if up.probeNote != "" {
		res.Notes = append(res.Notes, up.probeNote)
	}
	return nil
}

// claim decides whether vmnet owns an existing bridge. The alias says so
// while the bridge lives; after a reboot the host's network config recreates
// it without the alias, and vmnet's persistence files for it say so instead.
// The uplink then is the port that lends the bridge its MAC, as a takeover
// left it. claim records both on cur; it changes nothing on the host.
func claim(k Kernel, cur *State, opt Options) (reclaimed bool, err error) {
	if cur.Managed {
		return false, nil
	}
	found, err := persist.Find(opt.root(), cur.Name)
	if err != nil {
		return false, err
	}
	if len(found) == 0 {
		return false, foreign(cur.Name)
	}
	cur.Managed = true
	links, err := k.LinkList()
	if err != nil {
		return false, fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		if l.Attrs().MasterIndex == cur.Index && l.Attrs().HardwareAddr.String() == cur.MAC.String() {
			cur.Uplink = l.Attrs().Name
		}
	}
	return true, nil
}

// decide fills in every default of the spec from what exists.
func decide(spec Spec, cur *State, up *uplinkState, hostID string) desired {
	w := desired{stp: spec.STP, vlan: spec.VLANFiltering, addresses: slices.Clone(spec.Addresses), lab: spec.Lab}
	sortPrefixes(w.addresses)
	if cur != nil {
		w.lab = cur.Lab // a bridge that exists is not this lab's to claim, nor to disown
	}
	switch {
	case spec.MAC != nil:
		w.mac = spec.MAC
	case up != nil:
		w.mac = up.link.Attrs().HardwareAddr
	case cur != nil:
		w.mac = cur.MAC
	default:
		w.mac = StableMAC(hostID, spec.Name)
	}
	switch {
	case spec.MTU != 0:
		w.mtu = spec.MTU
	case up != nil:
		w.mtu = up.link.Attrs().MTU
	case cur != nil:
		w.mtu = cur.MTU
	}
	if up != nil {
		w.additive = true
		w.uplink = up.link.Attrs().Name
	}
	return w
}

// plan lists the live changes that turn cur into want, in a safe order.
func plan(k Kernel, name string, cur *State, w desired) []change {
	var cs []change
	link := func() (netlink.Link, error) { return k.LinkByName(name) }
	if cur == nil {
		cs = append(cs, createChange(k, name, w))
		if w.stp {
			cs = append(cs, stpChange(k, name, true))
		}
		for _, p := range w.addresses {
			cs = append(cs, addrChange(k, name, p, true))
		}
		cs = append(cs, upChange(k, name))
		return cs
	}
	if want := alias(w.uplink, w.lab); cur.alias != want {
		cs = append(cs, change{what: fmt.Sprintf("set alias %q", want), apply: func() error {
			l, err := link()
			if err != nil {
				return err
			}
			return k.LinkSetAlias(l, alias(w.uplink, w.lab))
		}})
	}
	if w.mac.String() != cur.MAC.String() {
		cs = append(cs, change{what: fmt.Sprintf("set MAC %s → %s", cur.MAC, w.mac), apply: func() error {
			l, err := link()
			if err != nil {
				return err
			}
			return k.LinkSetHardwareAddr(l, w.mac)
		}})
	}
	if w.mtu != 0 && w.mtu != cur.MTU {
		cs = append(cs, change{what: fmt.Sprintf("set MTU %d → %d", cur.MTU, w.mtu), apply: func() error {
			l, err := link()
			if err != nil {
				return err
			}
			return k.LinkSetMTU(l, w.mtu)
		}})
	}
	if w.stp != cur.STP {
		cs = append(cs, stpChange(k, name, w.stp))
	}
	if w.vlan != cur.VLANFiltering {
		cs = append(cs, change{what: fmt.Sprintf("turn VLAN filtering %s", onOff(w.vlan)), apply: func() error {
			l, err := link()
			if err != nil {
				return err
			}
			if err := k.BridgeSetVlanFiltering(l, w.vlan); errors.Is(err, unix.EOPNOTSUPP) {
				return errNoVLANFiltering
			} else {
				return err
			}
		}})
	}
	if !w.additive {
		for _, p := range cur.Addresses {
			if !slices.Contains(w.addresses, p) {
				cs = append(cs, addrChange(k, name, p, false))
			}
		}
	}
	for _, p := range w.addresses {
		if !slices.Contains(cur.Addresses, p) {
			cs = append(cs, addrChange(k, name, p, true))
		}
	}
	if !cur.Up {
		cs = append(cs, upChange(k, name))
	}
	return cs
}

// createChange makes the bridge, marks it as vmnet's and pins its MAC; a
// bridge another run made meanwhile is accepted when it is vmnet's.
func createChange(k Kernel, name string, w desired) change {
	return change{
		what: fmt.Sprintf("create bridge %s (MAC %s)", name, w.mac),
		apply: func() error {
			br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: w.mtu, HardwareAddr: w.mac}}
			if w.vlan {
				// Only when asked: kernels without CONFIG_BRIDGE_VLAN_FILTERING refuse the attribute even as 0.
				br.VlanFiltering = &w.vlan
			}
			err := k.LinkAdd(br)
			if w.vlan && errors.Is(err, unix.EOPNOTSUPP) {
				return errNoVLANFiltering
			}
			if errors.Is(err, unix.EEXIST) {
				// Another run made it between our look and now: re-read, check the kind.
				st, ierr := Inspect(k, name)
				if ierr != nil {
					return ierr
				}
				if !st.Managed {
					return foreign(name)
				}
				return nil
			}
			if err != nil {
				return err
			}
			l, err := k.LinkByName(name)
			if err != nil {
				return err
			}
			// The alias marks ownership before anything else can fail.
			if err := k.LinkSetAlias(l, alias(w.uplink, w.lab)); err != nil {
				return err
			}
			// Setting the MAC explicitly pins it: the kernel would otherwise
			// follow the lowest port MAC as ports come and go.
			return k.LinkSetHardwareAddr(l, w.mac)
		},
	}
}

// errNoVLANFiltering explains the kernel's bare EOPNOTSUPP.
var errNoVLANFiltering = errors.New("this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING is off); leave out --vlan-filtering")

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func stpChange(k Kernel, name string, on bool) change {
	return change{what: "turn STP " + onOff(on), apply: func() error {
		l, err := k.LinkByName(name)
		if err != nil {
			return err
		}
		return k.SetSTP(l.Attrs().Index, on)
	}}
}

func addrChange(k Kernel, name string, p netip.Prefix, add bool) change {
	what := "remove address " + p.String()
	if add {
		what = "add address " + p.String()
	}
	return change{what: what, apply: func() error {
		l, err := k.LinkByName(name)
		if err != nil {
			return err
		}
		a := toAddr(p)
		if add {
			if p.Addr().Is6() {
				// Skip duplicate address detection: the bridge is usable at once
				// and the address cannot be stuck "tentative" on a portless bridge.
				a.Flags = unix.IFA_F_NODAD
			}
			err = k.AddrAdd(l, a)
			if errors.Is(err, unix.EEXIST) {
				return nil
			}
			return err
		}
		err = k.AddrDel(l, a)
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil
		}
		return err
	}}
}

func upChange(k Kernel, name string) change {
	return change{what: "bring " + name + " up", apply: func() error {
		l, err := k.LinkByName(name)
		if err != nil {
			return err
		}
		return k.LinkSetUp(l)
	}}
}

// checkOverlaps refuses an address whose subnet overlaps a route on another
// link: the kernel would accept it and then route traffic unpredictably.
func checkOverlaps(k Kernel, spec Spec, cur *State, up *uplinkState) error {
	if len(spec.Addresses) == 0 {
		return nil
	}
	routes, err := k.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	skip := map[int]bool{}
	if cur != nil {
		skip[cur.Index] = true
	}
	if up != nil {
		skip[up.link.Attrs().Index] = true
	}
	for _, p := range spec.Addresses {
		for _, r := range routes {
			if r.Dst == nil || skip[r.LinkIndex] {
				continue // a default route overlaps everything by design
			}
			dst, ok := netip.AddrFromSlice(r.Dst.IP)
			if !ok {
				continue
			}
			ones, _ := r.Dst.Mask.Size()
			rp := netip.PrefixFrom(dst.Unmap(), ones)
			if rp.Bits() == 0 || rp.Addr().Is6() && rp.Addr().IsLinkLocalUnicast() {
				continue
			}
			if rp.Overlaps(p.Masked()) {
				dev := fmt.Sprint(r.LinkIndex)
				if l, err := k.LinkByIndex(r.LinkIndex); err == nil {
					dev = l.Attrs().Name
				}
				return &FieldError{Field: "--address", Value: p.String(),
					Problem: fmt.Sprintf("overlaps route %s dev %s", rp, dev),
					Fix:     fmt.Sprintf("pick a subnet that no other link uses (check with 'ip route'), or remove the route on %s", dev)}
			}
		}
	}
	return nil
}

// Delete removes a bridge vmnet made, gives an uplink back its addresses and
// routes, and removes the persistence files vmnet wrote for it. Deleting a
// bridge that is already gone succeeds.
func Delete(ctx context.Context, k Kernel, name string, opt Options) (*Result, error) {
	if err := ValidateName("bridge name", name); err != nil {
		return nil, err
	}
	res := &Result{Name: name, DryRun: opt.DryRun}
	cur, err := Inspect(k, name)
	if err == nil {
		_, err = claim(k, cur, opt)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		res.Notes = append(res.Notes, fmt.Sprintf("bridge %s does not exist", name))
		// A takeover killed before it made the bridge, or a bridge removed
		// by other means: its NIC still gets back what it had.
		notes, err := recoverLeftovers(k, func(s *savedUplink) bool { return s.Bridge == name }, opt)
		res.Notes = append(res.Notes, notes...)
		if err != nil {
			return res, err
		}
	case err != nil:
		return nil, err
	default:
		done, err := release(k, cur, opt)
		res.Changes = append(res.Changes, done...)
		if err != nil {
			return res, err
		}
	}
	res.Persist, err = removePersist(name, opt)
	return res, err
}

// release deletes the bridge; with an uplink it gives the NIC back the
// state saved before the takeover, or, without a saved state (a bridge made
// by an older vmnet), moves the bridge's addresses and routes back to it.
func release(k Kernel, cur *State, opt Options) ([]string, error) {
	var done []string
	dryRun := opt.DryRun
	link, err := k.LinkByName(cur.Name)
	if err != nil {
		return nil, fmt.Errorf("look up %q: %w", cur.Name, err)
	}
	if cur.Uplink != "" {
		saved, err := savedFor(opt, cur.Name, cur.Uplink)
		if err != nil {
			return nil, err
		}
		if saved != nil {
			return releaseSaved(k, cur, link, saved, dryRun)
		}
	}
	var nic netlink.Link
	var addrs []netlink.Addr
	var routes []netlink.Route
	if cur.Uplink != "" {
		nic, err = k.LinkByName(cur.Uplink)
		if err == nil && nic.Attrs().MasterIndex == cur.Index {
			addrs, err = userAddresses(k, link)
			if err != nil {
				return nil, err
			}
			routes, err = movableRoutes(k, link)
			if err != nil {
				return nil, err
			}
		} else {
			nic = nil
		}
	}
	if dryRun {
		if nic != nil {
			done = append(done, fmt.Sprintf("release uplink %s and give it back %s", cur.Uplink, describeAddrs(addrs, routes)))
		}
		return append(done, "delete bridge "+cur.Name), nil
	}
	if nic != nil {
		if err := k.LinkSetNoMaster(nic); err != nil {
			return done, fmt.Errorf("release uplink %q: %w", cur.Uplink, err)
		}
		done = append(done, "release uplink "+cur.Uplink)
	}
	if err := k.LinkDel(link); err != nil && !isNotFound(err) {
		return done, fmt.Errorf("delete bridge %q: %w", cur.Name, err)
	}
	done = append(done, "delete bridge "+cur.Name)
	if nic != nil {
		if err := restoreOn(k, nic, addrs, routes); err != nil {
			return done, fmt.Errorf("give %q back its addresses: %w", cur.Uplink, err)
		}
		done = append(done, fmt.Sprintf("give %s back %s", cur.Uplink, describeAddrs(addrs, routes)))
	}
	return done, nil
}

// releaseSaved deletes the bridge and restores its uplink from the state
// saved before the takeover, checks it, and removes the file.
func releaseSaved(k Kernel, cur *State, link netlink.Link, saved *savedUplink, dryRun bool) ([]string, error) {
	if !saved.Committed && saved.alive() {
		return nil, fmt.Errorf("bridge %q: another vmnet run (pid %d) is taking over %s right now; wait for it to finish", cur.Name, saved.PID, saved.NIC)
	}
	give := fmt.Sprintf("give %s back %d address(es) and %d route(s) from %s", saved.NIC, len(saved.Addrs), len(saved.Routes), saved.path)
	if dryRun {
		return []string{"release uplink " + saved.NIC, "delete bridge " + cur.Name, give}, nil
	}
	var done []string
	if nic, err := k.LinkByName(saved.NIC); err == nil && nic.Attrs().MasterIndex == cur.Index {
		if err := k.LinkSetNoMaster(nic); err != nil {
			return done, fmt.Errorf("release uplink %q: %w", saved.NIC, err)
		}
		done = append(done, "release uplink "+saved.NIC)
	}
	if err := k.LinkDel(link); err != nil && !isNotFound(err) {
		return done, fmt.Errorf("delete bridge %q: %w", cur.Name, err)
	}
	done = append(done, "delete bridge "+cur.Name)
	if err := restoreVerifyRemove(k, saved); err != nil {
		return done, fmt.Errorf("give %q back its state: %w", saved.NIC, err)
	}
	return append(done, give, fmt.Sprintf("checked: %s is as it was before the takeover", saved.NIC)), nil
}

func describeAddrs(addrs []netlink.Addr, routes []netlink.Route) string {
	var parts []string
	for _, a := range addrs {
		parts = append(parts, toPrefix(a).String())
	}
	s := "no addresses"
	if len(parts) > 0 {
		s = "addresses " + strings.Join(parts, ", ")
	}
	return fmt.Sprintf("%s and %d route(s)", s, len(routes))
}
