package network

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"
)

// fakeLibvirt is a Libvirt in memory, for failure injection the real
// libvirtd cannot produce. fail maps a method name ("DefineNetwork",
// "Network.Create", or "Network.Update live" / "Network.Update config" for
// one copy of a definition) to the error that call returns.
type fakeLibvirt struct {
	mu   sync.Mutex
	fail map[string]error
	nets map[string]*fakeNet
}

// fakeNet is one network: its persistent definition (config, "" when
// transient), the running one (live, "" when stopped), and its flags.
type fakeNet struct {
	config, live string
	autostart    bool
	ports        int
}

var (
	_ Libvirt = (*fakeLibvirt)(nil)
	_ Network = fakeNetwork{}
)

func newFake() *fakeLibvirt {
	return &fakeLibvirt{fail: map[string]error{}, nets: map[string]*fakeNet{}}
}

// errInjected is the error the tests inject.
var errInjected = errors.New("injected failure")

func noNetwork(name string) error {
	return libvirt.Error{Code: libvirt.ERR_NO_NETWORK, Domain: libvirt.FROM_NETWORK, Message: "network " + name + " not found", Level: libvirt.ERR_ERROR}
}

func (f *fakeLibvirt) LookupNetwork(name string) (Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["LookupNetwork"]; err != nil {
		return nil, err
	}
	if _, ok := f.nets[name]; !ok {
		return nil, noNetwork(name)
	}
	return fakeNetwork{f, name}, nil
}

func (f *fakeLibvirt) DefineNetwork(x string) (Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["DefineNetwork"]; err != nil {
		return nil, err
	}
	var d libvirtxml.Network
	if err := d.Unmarshal(x); err != nil {
		return nil, err
	}
	n, ok := f.nets[d.Name]
	if !ok {
		n = &fakeNet{}
		f.nets[d.Name] = n
		d.UUID = fmt.Sprintf("00000000-0000-4000-8000-%012d", len(f.nets))
		if d.MAC == nil && d.Bridge != nil && modeOf(&d) != ModeBridge {
			d.MAC = &libvirtxml.NetworkMAC{Address: "52:54:00:00:00:01"}
		}
	} else if cur := mustParse(n.current()); d.UUID != cur.UUID {
		return nil, libvirt.Error{Code: libvirt.ERR_OPERATION_FAILED, Domain: libvirt.FROM_NETWORK, Message: "network '" + d.Name + "' already exists with uuid " + cur.UUID}
	}
	text, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	n.config = text
	return fakeNetwork{f, d.Name}, nil
}

func (f *fakeLibvirt) ListNetworks() ([]Network, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail["ListNetworks"]; err != nil {
		return nil, err
	}
	var names []string
	for name := range f.nets {
		names = append(names, name)
	}
	sort.Strings(names)
	out := []Network{}
	for _, name := range names {
		out = append(out, fakeNetwork{f, name})
	}
	return out, nil
}

// current is the definition libvirt reports without flags: the live one
// while it runs, else the persistent one.
func (n *fakeNet) current() string {
	if n.live != "" {
		return n.live
	}
	return n.config
}

func mustParse(x string) *libvirtxml.Network {
	var d libvirtxml.Network
	if err := d.Unmarshal(x); err != nil {
		panic(err)
	}
	return &d
}

// fakeNetwork is a handle on one of fakeLibvirt's networks, by name.
type fakeNetwork struct {
	f    *fakeLibvirt
	name string
}

// call locks the fake and returns the network, or the injected or
// not-found error. The caller unlocks f.mu.
func (n fakeNetwork) call(method string) (*fakeNet, error) {
	n.f.mu.Lock()
	if err := n.f.fail["Network."+method]; err != nil {
		return nil, err
	}
	fn, ok := n.f.nets[n.name]
	if !ok {
		return nil, noNetwork(n.name)
	}
	return fn, nil
}

func (n fakeNetwork) Name() (string, error) {
	defer n.f.mu.Unlock()
	if _, err := n.call("Name"); err != nil {
		return "", err
	}
	return n.name, nil
}

func (n fakeNetwork) XMLDesc(flags libvirt.NetworkXMLFlags) (string, error) {
	defer n.f.mu.Unlock()
	fn, err := n.call("XMLDesc")
	if err != nil {
		return "", err
	}
	if flags&libvirt.NETWORK_XML_INACTIVE != 0 && fn.config != "" {
		return fn.config, nil
	}
	return fn.current(), nil
}

func (n fakeNetwork) IsActive() (bool, error) {
	defer n.f.mu.Unlock()
	fn, err := n.call("IsActive")
	return err == nil && fn.live != "", err
}

func (n fakeNetwork) IsPersistent() (bool, error) {
	defer n.f.mu.Unlock()
	fn, err := n.call("IsPersistent")
	return err == nil && fn.config != "", err
}

func (n fakeNetwork) Autostart() (bool, error) {
	defer n.f.mu.Unlock()
	fn, err := n.call("Autostart")
	return err == nil && fn.autostart, err
}

func (n fakeNetwork) SetAutostart(on bool) error {
	defer n.f.mu.Unlock()
	fn, err := n.call("SetAutostart")
	if err == nil {
		fn.autostart = on
	}
	return err
}

func (n fakeNetwork) Create() error {
	defer n.f.mu.Unlock()
	fn, err := n.call("Create")
	if err != nil {
		return err
	}
	if fn.live != "" {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Domain: libvirt.FROM_NETWORK, Message: "network is already active"}
	}
	fn.live = fn.config
	return nil
}

func (n fakeNetwork) Destroy() error {
	defer n.f.mu.Unlock()
	fn, err := n.call("Destroy")
	if err != nil {
		return err
	}
	if fn.live == "" {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Domain: libvirt.FROM_NETWORK, Message: "network is not active"}
	}
	fn.live, fn.ports = "", 0
	if fn.config == "" {
		delete(n.f.nets, n.name)
	}
	return nil
}

func (n fakeNetwork) Undefine() error {
	defer n.f.mu.Unlock()
	fn, err := n.call("Undefine")
	if err != nil {
		return err
	}
	fn.config, fn.autostart = "", false
	if fn.live == "" {
		delete(n.f.nets, n.name)
	}
	return nil
}

func (n fakeNetwork) PortCount() (int, error) {
	defer n.f.mu.Unlock()
	fn, err := n.call("PortCount")
	if err != nil {
		return 0, err
	}
	return fn.ports, nil
}

// Update applies a DHCP host command to one copy of the definition, as
// virNetworkUpdate does (matching a host by MAC for modify and delete).
func (n fakeNetwork) Update(cmd libvirt.NetworkUpdateCommand, section libvirt.NetworkUpdateSection, _ int, x string, flags libvirt.NetworkUpdateFlags) error {
	defer n.f.mu.Unlock()
	fn, err := n.call("Update")
	if err != nil {
		return err
	}
	copyName, text := "config", &fn.config
	if flags == libvirt.NETWORK_UPDATE_AFFECT_LIVE {
		copyName, text = "live", &fn.live
	}
	if err := n.f.fail["Network.Update "+copyName]; err != nil {
		return err
	}
	if section != libvirt.NETWORK_SECTION_IP_DHCP_HOST || *text == "" {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Domain: libvirt.FROM_NETWORK, Message: "fake: unsupported update"}
	}
	var h libvirtxml.NetworkDHCPHost
	if err := h.Unmarshal(x); err != nil {
		return err
	}
	d := mustParse(*text)
	ip, _, ok := ipv4(d)
	if !ok {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Domain: libvirt.FROM_NETWORK, Message: "no IPv4 dhcp"}
	}
	if ip.DHCP == nil {
		ip.DHCP = &libvirtxml.NetworkDHCP{}
	}
	i := slices.IndexFunc(ip.DHCP.Hosts, func(o libvirtxml.NetworkDHCPHost) bool { return strings.EqualFold(o.MAC, h.MAC) })
	switch {
	case cmd == libvirt.NETWORK_UPDATE_COMMAND_ADD_LAST && i < 0:
		ip.DHCP.Hosts = append(ip.DHCP.Hosts, h)
	case cmd == libvirt.NETWORK_UPDATE_COMMAND_MODIFY && i >= 0:
		ip.DHCP.Hosts[i] = h
	case cmd == libvirt.NETWORK_UPDATE_COMMAND_DELETE && i >= 0:
		ip.DHCP.Hosts = slices.Delete(ip.DHCP.Hosts, i, i+1)
	default:
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Domain: libvirt.FROM_NETWORK, Message: "fake: host entry does not fit the command"}
	}
	out, err := d.Marshal()
	if err != nil {
		return err
	}
	*text = out
	return nil
}

func (n fakeNetwork) DHCPLeases() ([]libvirt.NetworkDHCPLease, error) {
	defer n.f.mu.Unlock()
	if _, err := n.call("DHCPLeases"); err != nil {
		return nil, err
	}
	return nil, nil
}

func (n fakeNetwork) Free() error { return nil }

// noRoutes is a Kernel with no routes and no links: nothing collides.
type noRoutes struct{}

var _ Kernel = noRoutes{}

func (noRoutes) RouteList(netlink.Link, int) ([]netlink.Route, error) { return nil, nil }
func (noRoutes) LinkByName(name string) (netlink.Link, error) {
	return nil, netlink.LinkNotFoundError{}
}
func (noRoutes) LinkByIndex(int) (netlink.Link, error) { return nil, netlink.LinkNotFoundError{} }

// fakeState is a network's state as the tests compare it.
type fakeState struct {
	Exists, Persistent, Active, Autostart bool
	Hosts                                 []netip.Addr // reserved IPs in the persistent definition
	LiveHosts                             []netip.Addr
}

func (f *fakeLibvirt) state(name string) fakeState {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.nets[name]
	if !ok {
		return fakeState{}
	}
	hosts := func(x string) []netip.Addr {
		if x == "" {
			return nil
		}
		var out []netip.Addr
		if ip, _, ok := ipv4(mustParse(x)); ok && ip.DHCP != nil {
			for _, h := range ip.DHCP.Hosts {
				out = append(out, netip.MustParseAddr(h.IP))
			}
		}
		return out
	}
	return fakeState{Exists: true, Persistent: n.config != "", Active: n.live != "", Autostart: n.autostart,
		Hosts: hosts(n.config), LiveHosts: hosts(n.live)}
}
