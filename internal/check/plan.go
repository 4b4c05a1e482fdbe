package check

import (
	"fmt"
	"net/netip"
	"strconv"
)

// The matrices vmnet knows.
const (
	MatrixAuto     = "auto"     // capstone for a VM made from the capstone spec, basic otherwise
	MatrixBasic    = "basic"    // host ↔ VM ping on every NIC
	MatrixCapstone = "capstone" // basic + containers, DNS, the HTTP path and closed ports
)

// The capstone app, as the capstone contract names it.
const (
	AppDB      = "db"
	AppAPI     = "api"
	AppProxy   = "proxy"
	AppNetwork = "app-net"
	ProxyPort  = 8080
	APIPort    = 5000
	DBPort     = 5432
)

// AppContainers are the capstone's containers, in path order from the database out.
var AppContainers = []string{AppDB, AppAPI, AppProxy}

// ChooseMatrix resolves a --matrix value for a target: auto picks capstone
// for a VM made from the capstone spec.
func ChooseMatrix(name string, t Target) (string, error) {
	switch name {
	case MatrixBasic, MatrixCapstone:
		return name, nil
	case MatrixAuto, "":
		if t.Spec == MatrixCapstone {
			return MatrixCapstone, nil
		}
		return MatrixBasic, nil
	}
	return "", &MatrixError{Value: name}
}

// MatrixError is an unknown --matrix value.
type MatrixError struct{ Value string }

func (e *MatrixError) Error() string {
	return fmt.Sprintf("--matrix %q: is not a check matrix", e.Value)
}

// Hint lists the choices.
func (e *MatrixError) Hint() string { return "use auto, basic or capstone" }

// Matrix plans the named matrix (basic or capstone) for t.
func Matrix(name string, t Target) ([]Check, error) {
	switch name {
	case MatrixBasic:
		return BasicMatrix(t), nil
	case MatrixCapstone:
		return CapstoneMatrix(t), nil
	}
	return nil, &MatrixError{Value: name}
}

// BasicMatrix is host ↔ VM ping on every NIC: useful for any VM, including
// one without a guest agent or containers. On a macvtap NIC both pings are
// expected to go unanswered (macvtapFromHost), and the VM → host one is
// left out when the parent has no address on the NIC's subnet.
func BasicMatrix(t Target) []Check {
	var out []Check
	for i := range t.NICs {
		out = append(out, hostToVMPing(t, i))
	}
	for i, n := range t.NICs {
		if n.Parent != "" && !n.Host.IsValid() {
			continue // a macvtap parent without an address in the NIC's subnet: no host end to ping
		}
		out = append(out, vmToHostPing(t, i))
	}
	return out
}

// CapstoneMatrix is the capstone lab's proof: BasicMatrix; the VM pinging
// each container; each container pinging the VM and the host on every
// plain-bridge NIC; name resolution on app-net; the host getting the API's
// JSON through the proxy on every NIC (proxy → api → db); and the database's
// and the API's ports closed from the host.
func CapstoneMatrix(t Target) []Check {
	out := BasicMatrix(t)
	container := containerLookup(t)
	out = append(out, vmToContainerPings(t, container)...)
	out = append(out, containerPings(t, container)...)
	out = append(out, appDNSChecks(t, container)...)
	return append(out, outsideChecks(t)...)
}

// containerLookup finds a container of t by name; one podman did not report
// comes back with State "missing", so its checks still appear and say why
// they cannot run.
func containerLookup(t Target) func(name string) Container {
	byName := map[string]Container{}
	for _, c := range t.Containers {
		byName[c.Name] = c
	}
	return func(name string) Container {
		if c, ok := byName[name]; ok {
			return c
		}
		return Container{Name: name, State: "missing"}
	}
}

// vmToContainerPings are the VM pinging each container, on app-net.
func vmToContainerPings(t Target, container func(string) Container) []Check {
	var out []Check
	vmLabel := t.Name
	for _, name := range AppContainers {
		c := container(name)
		ch := Check{
			ID: "ping:" + vmLabel + "->" + name, Source: vmLabel, Target: inside(t, name),
			Method: MethodPing, Expect: "reply", From: Place{Kind: OnVM}, Want: WantReply,
			To: c.IP, NIC: -1, Container: name,
		}
		ch.Address, ch.Unknown = addrOrWhy(c.IP, noAppAddress(c))
		out = append(out, ch)
	}
	return out
}

// containerPings are each container pinging the VM (its address on app-net)
// and the host on each plain-bridge NIC (through the guest's forwarding and
// NAT).
func containerPings(t Target, container func(string) Container) []Check {
	var out []Check
	vmLabel := t.Name
	for _, name := range AppContainers {
		c := container(name)
		gw := gatewayOf(t.Containers, c)
		ch := Check{
			ID: "ping:" + name + "->" + vmLabel, Source: inside(t, name), Target: vmLabel + ":" + AppNetwork,
			Method: MethodPing, Expect: "reply", From: Place{Kind: OnContainer, Container: name}, Want: WantReply,
			To: gw, NIC: -1, Container: name,
		}
		ch.Address, ch.Unknown = addrOrWhy(gw, "podman reports no app-net gateway")
		out = append(out, ch)
		for i, n := range t.NICs {
			if n.Network != "" {
				continue
			}
			ch := Check{
				ID: "ping:" + name + "->" + n.HostLabel(), Source: inside(t, name), Target: n.HostLabel(),
				Method: MethodPing, Expect: "reply", From: Place{Kind: OnContainer, Container: name}, Want: WantReply,
				To: n.Host, NIC: i, Container: name,
			}
			ch.Address, ch.Unknown = addrOrWhy(n.Host, fmt.Sprintf("%s has no IPv4 address", n.Bridge))
			out = append(out, ch)
		}
	}
	return out
}

// appDNSChecks are name lookups on app-net along the app's own paths: api
// finds db, proxy finds api.
func appDNSChecks(t Target, container func(string) Container) []Check {
	var out []Check
	for _, p := range [][2]string{{AppAPI, AppDB}, {AppProxy, AppAPI}} {
		from, to := p[0], p[1]
		target := container(to)
		ch := Check{
			ID: "dns:" + from + "->" + to, Source: inside(t, from), Target: inside(t, to), Address: to,
			Method: MethodDNS, Expect: "resolves", From: Place{Kind: OnContainer, Container: from},
			Want: WantResolves, Name: to, NIC: -1, Container: to,
		}
		if target.IP.IsValid() {
			ch.To = target.IP
			ch.Expect = "resolves to " + target.IP.String()
		}
		out = append(out, ch)
	}
	return out
}

// outsideChecks are, on every NIC, the whole path from the host (the proxy
// answering with the API's JSON) and the database's and API's ports, which
// must stay closed. A closed port only means something once the NIC
// answers ping, hence Requires.
func outsideChecks(t Target) []Check {
	var out []Check
	for i, n := range t.NICs {
		ping := hostToVMPing(t, i).ID
		ch := Check{
			ID: "http:host->" + nicLabel(t, n) + ":" + strconv.Itoa(ProxyPort), Source: "host", Target: nicLabel(t, n),
			Method: MethodHTTP, Expect: "200 + JSON with db.version ~ PostgreSQL", From: Place{Kind: OnHost},
			Want: WantAPI, To: n.Address, Port: ProxyPort, Path: "/", NIC: i, Container: AppProxy,
		}
		if n.Address.IsValid() {
			ch.Address = "http://" + netip.AddrPortFrom(n.Address, ProxyPort).String() + "/"
		} else {
			ch.Address, ch.Unknown = "-", noNICAddress(t, n)
		}
		out = append(out, ch)
		for _, port := range []uint16{DBPort, APIPort} {
			ch := Check{
				ID: "tcp:host->" + nicLabel(t, n) + ":" + strconv.Itoa(int(port)), Source: "host", Target: nicLabel(t, n),
				Method: MethodTCP, Expect: "closed", From: Place{Kind: OnHost}, Want: WantClosed,
				To: n.Address, Port: port, NIC: i, Requires: []string{ping},
			}
			if n.Address.IsValid() {
				ch.Address = netip.AddrPortFrom(n.Address, port).String()
			} else {
				ch.Address, ch.Unknown = "-", noNICAddress(t, n)
			}
			out = append(out, ch)
		}
	}
	return out
}

func hostToVMPing(t Target, i int) Check {
	n := t.NICs[i]
	ch := Check{
		ID: "ping:host->" + nicLabel(t, n), Source: "host", Target: nicLabel(t, n),
		Method: MethodPing, Expect: "reply", From: Place{Kind: OnHost}, Want: WantReply, To: n.Address, NIC: i,
	}
	ch.Address, ch.Unknown = addrOrWhy(n.Address, noNICAddress(t, n))
	return macvtapFromHost(t, ch)
}

func vmToHostPing(t Target, i int) Check {
	n := t.NICs[i]
	ch := Check{
		ID: "ping:" + t.Name + "->" + n.HostLabel(), Source: t.Name, Target: n.HostLabel(),
		Method: MethodPing, Expect: "reply", From: Place{Kind: OnVM}, Want: WantReply, To: n.Host, NIC: i,
	}
	why := fmt.Sprintf("%s has no IPv4 address", n.Bridge)
	if n.Network != "" {
		why = fmt.Sprintf("network %s has no gateway address", n.Network)
	}
	ch.Address, ch.Unknown = addrOrWhy(n.Host, why)
	return macvtapFromHost(t, ch)
}

// nicLabel names a VM NIC: capstone:eth1.
func nicLabel(t Target, n NIC) string { return t.Name + ":" + n.Guest }

// inside names a container in the VM: capstone/db.
func inside(t Target, container string) string { return t.Name + "/" + container }

func addrOrWhy(a netip.Addr, why string) (address, unknown string) {
	if a.IsValid() {
		return a.String(), ""
	}
	return "-", why
}

func noNICAddress(t Target, n NIC) string {
	if n.Network != "" {
		return fmt.Sprintf("%s has no address: network %s has no lease or reservation for %s", nicLabel(t, n), n.Network, n.MAC)
	}
	return fmt.Sprintf("%s has no address: the spec gives it none and a plain bridge has no DHCP", nicLabel(t, n))
}

func noAppAddress(c Container) string {
	switch {
	case c.State == "missing":
		return fmt.Sprintf("container %s does not exist", c.Name)
	case c.State == "unknown":
		return fmt.Sprintf("podman's state of %s is unknown", c.Name)
	case !c.Running():
		return fmt.Sprintf("container %s is %s", c.Name, c.State)
	}
	return fmt.Sprintf("container %s has no address on %s", c.Name, AppNetwork)
}

// gatewayOf is app-net's gateway as c, or failing that any container, sees it.
func gatewayOf(all []Container, c Container) netip.Addr {
	if c.Gateway.IsValid() {
		return c.Gateway
	}
	for _, o := range all {
		if o.Gateway.IsValid() {
			return o.Gateway
		}
	}
	return netip.Addr{}
}
