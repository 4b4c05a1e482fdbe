package network

import (
	"libvirt.org/go/libvirt"
)

// Libvirt is what this package needs of a libvirt connection: networks by
// name, define, list. It is small so that a test can fake it and make any
// of its calls fail; Conn is the real one.
//
// Errors keep libvirt's codes (virt.IsNotFound and virt.IsCode see them).
type Libvirt interface {
	// LookupNetwork is virNetworkLookupByName.
	LookupNetwork(name string) (Network, error)
	// DefineNetwork is virNetworkDefineXML: it defines a new network or
	// replaces the persistent definition of the one with the same name and UUID.
	DefineNetwork(xml string) (Network, error)
	// ListNetworks lists every network, running or not; Free each.
	ListNetworks() ([]Network, error)
}

// Network is what this package needs of one libvirt network.
type Network interface {
	Name() (string, error)
	XMLDesc(flags libvirt.NetworkXMLFlags) (string, error)
	IsActive() (bool, error)
	IsPersistent() (bool, error)
	Autostart() (bool, error)
	SetAutostart(on bool) error
	// Create starts a defined network (virNetworkCreate).
	Create() error
	// Destroy stops a running network (virNetworkDestroy).
	Destroy() error
	Undefine() error
	// PortCount is the number of guest interfaces plugged in.
	PortCount() (int, error)
	// Update is virNetworkUpdate of one section of the definition.
	Update(cmd libvirt.NetworkUpdateCommand, section libvirt.NetworkUpdateSection, index int, xml string, flags libvirt.NetworkUpdateFlags) error
	// DHCPLeases is the network's lease list.
	DHCPLeases() ([]libvirt.NetworkDHCPLease, error)
	// Free releases the handle, not the network.
	Free() error
}

var (
	_ Libvirt = libvirtConn{}
	_ Network = libvirtNetwork{}
)

// Conn is the real Libvirt over a libvirt connection. The connection stays
// the caller's to close.
func Conn(c *libvirt.Connect) Libvirt { return libvirtConn{c: c} }

type libvirtConn struct{ c *libvirt.Connect }

type libvirtNetwork struct{ n *libvirt.Network }

func (l libvirtConn) LookupNetwork(name string) (Network, error) {
	n, err := l.c.LookupNetworkByName(name)
	if err != nil {
		return nil, err
	}
	return libvirtNetwork{n}, nil
}

func (l libvirtConn) DefineNetwork(xml string) (Network, error) {
	n, err := l.c.NetworkDefineXML(xml)
	if err != nil {
		return nil, err
	}
	return libvirtNetwork{n}, nil
}

func (l libvirtConn) ListNetworks() ([]Network, error) {
	nets, err := l.c.ListAllNetworks(0)
	if err != nil {
		return nil, err
	}
	out := make([]Network, len(nets))
	for i := range nets {
		out[i] = libvirtNetwork{&nets[i]}
	}
	return out, nil
}

func (n libvirtNetwork) Name() (string, error) { return n.n.GetName() }

func (n libvirtNetwork) XMLDesc(flags libvirt.NetworkXMLFlags) (string, error) {
	return n.n.GetXMLDesc(flags)
}

func (n libvirtNetwork) IsActive() (bool, error)     { return n.n.IsActive() }
func (n libvirtNetwork) IsPersistent() (bool, error) { return n.n.IsPersistent() }
func (n libvirtNetwork) Autostart() (bool, error)    { return n.n.GetAutostart() }
func (n libvirtNetwork) SetAutostart(on bool) error  { return n.n.SetAutostart(on) }
func (n libvirtNetwork) Create() error               { return n.n.Create() }
func (n libvirtNetwork) Destroy() error              { return n.n.Destroy() }
func (n libvirtNetwork) Undefine() error             { return n.n.Undefine() }

func (n libvirtNetwork) PortCount() (int, error) {
	ports, err := n.n.ListAllPorts(0)
	if err != nil {
		return 0, err
	}
	for i := range ports {
		ports[i].Free()
	}
	return len(ports), nil
}

func (n libvirtNetwork) Update(cmd libvirt.NetworkUpdateCommand, section libvirt.NetworkUpdateSection, index int, xml string, flags libvirt.NetworkUpdateFlags) error {
	return n.n.Update(cmd, section, index, xml, flags)
}

func (n libvirtNetwork) DHCPLeases() ([]libvirt.NetworkDHCPLease, error) {
	return n.n.GetDHCPLeases()
}

func (n libvirtNetwork) Free() error { return n.n.Free() }
