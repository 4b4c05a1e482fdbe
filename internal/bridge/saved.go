package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vmnet/internal/fsperm"
)

// DefaultStateDir is where a NIC's state is saved before a takeover.
const DefaultStateDir = "/var/lib/vmnet/uplinks"

// savedUplink is a NIC as it was before a takeover. It is written before the
// first change and read back by a rollback, by bridge delete, and by the next
// create after a run that died, so the NIC always gets its routes back.
type savedUplink struct {
	NIC           string       `json:"nic"`
	Bridge        string       `json:"bridge"`
	BridgeExisted bool         `json:"bridgeExisted"` // the bridge was there before the takeover
	PID           int          `json:"pid"`           // the run that saved it
	SavedAt       time.Time    `json:"savedAt"`
	Committed     bool         `json:"committed"` // the takeover finished; the NIC is the bridge's port
	MAC           string       `json:"mac"`
	MTU           int          `json:"mtu"`
	Master        string       `json:"master,omitempty"`
	Up            bool         `json:"up"`
	IPv6Multicast bool         `json:"ipv6Multicast"` // the kernel's ff00::/8 route was there
	Addrs         []savedAddr  `json:"addresses"`
	Routes        []savedRoute `json:"routes"`

	path string
}

type savedAddr struct {
	Prefix       string `json:"prefix"`
	Broadcast    string `json:"broadcast,omitempty"`
	Label        string `json:"label,omitempty"`
	Scope        int    `json:"scope"`
	Flags        int    `json:"flags"`
	ValidLft     int    `json:"validLft"`     // seconds left at SavedAt; 4294967295 is forever
	PreferredLft int    `json:"preferredLft"` // idem
}

type savedRoute struct {
	Family   int    `json:"family"`
	Table    int    `json:"table"`
	Type     int    `json:"type"`
	Dst      string `json:"dst"` // "" for a default route
	Gw       string `json:"gw,omitempty"`
	Src      string `json:"src,omitempty"`
	Priority int    `json:"metric"`
	Protocol int    `json:"protocol"`
	Scope    int    `json:"scope"`
	Flags    int    `json:"flags"` // next-hop flags as set (onlink), never linkdown or dead
	Tos      int    `json:"tos,omitempty"`
}

// forever is the kernel's "no lifetime" in IFA_CACHEINFO.
const forever = 0xFFFFFFFF

// Address flags that describe a state the kernel is in, not a setting.
const addrStateFlags = unix.IFA_F_TENTATIVE | unix.IFA_F_OPTIMISTIC | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED | unix.IFA_F_PERMANENT

// The kernel sets these on a route whose link lost its carrier and refuses
// them in a new route (EINVAL, "can not contain DEAD or LINKDOWN").
const routeStateFlags = unix.RTNH_F_LINKDOWN | unix.RTNH_F_DEAD

func savedPath(dir, nic string) string { return filepath.Join(dir, nic+".json") }

// readNIC records a NIC's MAC, MTU, master, addresses and its routes in
// every routing table.
func readNIC(k Kernel, name string) (*savedUplink, error) {
	nic, err := k.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %q: %w", name, err)
	}
	a := nic.Attrs()
	s := &savedUplink{NIC: name, MAC: a.HardwareAddr.String(), MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
	if a.MasterIndex != 0 {
		m, err := k.LinkByIndex(a.MasterIndex)
		if err != nil {
			return nil, fmt.Errorf("look up the master of %q: %w", name, err)
		}
		s.Master = m.Attrs().Name
	}
	addrs, err := userAddresses(k, nic)
	if err != nil {
		return nil, err
	}
	for _, ad := range addrs {
		sa := savedAddr{Prefix: ad.IPNet.String(), Label: ad.Label, Scope: ad.Scope, Flags: ad.Flags &^ addrStateFlags,
			ValidLft: ad.ValidLft, PreferredLft: ad.PreferedLft}
		if ad.Broadcast != nil {
			sa.Broadcast = ad.Broadcast.String()
		}
		s.Addrs = append(s.Addrs, sa)
	}
	routes, err := nicRoutes(k, nic)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, toSavedRoute(r))
	}
	mc, err := multicastRoutes(k, nic)
	if err != nil {
		return nil, err
	}
	s.IPv6Multicast = len(mc) > 0
	return s, nil
}

// nicRoutes lists the routes through a link in every table, without those
// the kernel adds and removes by itself as the carrier comes and goes (IPv6
// link-local, and router advertisements').
func nicRoutes(k Kernel, link netlink.Link) ([]netlink.Route, error) {
	rs, err := k.RouteListFiltered(unix.AF_UNSPEC, &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes of %q: %w", link.Attrs().Name, err)
	}
	return slices.DeleteFunc(rs, func(r netlink.Route) bool {
		if r.Protocol == unix.RTPROT_RA || r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast() {
			return true
		}
		// ff00::/8 in the local table: the kernel adds it with the link's IPv6 set-up.
		return r.Type == unix.RTN_MULTICAST && r.Table == unix.RT_TABLE_LOCAL
	}), nil
}

func toSavedRoute(r netlink.Route) savedRoute {
	s := savedRoute{Family: r.Family, Table: r.Table, Type: r.Type, Priority: r.Priority, Protocol: int(r.Protocol),
		Scope: int(r.Scope), Flags: r.Flags &^ routeStateFlags, Tos: r.Tos}
	if !isDefault(r) {
		s.Dst = r.Dst.String()
	}
	if r.Gw != nil {
		s.Gw = r.Gw.String()
	}
	if r.Src != nil {
		s.Src = r.Src.String()
	}
	return s
}

func (s savedRoute) String() string {
	dst := s.Dst
	if dst == "" {
		dst = "default"
	}
	out := fmt.Sprintf("%s table %d", dst, s.Table)
	if s.Gw != "" {
		out = fmt.Sprintf("%s via %s table %d", dst, s.Gw, s.Table)
	}
	if s.Type != unix.RTN_UNICAST {
		out = fmt.Sprintf("type %d %s", s.Type, out)
	}
	out += fmt.Sprintf(" metric %d proto %d scope %d", s.Priority, s.Protocol, s.Scope)
	if s.Src != "" {
		out += " src " + s.Src
	}
	if s.Flags&unix.RTNH_F_ONLINK != 0 {
		out += " onlink"
	}
	return out
}

func (s savedRoute) route(index int) (*netlink.Route, error) {
	r := &netlink.Route{LinkIndex: index, Family: s.Family, Table: s.Table, Type: s.Type, Priority: s.Priority,
		Protocol: netlink.RouteProtocol(s.Protocol), Scope: netlink.Scope(s.Scope), Flags: s.Flags &^ routeStateFlags, Tos: s.Tos}
	if s.Dst != "" {
		_, dst, err := net.ParseCIDR(s.Dst)
		if err != nil {
			return nil, fmt.Errorf("saved route %s: %w", s, err)
		}
		r.Dst = dst
	} else if s.Family == unix.AF_INET6 {
		r.Dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	} else {
		r.Dst = &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	}
	r.Gw = net.ParseIP(s.Gw)
	r.Src = net.ParseIP(s.Src)
	return r, nil
}

func (a savedAddr) addr(elapsed time.Duration) (*netlink.Addr, bool, error) {
	na, err := netlink.ParseAddr(a.Prefix)
	if err != nil {
		return nil, false, fmt.Errorf("saved address %s: %w", a.Prefix, err)
	}
	na.Label, na.Scope = a.Label, a.Scope
	// Only the flags one can set; the kernel decides the rest.
	na.Flags = a.Flags & (unix.IFA_F_NODAD | unix.IFA_F_HOMEADDRESS | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_NOPREFIXROUTE | unix.IFA_F_MCAUTOJOIN)
	na.Broadcast = net.IPv4zero // none, unless it had one: netlink would make one up
	if b := net.ParseIP(a.Broadcast).To4(); b != nil {
		na.Broadcast = b // 4 bytes: the kernel reads IFA_BROADCAST of that length
	}
	if na.IP.To4() == nil {
		na.Broadcast = nil
	}
	left := func(lft int) int {
		if lft == forever || lft == 0 {
			return lft
		}
		return lft - int(elapsed.Seconds())
	}
	na.ValidLft, na.PreferedLft = left(a.ValidLft), left(a.PreferredLft)
	if a.ValidLft != forever && na.ValidLft <= 0 {
		return nil, false, nil // its lease ran out meanwhile: the DHCP client gets a new one
	}
	na.PreferedLft = max(na.PreferedLft, 0)
	return na, true, nil
}

// write saves the state atomically: a 0600 temporary file in the 0700
// directory, synced, renamed over the old one, and the directory synced.
func (s *savedUplink) write() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save the state of %q: %w", s.NIC, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // MkdirAll's mode passes through the umask
		return fmt.Errorf("save the state of %q: %w", s.NIC, err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save the state of %q to %s: %w", s.NIC, s.path, err)
	}
	return nil
}

func (s *savedUplink) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", s.path, err)
	}
	return nil
}

// loadSaved reads every saved NIC state in dir.
func loadSaved(dir string) ([]*savedUplink, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved uplink states: %w", err)
	}
	var out []*savedUplink
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read saved uplink state: %w", err)
		}
		s := &savedUplink{}
		if err := json.Unmarshal(b, s); err != nil || s.NIC == "" {
			return nil, fmt.Errorf("saved uplink state %s is damaged (%v): restore the NIC by hand from it, then remove it", p, err)
		}
		s.path = p
		out = append(out, s)
	}
	return out, nil
}

// alive reports whether the run that saved the state still runs: another
// vmnet process with that pid (a pid the kernel reused is not vmnet).
func (s *savedUplink) alive() bool {
	if s.PID <= 0 || s.PID == os.Getpid() {
		return false
	}
	if err := syscall.Kill(s.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	theirs, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.PID))
	ours, err2 := os.ReadFile("/proc/self/comm")
	return err1 == nil && err2 == nil && string(theirs) == string(ours)
}

// restoreSaved gives the NIC back what the file describes: master, MTU, MAC
// and up state, then addresses, then routes without a gateway (link scope),
// then routes via a gateway, default routes last, so each gateway is
// reachable when its route is added. What is already there is kept.
func restoreSaved(k Kernel, s *savedUplink) error {
	nic, err := k.LinkByName(s.NIC)
	if err != nil {
		return fmt.Errorf("restore %q: %w", s.NIC, err)
	}
	var errs []error
	a := nic.Attrs()
	if a.MasterIndex != 0 && s.Master == "" {
		if err := k.LinkSetNoMaster(nic); err != nil {
			errs = append(errs, fmt.Errorf("release %q from its bridge: %w", s.NIC, err))
		}
	}
	if a.MTU != s.MTU {
		if err := k.LinkSetMTU(nic, s.MTU); err != nil {
			errs = append(errs, fmt.Errorf("set MTU %d: %w", s.MTU, err))
		}
	}
	if mac, err := net.ParseMAC(s.MAC); err == nil && a.HardwareAddr.String() != mac.String() {
		if err := k.LinkSetHardwareAddr(nic, mac); err != nil {
			errs = append(errs, fmt.Errorf("set MAC %s: %w", mac, err))
		}
	}
	if s.Up && a.Flags&net.FlagUp == 0 {
		if err := k.LinkSetUp(nic); err != nil {
			errs = append(errs, fmt.Errorf("bring %q up: %w", s.NIC, err))
		}
	}
	have, err := userAddresses(k, nic)
	if err != nil {
		return err
	}
	elapsed := time.Since(s.SavedAt)
	for _, sa := range s.Addrs {
		if slices.ContainsFunc(have, func(h netlink.Addr) bool { return h.IPNet.String() == sa.Prefix }) {
			continue
		}
		na, ok, err := sa.addr(elapsed)
		if err == nil && ok {
			err = k.AddrAdd(nic, na)
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add address %s: %w", sa.Prefix, err))
		}
	}
	routes, err := nicRoutes(k, nic)
	if err != nil {
		return err
	}
	haveRoute := map[string]bool{}
	for _, r := range routes {
		haveRoute[toSavedRoute(r).String()] = true
	}
	want := slices.Clone(s.Routes)
	rank := func(r savedRoute) int {
		switch {
		case r.Gw == "":
			return 0
		case r.Dst != "":
			return 1
		}
		return 2
	}
	slices.SortStableFunc(want, func(a, b savedRoute) int { return rank(a) - rank(b) })
	for _, sr := range want {
		if sr.Protocol == unix.RTPROT_KERNEL || haveRoute[sr.String()] {
			continue // the kernel's own routes come back with the addresses
		}
		r, err := sr.route(nic.Attrs().Index)
		if err == nil {
			err = k.RouteAdd(r)
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add route %s: %w", sr, err))
		}
	}
	errs = append(errs, dropMulticastRoute(k, nic, s))
	return errors.Join(errs...)
}

// dropMulticastRoute undoes a side effect of re-adding an IPv6 address: the
// kernel then adds ff00::/8 to the local table even on a link without
// carrier, where it had none before. It adds it again when a carrier comes.
func dropMulticastRoute(k Kernel, nic netlink.Link, s *savedUplink) error {
	if nic.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 || s.IPv6Multicast {
		return nil
	}
	rs, err := multicastRoutes(k, nic)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := k.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete the kernel's ff00::/8 route on %q: %w", s.NIC, err)
		}
	}
	return nil
}

func multicastRoutes(k Kernel, nic netlink.Link) ([]netlink.Route, error) {
	rs, err := k.RouteListFiltered(unix.AF_INET6, &netlink.Route{LinkIndex: nic.Attrs().Index, Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_MULTICAST},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE|netlink.RT_FILTER_TYPE)
	if err != nil {
		return nil, fmt.Errorf("list multicast routes of %q: %w", nic.Attrs().Name, err)
	}
	return rs, nil
}

// verifySaved compares the NIC with the file and names every difference.
// IPv6 settles a moment after an address comes back (duplicate address
// detection), so it looks again for a few seconds before it reports.
func verifySaved(k Kernel, s *savedUplink) error {
	var diffs []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		diffs = diffSaved(k, s)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%s is not as it was before the takeover (%s): %s", s.NIC, s.path, strings.Join(diffs, "; "))
}

func diffSaved(k Kernel, s *savedUplink) []string {
	now, err := readNIC(k, s.NIC)
	if err != nil {
		return []string{err.Error()}
	}
	var d []string
	if now.MAC != s.MAC {
		d = append(d, fmt.Sprintf("MAC is %s, was %s", now.MAC, s.MAC))
	}
	if now.MTU != s.MTU {
		d = append(d, fmt.Sprintf("MTU is %d, was %d", now.MTU, s.MTU))
	}
	if now.Master != s.Master {
		d = append(d, fmt.Sprintf("master is %q, was %q", now.Master, s.Master))
	}
	addrKey := func(a savedAddr) string {
		return fmt.Sprintf("%s scope %d flags %#x broadcast %q", a.Prefix, a.Scope, a.Flags, a.Broadcast)
	}
	elapsed := time.Since(s.SavedAt)
	d = append(d, setDiff("address", s.Addrs, now.Addrs, addrKey, func(a savedAddr) bool {
		_, ok, _ := a.addr(elapsed)
		return ok
	}, func(savedAddr) bool { return false })...)
	// The kernel's local-table routes follow the addresses (and IPv6 adds
	// them once the link is ready): a missing one is a difference, one the
	// kernel added since is not.
	kernelLocal := func(r savedRoute) bool { return r.Table == unix.RT_TABLE_LOCAL && r.Protocol == unix.RTPROT_KERNEL }
	d = append(d, setDiff("route", s.Routes, now.Routes, savedRoute.String, func(savedRoute) bool { return true }, kernelLocal)...)
	return d
}

// setDiff names what is missing from now (of what is expected) and what is
// extra in it (unless extraOK).
func setDiff[T any](what string, was, now []T, key func(T) string, expected, extraOK func(T) bool) []string {
	var d []string
	nowKeys := map[string]bool{}
	for _, x := range now {
		nowKeys[key(x)] = true
	}
	wasKeys := map[string]bool{}
	for _, x := range was {
		wasKeys[key(x)] = true
		if !nowKeys[key(x)] && expected(x) {
			d = append(d, fmt.Sprintf("%s %s is missing", what, key(x)))
		}
	}
	for _, x := range now {
		if !wasKeys[key(x)] && !extraOK(x) {
			d = append(d, fmt.Sprintf("%s %s was not there", what, key(x)))
		}
	}
	return d
}

// saveBefore records the NIC's state in the state directory before the
// first change of a takeover.
func saveBefore(k Kernel, spec Spec, cur *State, up *uplinkState, opt Options) (*savedUplink, error) {
	s, err := readNIC(k, up.link.Attrs().Name)
	if err != nil {
		return nil, err
	}
	s.Bridge, s.BridgeExisted, s.PID, s.SavedAt = spec.Name, cur != nil, os.Getpid(), time.Now()
	s.path = savedPath(opt.stateDir(), s.NIC)
	return s, s.write()
}

// holds reports whether the saved state's bridge has the NIC as its port,
// as a finished takeover leaves it.
func holds(k Kernel, s *savedUplink) bool {
	br, err1 := k.LinkByName(s.Bridge)
	nic, err2 := k.LinkByName(s.NIC)
	return err1 == nil && err2 == nil && br.Type() == "bridge" && nic.Attrs().MasterIndex == br.Attrs().Index
}

// recoverLeftovers restores a NIC whose saved state a run left behind
// without finishing its takeover (it was killed, or the host lost power),
// or whose bridge went away by other means, so that what follows starts
// from the host as it was. It returns a note for each.
func recoverLeftovers(k Kernel, match func(*savedUplink) bool, opt Options) ([]string, error) {
	all, err := loadSaved(opt.stateDir())
	if err != nil {
		return nil, err
	}
	var notes []string
	for _, s := range all {
		if !match(s) || s.Committed && holds(k, s) {
			continue
		}
		if !s.Committed && s.alive() {
			return notes, &FieldError{Field: "--uplink", Value: s.NIC, Problem: fmt.Sprintf("is being taken over by another vmnet run (pid %d) right now", s.PID),
				Fix: "wait for that run to finish, then try again"}
		}
		why := fmt.Sprintf("a previous run (pid %d, %s) did not finish taking over %s", s.PID, s.SavedAt.Format(time.RFC3339), s.NIC)
		if s.Committed {
			why = fmt.Sprintf("bridge %s no longer holds %s", s.Bridge, s.NIC)
		}
		if opt.DryRun {
			notes = append(notes, fmt.Sprintf("%s: would restore %s from %s first", why, s.NIC, s.path))
			continue
		}
		if err := recoverSaved(k, s); err != nil {
			return notes, fmt.Errorf("%s; restoring it from %s failed: %w", why, s.path, err)
		}
		notes = append(notes, fmt.Sprintf("%s: restored %s from %s and checked it before going on", why, s.NIC, s.path))
	}
	return notes, nil
}

// recoverSaved undoes a takeover that did not finish: it releases the NIC,
// removes the bridge that run made (or takes back from an older bridge what
// was moved to it), restores the NIC from the file, checks it and removes
// the file.
func recoverSaved(k Kernel, s *savedUplink) error {
	if br, err := Inspect(k, s.Bridge); err == nil && br.Managed {
		link, err := k.LinkByName(s.Bridge)
		if err != nil {
			return err
		}
		if nic, err := k.LinkByName(s.NIC); err == nil && nic.Attrs().MasterIndex == br.Index {
			if err := k.LinkSetNoMaster(nic); err != nil {
				return fmt.Errorf("release %q: %w", s.NIC, err)
			}
		}
		if !s.BridgeExisted {
			if err := k.LinkDel(link); err != nil && !isNotFound(err) {
				return fmt.Errorf("delete bridge %q: %w", s.Bridge, err)
			}
		} else if err := strip(k, link, s.netlinkAddrs(), s.netlinkRoutes(link.Attrs().Index)); err != nil {
			return fmt.Errorf("take %s's addresses off %q: %w", s.NIC, s.Bridge, err)
		}
	}
	return restoreVerifyRemove(k, s)
}

func restoreVerifyRemove(k Kernel, s *savedUplink) error {
	if err := restoreSaved(k, s); err != nil {
		return err
	}
	if err := verifySaved(k, s); err != nil {
		return err
	}
	return s.remove()
}

func (s *savedUplink) netlinkAddrs() []netlink.Addr {
	var out []netlink.Addr
	for _, sa := range s.Addrs {
		if a, err := netlink.ParseAddr(sa.Prefix); err == nil {
			out = append(out, *a)
		}
	}
	return out
}

func (s *savedUplink) netlinkRoutes(index int) []netlink.Route {
	var out []netlink.Route
	for _, sr := range s.Routes {
		if sr.Protocol == unix.RTPROT_KERNEL || sr.Table == unix.RT_TABLE_LOCAL {
			continue
		}
		if r, err := sr.route(index); err == nil {
			out = append(out, *r)
		}
	}
	return out
}

// savedFor returns the saved state of a bridge's uplink, or nil.
func savedFor(opt Options, bridge, nic string) (*savedUplink, error) {
	all, err := loadSaved(opt.stateDir())
	if err != nil {
		return nil, err
	}
	for _, s := range all {
		if s.NIC == nic && s.Bridge == bridge {
			return s, nil
		}
	}
	return nil, nil
}
