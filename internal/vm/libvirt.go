package vm

import (
	"context"
	"net/netip"

	"libvirt.org/go/libvirt"

	"vmnet/internal/agent"
	"vmnet/internal/network"
)

// Libvirt is what this package needs of a libvirt connection: domains by
// name, define, list, and the network tasks a VM's NICs need (ensure what a
// spec requires, DHCP reservations, leases). It is small so that a test can
// fake it and make any of its calls fail; LibvirtConn is the real one.
//
// Errors keep libvirt's codes (virt.IsNotFound and virt.IsCode see them).
type Libvirt interface {
	// LookupDomain is virDomainLookupByName.
	LookupDomain(name string) (Domain, error)
	// DefineDomain defines a domain from XML, validated against the schema.
	DefineDomain(xml string) (Domain, error)
	// ListDomains lists every domain, running or not; Free each.
	ListDomains() ([]Domain, error)

	// NetworkActive reports whether the libvirt network exists and runs.
	NetworkActive(name string) (bool, error)
	// EnsureNetwork is network.Ensure.
	EnsureNetwork(ctx context.Context, s network.Spec, k network.Kernel) (*network.Result, error)
	// DeleteNetwork is network.Delete.
	DeleteNetwork(name string) (*network.Result, error)
	// Networks is network.List.
	Networks() ([]network.Info, error)
	// Hosts is network.Hosts: the network's DHCP reservations.
	Hosts(net string) ([]network.Reservation, error)
	// AddHost is network.AddHost.
	AddHost(net, mac string, ip netip.Addr, hostname string) (changed bool, err error)
	// RemoveHost is network.RemoveHost.
	RemoveHost(net, mac string) (changed bool, err error)
	// Leases is network.Leases: lower-case MAC → leased IPv4 address.
	Leases(net string) (map[string]netip.Addr, error)
	// DHCPLeases is the network's lease list as libvirt gives it (with the
	// interface and client id that releasing a lease needs).
	DHCPLeases(net string) ([]libvirt.NetworkDHCPLease, error)
}

// Domain is what this package needs of one libvirt domain. Its
// QemuAgentCommand makes it an agent.Commander.
type Domain interface {
	agent.Commander
	Name() (string, error)
	State() (libvirt.DomainState, error)
	IsActive() (bool, error)
	// Create starts a defined domain (virDomainCreate).
	Create() error
	// Destroy stops a running domain at once (virDomainDestroy).
	Destroy() error
	// ManagedSave saves a running domain's memory to libvirt's managed
	// save image and stops it; the next Create restores from the image
	// (virDomainManagedSave).
	ManagedSave() error
	// HasManagedSave reports whether a managed save image exists
	// (virDomainHasManagedSaveImage).
	HasManagedSave() (bool, error)
	Undefine(flags libvirt.DomainUndefineFlagsValues) error
	XMLDesc(flags libvirt.DomainXMLFlags) (string, error)
	// OpenConsole opens the serial console as a stream (forcing off another
	// session): Abort and Free it when done.
	OpenConsole() (ConsoleStream, error)
	// Free releases the handle, not the domain.
	Free() error
}

// ConsoleStream is a domain's serial console; *libvirt.Stream is one.
type ConsoleStream interface {
	Send(p []byte) (int, error)
	Recv(p []byte) (int, error)
	Abort() error
	Free() error
}

var (
	_ Libvirt       = libvirtConn{}
	_ Domain        = libvirtDomain{}
	_ ConsoleStream = (*libvirt.Stream)(nil)
)

// LibvirtConn is the real Libvirt over a libvirt connection, for Env.Conn.
// The connection stays the caller's to close.
func LibvirtConn(c *libvirt.Connect) Libvirt { return libvirtConn{c: c, n: network.Conn(c)} }

type libvirtConn struct {
	c *libvirt.Connect
	n network.Libvirt // the same connection, as the network package sees it
}

type libvirtDomain struct {
	c *libvirt.Connect // for the console's stream
	d *libvirt.Domain
}

func (l libvirtConn) LookupDomain(name string) (Domain, error) {
	d, err := l.c.LookupDomainByName(name)
	if err != nil {
		return nil, err
	}
	return libvirtDomain{l.c, d}, nil
}

func (l libvirtConn) DefineDomain(xml string) (Domain, error) {
	d, err := l.c.DomainDefineXMLFlags(xml, libvirt.DOMAIN_DEFINE_VALIDATE)
	if err != nil {
		return nil, err
	}
	return libvirtDomain{l.c, d}, nil
}

func (l libvirtConn) ListDomains() ([]Domain, error) {
	doms, err := l.c.ListAllDomains(0)
	if err != nil {
		return nil, err
	}
	out := make([]Domain, len(doms))
	for i := range doms {
		out[i] = libvirtDomain{l.c, &doms[i]}
	}
	return out, nil
}

func (l libvirtConn) NetworkActive(name string) (bool, error) {
	n, err := l.n.LookupNetwork(name)
	if err != nil {
		return false, err
	}
	defer n.Free()
	return n.IsActive()
}

func (l libvirtConn) EnsureNetwork(ctx context.Context, s network.Spec, k network.Kernel) (*network.Result, error) {
	return network.Ensure(ctx, l.n, s, k)
}

func (l libvirtConn) DeleteNetwork(name string) (*network.Result, error) {
	return network.Delete(l.n, name)
}

func (l libvirtConn) Networks() ([]network.Info, error) { return network.List(l.n) }

func (l libvirtConn) Hosts(net string) ([]network.Reservation, error) {
	return network.Hosts(l.n, net)
}

func (l libvirtConn) AddHost(net, mac string, ip netip.Addr, hostname string) (bool, error) {
	return network.AddHost(l.n, net, mac, ip, hostname)
}

func (l libvirtConn) RemoveHost(net, mac string) (bool, error) {
	return network.RemoveHost(l.n, net, mac)
}

func (l libvirtConn) Leases(net string) (map[string]netip.Addr, error) {
	return network.Leases(l.n, net)
}

func (l libvirtConn) DHCPLeases(net string) ([]libvirt.NetworkDHCPLease, error) {
	n, err := l.n.LookupNetwork(net)
	if err != nil {
		return nil, err
	}
	defer n.Free()
	return n.DHCPLeases()
}

func (d libvirtDomain) QemuAgentCommand(cmd string, timeout libvirt.DomainQemuAgentCommandTimeout, flags uint32) (string, error) {
	return d.d.QemuAgentCommand(cmd, timeout, flags)
}

func (d libvirtDomain) Name() (string, error) { return d.d.GetName() }

func (d libvirtDomain) State() (libvirt.DomainState, error) {
	st, _, err := d.d.GetState()
	return st, err
}

func (d libvirtDomain) IsActive() (bool, error) { return d.d.IsActive() }
func (d libvirtDomain) Create() error           { return d.d.Create() }
func (d libvirtDomain) Destroy() error          { return d.d.Destroy() }
func (d libvirtDomain) ManagedSave() error      { return d.d.ManagedSave(0) }

func (d libvirtDomain) HasManagedSave() (bool, error) { return d.d.HasManagedSaveImage(0) }

func (d libvirtDomain) Undefine(flags libvirt.DomainUndefineFlagsValues) error {
	return d.d.UndefineFlags(flags)
}

func (d libvirtDomain) XMLDesc(flags libvirt.DomainXMLFlags) (string, error) {
	return d.d.GetXMLDesc(flags)
}

func (d libvirtDomain) OpenConsole() (ConsoleStream, error) {
	s, err := d.c.NewStream(0)
	if err != nil {
		return nil, err
	}
	if err := d.d.OpenConsole("", s, libvirt.DOMAIN_CONSOLE_FORCE); err != nil {
		s.Free()
		return nil, err
	}
	return s, nil
}

func (d libvirtDomain) Free() error { return d.d.Free() }
