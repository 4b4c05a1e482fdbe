package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/errs"
	"vmnet/internal/virt"
)

// Kernel is the view of the network namespace where libvirtd runs that the
// checks need. *netlink.Handle implements it.
type Kernel interface {
	// RouteList equals 'ip route show [dev LINK]' (main table) for one family.
	RouteList(link netlink.Link, family int) ([]netlink.Route, error)
	// LinkByName equals 'ip link show NAME'.
	LinkByName(name string) (netlink.Link, error)
	// LinkByIndex looks a link up by its index.
	LinkByIndex(index int) (netlink.Link, error)
}

var _ Kernel = (*netlink.Handle)(nil)

// OpenKernel returns a netlink handle in the network namespace of the
// libvirtd that uri reaches (virt.Netns): where its bridges and routes are.
// Close it with Close.
func OpenKernel(uri string) (*netlink.Handle, error) {
	ns, err := virt.Netns(uri)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in the network namespace of libvirtd: %w", err)
	}
	return h, nil
}

// Outcome says what Ensure or Delete did.
type Outcome string

// Outcomes.
const (
	Created   Outcome = "created"
	Changed   Outcome = "changed"
	Unchanged Outcome = "unchanged"
	Deleted   Outcome = "deleted"
	Absent    Outcome = "absent" // Delete of a network that does not exist
)

// Result says what Ensure or Delete did to one network.
type Result struct {
	Name    string   `json:"name"`
	Outcome Outcome  `json:"outcome"`
	Changes []string `json:"changes"` // in the order made
	Notes   []string `json:"notes"`
}

func (r *Result) did(what string) {
	slog.Debug("network change", "network", r.Name, "change", what)
	r.Changes = append(r.Changes, what)
}

// foreign is the error for a network that vmnet did not make.
func foreign(name string) error {
	return &errs.ForeignError{Kind: "libvirt network", Name: name, Detail: "it has no vmnet owner metadata",
		Fix: "choose another name, or remove it yourself with: virsh net-destroy " + name + "; virsh net-undefine " + name}
}

// InUseError is returned when a change would cut guests off a network.
type InUseError struct {
	Name        string
	Ports       int      // guest interfaces plugged into the network
	Differences []string // what a redefinition would change; empty for delete
}

func (e *InUseError) Error() string {
	if len(e.Differences) == 0 {
		return fmt.Sprintf("network %q is in use by %d guest interface(s); deleting it would cut them off", e.Name, e.Ports)
	}
	return fmt.Sprintf("network %q differs from the request (%s) but is in use by %d guest interface(s); changing it needs a restart that would cut them off",
		e.Name, strings.Join(e.Differences, ", "), e.Ports)
}

// Hint tells the user how to proceed.
func (e *InUseError) Hint() string {
	if len(e.Differences) == 0 {
		return "stop or remove the VMs on it first (vmnet vm down), then delete it"
	}
	return "stop the VMs on it first (vmnet vm down) and run the command again, or repeat it with the network's current settings"
}

// Ensure makes network s exist, persistent, autostarted and running, as
// Build describes it. A vmnet network that differs is redefined and
// restarted, keeping its UUID, bridge MAC and the DHCP reservations that
// still fit; while guests are plugged in it is refused instead, naming the
// differences. A subnet that overlaps a route in k's namespace or another
// libvirt network is refused before anything changes.
func Ensure(ctx context.Context, conn Libvirt, s Spec, k Kernel) (*Result, error) {
	want, err := Build(s)
	if err != nil {
		return nil, err
	}
	s = s.withDefaults()
	res := &Result{Name: s.Name, Changes: []string{}, Notes: []string{}}

	net, cur, err := lookup(conn, s.Name)
	if err != nil {
		return nil, err
	}
	if net != nil {
		defer net.Free()
		if !Owned(cur) {
			return nil, foreign(s.Name)
		}
		if have := labOf(cur); have != s.Lab {
			res.Notes = append(res.Notes, labNote(s.Name, have))
		}
	}
	if err := checkHost(conn, k, s, net != nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	if net == nil {
		if net, err = create(conn, want, res); err != nil {
			return nil, err
		}
		defer net.Free()
	} else if err := converge(conn, net, want, cur, res); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := start(net, s, res); err != nil {
		return res, err
	}
	switch {
	case res.Outcome == Created:
	case len(res.Changes) == 0:
		res.Outcome = Unchanged
	default:
		res.Outcome = Changed
	}
	return res, nil
}

// labNote says that an existing network keeps its lab tag, have.
func labNote(name, have string) string {
	if have == "" {
		return fmt.Sprintf("network %s existed before and belongs to no lab; it stays so", name)
	}
	return fmt.Sprintf("network %s belongs to lab %s and stays so", name, have)
}

// create defines a new network from want.
func create(conn Libvirt, want *libvirtxml.Network, res *Result) (Network, error) {
	xmlText, err := want.Marshal()
	if err != nil {
		return nil, fmt.Errorf("network %q: render XML: %w", want.Name, err)
	}
	slog.Debug("network XML", "network", want.Name, "xml", xmlText)
	net, err := conn.DefineNetwork(xmlText)
	if err != nil {
		return nil, fmt.Errorf("define network %q: %s: %w", want.Name, virt.Message(err), err)
	}
	res.Outcome = Created
	res.did("define network " + want.Name)
	return net, nil
}

// converge brings an existing vmnet network's definition to want: a new
// definition where it differs, a persistent one for a transient network,
// and a stop where it runs an older definition than its persistent one.
func converge(conn Libvirt, net Network, want, cur *libvirtxml.Network, res *Result) error {
	if diffs := differences(want, cur); len(diffs) > 0 {
		return redefine(conn, net, want, cur, diffs, res)
	}
	persistent, err := net.IsPersistent()
	if err != nil {
		return fmt.Errorf("network %q: %w", want.Name, err)
	}
	if !persistent {
		// Started with net-create: make it survive a libvirtd restart.
		if err := define(conn, want, cur); err != nil {
			return err
		}
		res.did("make network " + want.Name + " persistent")
		return nil
	}
	return stopStale(net, want, res)
}

// stopStale stops a running network whose live definition differs from
// want though its persistent one matches, as a redefinition whose stop
// failed leaves it; start then applies the definition.
func stopStale(net Network, want *libvirtxml.Network, res *Result) error {
	active, err := net.IsActive()
	if err != nil {
		return fmt.Errorf("network %q: %w", want.Name, err)
	}
	if !active {
		return nil
	}
	live, err := readDef(net, 0)
	if err != nil {
		return fmt.Errorf("network %q: live definition: %w", want.Name, err)
	}
	diffs := differences(want, live)
	if len(diffs) == 0 {
		return nil
	}
	ports, err := portCount(net)
	if err != nil {
		return err
	}
	if ports > 0 {
		return &InUseError{Name: want.Name, Ports: ports, Differences: diffs}
	}
	if err := net.Destroy(); err != nil && !virt.IsCode(err, libvirt.ERR_OPERATION_INVALID) {
		return fmt.Errorf("stop network %q to apply its definition: %s: %w", want.Name, virt.Message(err), err)
	}
	res.did("stop network " + want.Name + ", which ran an older definition: " + strings.Join(diffs, ", "))
	return nil
}

// start sets net to autostart and starts it if it is not running.
func start(net Network, s Spec, res *Result) error {
	auto, err := net.Autostart()
	if err != nil {
		return fmt.Errorf("network %q: read autostart: %w", s.Name, err)
	}
	if !auto {
		if err := net.SetAutostart(true); err != nil {
			return fmt.Errorf("network %q: set autostart: %s: %w", s.Name, virt.Message(err), err)
		}
		res.did("set autostart")
	}
	active, err := net.IsActive()
	if err != nil {
		return fmt.Errorf("network %q: %w", s.Name, err)
	}
	if !active {
		if err := net.Create(); err != nil && !virt.IsCode(err, libvirt.ERR_OPERATION_INVALID) {
			return startError(s, err, haveTool)
		}
		res.did("start network " + s.Name)
	}
	return nil
}

// startError explains the usual reasons a network does not start: a tool
// libvirt runs for it is missing. have probes for one (haveTool), after the
// failure, so the hint names what is missing rather than guessing it from
// libvirt's message text.
func startError(s Spec, err error, have func(tool string) bool) error {
	hint := "look at libvirtd's log; 'vmnet net list' shows the network, which stays defined"
	if s.Mode != ModeBridge {
		switch {
		case !have("iptables") && !have("nft"):
			// libvirt writes its NAT and isolation rules with one of them.
			hint = "NAT networks need the iptables package (apt-get install iptables)"
		case !have("dnsmasq"):
			hint = "networks with DHCP need dnsmasq (apt-get install dnsmasq-base)"
		}
	}
	return errs.WithHint(fmt.Errorf("start network %q: %s: %w", s.Name, virt.Message(err), err), hint)
}

// haveTool reports whether a program is on PATH or in root's sbin
// directories, where libvirtd finds iptables, nft and dnsmasq.
func haveTool(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// lookup returns the network and its persistent (or, for a transient one,
// live) definition; nil, nil when it does not exist.
func lookup(conn Libvirt, name string) (Network, *libvirtxml.Network, error) {
	net, err := conn.LookupNetwork(name)
	if virt.IsNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up network %q: %w", name, err)
	}
	def, err := readDef(net, libvirt.NETWORK_XML_INACTIVE)
	if err != nil {
		net.Free()
		return nil, nil, fmt.Errorf("network %q: %w", name, err)
	}
	return net, def, nil
}

func readDef(net Network, flags libvirt.NetworkXMLFlags) (*libvirtxml.Network, error) {
	text, err := net.XMLDesc(flags)
	if err != nil {
		return nil, fmt.Errorf("read XML: %w", err)
	}
	def := &libvirtxml.Network{}
	if err := def.Unmarshal(text); err != nil {
		return nil, fmt.Errorf("parse XML: %w", err)
	}
	return def, nil
}

// define writes want as the persistent definition of cur's network, keeping
// the UUID (libvirt refuses a redefinition without it), the bridge MAC
// (guests' neighbours and DHCP clients keep seeing the same gateway) and
// the lab tag: a network that existed is not the lab's that converges it.
func define(conn Libvirt, want, cur *libvirtxml.Network) error {
	d := *want
	d.UUID = cur.UUID
	d.Metadata = ownerMetadata(labOf(cur))
	if modeOf(&d) != ModeBridge {
		d.MAC = cur.MAC
	}
	text, err := d.Marshal()
	if err != nil {
		return fmt.Errorf("network %q: render XML: %w", want.Name, err)
	}
	slog.Debug("network XML", "network", want.Name, "xml", text)
	n, err := conn.DefineNetwork(text)
	if err != nil {
		return fmt.Errorf("define network %q: %s: %w", want.Name, virt.Message(err), err)
	}
	return n.Free()
}

// redefine converges a vmnet network that differs from want: new
// definition, then a restart, since libvirt applies most of a network's
// definition only when it starts.
func redefine(conn Libvirt, net Network, want, cur *libvirtxml.Network, diffs []string, res *Result) error {
	ports, err := portCount(net)
	if err != nil {
		return err
	}
	if ports > 0 {
		return &InUseError{Name: want.Name, Ports: ports, Differences: diffs}
	}
	d := *want
	d.IPs = slices.Clone(want.IPs)
	res.Notes = append(res.Notes, keepHosts(&d, cur)...)
	if err := define(conn, &d, cur); err != nil {
		return err
	}
	res.did("redefine network " + want.Name + ": " + strings.Join(diffs, ", "))
	active, err := net.IsActive()
	if err != nil {
		return fmt.Errorf("network %q: %w", want.Name, err)
	}
	if active {
		if err := net.Destroy(); err != nil && !virt.IsCode(err, libvirt.ERR_OPERATION_INVALID) {
			return fmt.Errorf("stop network %q to apply its new definition: %s: %w", want.Name, virt.Message(err), err)
		}
		res.did("stop network " + want.Name)
	}
	return nil
}

// keepHosts carries cur's DHCP reservations over to d where they still fit
// d's subnet, and says which were dropped.
func keepHosts(d, cur *libvirtxml.Network) (notes []string) {
	old, _, ok := ipv4(cur)
	if !ok || old.DHCP == nil || len(old.DHCP.Hosts) == 0 {
		return nil
	}
	ip, p, ok := ipv4(d)
	if ok {
		// Copy the element: d's IPs were cloned, but their DHCP pointer is want's.
		dhcp := *ip.DHCP
		dhcp.Hosts = nil
		ip.DHCP = &dhcp
	}
	for _, h := range old.DHCP.Hosts {
		a, err := netip.ParseAddr(h.IP)
		if ok && err == nil && p.Masked().Contains(a) && a != p.Addr() {
			ip.DHCP.Hosts = append(ip.DHCP.Hosts, h)
			continue
		}
		notes = append(notes, fmt.Sprintf("dropped DHCP reservation %s → %s: not in the new subnet", h.MAC, h.IP))
	}
	return notes
}

// portCount is the number of guest interfaces plugged into net.
func portCount(net Network) (int, error) {
	active, err := net.IsActive()
	if err != nil || !active {
		return 0, err
	}
	ports, err := net.PortCount()
	if err != nil {
		return 0, fmt.Errorf("list the ports of a network: %w", err)
	}
	return ports, nil
}

// checkHost refuses a spec that collides with the host: a bridge-mode
// network needs its bridge to exist; a subnet must overlap neither a route
// nor another libvirt network; a bridge name must not be another network's.
func checkHost(conn Libvirt, k Kernel, s Spec, exists bool) error {
	if s.Mode == ModeBridge {
		l, err := k.LinkByName(s.Bridge)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return &FieldError{Field: "--bridge", Value: s.Bridge, Problem: "does not exist where libvirtd runs",
				Fix: fmt.Sprintf("create it first, for example: vmnet bridge create %s --address 192.0.2.1/24", s.Bridge)}
		}
		if err != nil {
			return fmt.Errorf("look up bridge %q: %w", s.Bridge, err)
		}
		if l.Type() != "bridge" {
			return &FieldError{Field: "--bridge", Value: s.Bridge, Problem: fmt.Sprintf("is a %s link, not a bridge", l.Type()),
				Fix: "name a Linux bridge ('vmnet bridge list' shows them)"}
		}
	}
	nets, err := conn.ListNetworks()
	if err != nil {
		return fmt.Errorf("list libvirt networks: %w", err)
	}
	defer func() {
		for i := range nets {
			nets[i].Free()
		}
	}()
	own := BridgeName(s.Name)
	for i := range nets {
		name, err := nets[i].Name()
		if err != nil || name == s.Name {
			continue
		}
		def, err := readDef(nets[i], libvirt.NETWORK_XML_INACTIVE)
		if err != nil {
			return fmt.Errorf("network %q: %w", name, err)
		}
		if s.Mode != ModeBridge && def.Bridge != nil && def.Bridge.Name == own {
			return &FieldError{Field: "network name", Value: s.Name,
				Problem: fmt.Sprintf("would use bridge %s, which libvirt network %q already uses", own, name),
				Fix:     "choose another network name"}
		}
		if s.Mode == ModeBridge {
			continue
		}
		for _, ip := range def.IPs {
			if p, ok := ipPrefix(ip); ok && p.Masked().Overlaps(s.CIDR) {
				return &FieldError{Field: "--cidr", Value: s.CIDR.String(),
					Problem: fmt.Sprintf("overlaps %s of libvirt network %q", p.Masked(), name),
					Fix:     fmt.Sprintf("pick a subnet no other network uses ('vmnet net list' shows them), or delete network %s", name)}
			}
		}
	}
	if s.Mode == ModeBridge {
		return nil
	}
	return checkRoutes(k, s, exists)
}

// checkRoutes refuses a subnet that overlaps a route on another link:
// libvirt would refuse to start the network, or traffic would leave by the
// wrong link. The network's own bridge is skipped when the network exists,
// so a running network does not collide with itself.
func checkRoutes(k Kernel, s Spec, exists bool) error {
	routes, err := k.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	skip := -1
	if exists {
		if l, err := k.LinkByName(BridgeName(s.Name)); err == nil {
			skip = l.Attrs().Index
		}
	}
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == skip {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		rp := netip.PrefixFrom(dst.Unmap(), ones)
		if rp.Bits() == 0 || !rp.Overlaps(s.CIDR) {
			continue // a default route overlaps everything by design
		}
		dev := fmt.Sprint(r.LinkIndex)
		if l, err := k.LinkByIndex(r.LinkIndex); err == nil {
			dev = l.Attrs().Name
		}
		return &FieldError{Field: "--cidr", Value: s.CIDR.String(),
			Problem: fmt.Sprintf("overlaps route %s dev %s", rp.Masked(), dev),
			Fix:     fmt.Sprintf("pick a subnet that no route uses (check with 'ip route'), or remove the route on %s", dev)}
	}
	return nil
}

// Delete stops and undefines network name if vmnet made it. Deleting a
// network that does not exist succeeds (Outcome Absent); a network with
// guests plugged in is refused.
func Delete(conn Libvirt, name string) (*Result, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	res := &Result{Name: name, Changes: []string{}, Notes: []string{}}
	net, cur, err := lookup(conn, name)
	if err != nil {
		return nil, err
	}
	if net == nil {
		res.Outcome = Absent
		res.Notes = append(res.Notes, fmt.Sprintf("network %s does not exist", name))
		return res, nil
	}
	defer net.Free()
	if !Owned(cur) {
		return nil, foreign(name)
	}
	ports, err := portCount(net)
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", name, err)
	}
	if ports > 0 {
		return nil, &InUseError{Name: name, Ports: ports}
	}
	persistent, err := net.IsPersistent()
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", name, err)
	}
	active, err := net.IsActive()
	if err != nil {
		return nil, fmt.Errorf("network %q: %w", name, err)
	}
	if active {
		// Another run may have stopped it since: "not active" is success.
		if err := net.Destroy(); err != nil && !virt.IsCode(err, libvirt.ERR_OPERATION_INVALID) && !virt.IsNotFound(err) {
			return res, fmt.Errorf("stop network %q: %s: %w", name, virt.Message(err), err)
		}
		res.did("stop network " + name)
	}
	if persistent {
		if err := net.Undefine(); err != nil && !virt.IsNotFound(err) {
			return res, fmt.Errorf("undefine network %q: %s: %w", name, virt.Message(err), err)
		}
		res.did("undefine network " + name)
	}
	res.Outcome = Deleted
	return res, nil
}

// Info is one libvirt network as List reports it.
type Info struct {
	Name       string `json:"name"`
	Owner      string `json:"owner"`         // "vmnet" or "other"
	Lab        string `json:"lab,omitempty"` // the lab that made it (its mark's lab); "" for none
	Mode       Mode   `json:"mode"`          // nat, isolated, bridge, or libvirt's forward mode (route, open, ...)
	Bridge     string `json:"bridge"`
	CIDR       string `json:"cidr"`    // subnet, "" for none
	Gateway    string `json:"gateway"` // "" for none
	DHCPRange  string `json:"dhcp_range"`
	Hosts      int    `json:"dhcp_hosts"` // DHCP reservations
	Active     bool   `json:"active"`
	Autostart  bool   `json:"autostart"`
	Persistent bool   `json:"persistent"`
}

// List returns every libvirt network, vmnet's and others', sorted by name.
func List(conn Libvirt) ([]Info, error) {
	nets, err := conn.ListNetworks()
	if err != nil {
		return nil, fmt.Errorf("list libvirt networks: %w", err)
	}
	defer func() {
		for i := range nets {
			nets[i].Free()
		}
	}()
	infos := []Info{}
	for i := range nets {
		n := nets[i]
		name, err := n.Name()
		if err != nil {
			if virt.IsNotFound(err) {
				continue // undefined since the list was made
			}
			return nil, err
		}
		def, err := readDef(n, libvirt.NETWORK_XML_INACTIVE)
		if virt.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("network %q: %w", name, err)
		}
		in := Info{Name: name, Owner: "other", Mode: modeOf(def)}
		if Owned(def) {
			in.Owner, in.Lab = "vmnet", labOf(def)
		}
		if def.Bridge != nil {
			in.Bridge = def.Bridge.Name
		}
		if ip, p, ok := ipv4(def); ok {
			in.CIDR, in.Gateway = p.Masked().String(), p.Addr().String()
			if ip.DHCP != nil {
				if len(ip.DHCP.Ranges) > 0 {
					in.DHCPRange = ip.DHCP.Ranges[0].Start + "-" + ip.DHCP.Ranges[0].End
				}
				in.Hosts = len(ip.DHCP.Hosts)
			}
		}
		// Errors here mean the network vanished meanwhile; report it as stopped.
		in.Active, _ = n.IsActive()
		in.Autostart, _ = n.Autostart()
		in.Persistent, _ = n.IsPersistent()
		infos = append(infos, in)
	}
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}
