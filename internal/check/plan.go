package check

import (
	"fmt"
	"net/netip"
	"strconv"

	"vmnet/internal/app"
)

// The matrices vmnet knows besides the apps': an app's name (capstone)
// names its matrix.
const (
	MatrixAuto  = "auto"  // the app's matrix for a VM made from a spec named like an app, basic otherwise
	MatrixBasic = "basic" // host ↔ VM ping on every NIC
)

// ChooseMatrix resolves a --matrix value for a target: basic, or the name
// of one of apps; auto picks the app named like the spec t was made from.
func ChooseMatrix(name string, t Target, apps app.Registry) (string, error) {
	switch name {
	case MatrixBasic:
		return name, nil
	case MatrixAuto, "":
		if _, ok := apps.Lookup(t.Spec); ok {
			return t.Spec, nil
		}
		return MatrixBasic, nil
	}
	if _, ok := apps.Lookup(name); ok {
		return name, nil
	}
	return "", &MatrixError{Value: name, apps: apps.String()}
}

// MatrixError is an unknown --matrix value.
type MatrixError struct {
	Value string

	apps string // the apps' names, for the hint
}

func (e *MatrixError) Error() string {
	return fmt.Sprintf("--matrix %q: is not a check matrix", e.Value)
}

// Hint lists the choices.
func (e *MatrixError) Hint() string {
	if e.apps == "" {
		return "use auto or basic"
	}
	return "use auto, basic or " + e.apps
}

// Matrix plans the named matrix (basic, or an app's from apps) for t.
func Matrix(name string, t Target, apps app.Registry) ([]Check, error) {
	if name == MatrixBasic {
		return BasicMatrix(t), nil
	}
	if a, ok := apps.Lookup(name); ok {
		t.App = &a
		return AppMatrix(t), nil
	}
	return nil, &MatrixError{Value: name, apps: apps.String()}
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

// AppMatrix is the proof of t's app (BasicMatrix when t has none), all
// from its description: BasicMatrix; the VM pinging each container; each
// container pinging the VM and the host on every plain-bridge NIC; the
// app's name lookups on its network; the host getting the app's HTTP
// answer from its published port on every NIC (through the containers
// behind it: capstone's proxy → api → db); and the ports that must stay
// closed from the host.
func AppMatrix(t Target) []Check {
	out := BasicMatrix(t)
	if t.App == nil {
		return out
	}
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

// vmToContainerPings are the VM pinging each of the app's containers, on
// its network.
func vmToContainerPings(t Target, container func(string) Container) []Check {
	var out []Check
	vmLabel := t.Name
	for _, name := range t.App.ContainerNames() {
		c := container(name)
		ch := Check{
			ID: "ping:" + vmLabel + "->" + name, Source: vmLabel, Target: inside(t, name),
			Method: MethodPing, Expect: "reply", From: Place{Kind: OnVM}, Want: WantReply,
			To: c.IP, NIC: -1, Container: name,
		}
		ch.Address, ch.Unknown = addrOrWhy(c.IP, noAppAddress(t, c))
		out = append(out, ch)
	}
	return out
}

// containerPings are each container pinging the VM (its address on the app's network)
// and the host on each plain-bridge NIC (through the guest's forwarding and
// NAT).
func containerPings(t Target, container func(string) Container) []Check {
	var out []Check
	vmLabel := t.Name
	for _, name := range t.App.ContainerNames() {
		c := container(name)
		gw := gatewayOf(t.Containers, c)
		ch := Check{
			ID: "ping:" + name + "->" + vmLabel, Source: inside(t, name), Target: vmLabel + ":" + t.App.Network,
			Method: MethodPing, Expect: "reply", From: Place{Kind: OnContainer, Container: name}, Want: WantReply,
			To: gw, NIC: -1, Container: name,
		}
		ch.Address, ch.Unknown = addrOrWhy(gw, "podman reports no "+t.App.Network+" gateway")
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

// appDNSChecks are the app's name lookups on its network, along its own
// paths (capstone: api finds db, proxy finds api).
func appDNSChecks(t Target, container func(string) Container) []Check {
	var out []Check
	for _, l := range t.App.Lookups {
		from, to := l.From, l.Name
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

// outsideChecks are, on every NIC, the app's whole path from the host (its
// HTTP answer on the published port) and the ports that must stay closed.
// A closed port only means something once the NIC answers ping, hence
// Requires.
func outsideChecks(t Target) []Check {
	var out []Check
	for i, n := range t.NICs {
		out = append(out, appHTTPCheck(t, i))
		ping := hostToVMPing(t, i).ID
		for _, p := range t.App.ClosedFromHost {
			port := uint16(p)
			ch := Check{
				ID: "tcp:host->" + nicLabel(t, n) + ":" + strconv.Itoa(p), Source: "host", Target: nicLabel(t, n),
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

// appHTTPCheck is the host's GET of the app's HTTP path on the port its
// entry container publishes, on the VM's NIC i.
func appHTTPCheck(t Target, i int) Check {
	n, h, entry := t.NICs[i], t.App.HTTP, t.App.Entry()
	port := uint16(entry.Publish)
	ch := Check{
		ID: "http:host->" + nicLabel(t, n) + ":" + strconv.Itoa(entry.Publish), Source: "host", Target: nicLabel(t, n),
		Method: MethodHTTP, Expect: h.Expect, From: Place{Kind: OnHost},
		Want: Want(h.Judge), To: n.Address, Port: port, Path: h.Path, NIC: i, Container: entry.Name,
	}
	if n.Address.IsValid() {
		ch.Address = "http://" + netip.AddrPortFrom(n.Address, port).String() + h.Path
	} else {
		ch.Address, ch.Unknown = "-", noNICAddress(t, n)
	}
	return ch
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

func noAppAddress(t Target, c Container) string {
	switch {
	case c.State == "missing":
		return fmt.Sprintf("container %s does not exist", c.Name)
	case c.State == "unknown":
		return fmt.Sprintf("podman's state of %s is unknown", c.Name)
	case !c.Running():
		return fmt.Sprintf("container %s is %s", c.Name, c.State)
	}
	return fmt.Sprintf("container %s has no address on %s", c.Name, t.appNetwork())
}

// appNetwork names the network t's containers have their addresses on:
// its app's podman network.
func (t Target) appNetwork() string {
	if t.App == nil {
		return "its network"
	}
	return t.App.Network
}

// gatewayOf is the app network's gateway as c, or failing that any container, sees it.
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
