package check

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirtxml"

	"vmnet/internal/agent"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/network"
	"vmnet/internal/virt"
	"vmnet/internal/vm"
)

// VM checks the running vmnet VM name with the named matrix (auto, basic or
// the name of an app in opt.Apps): it describes the VM, asks podman about
// the app's containers when the matrix is an app's, runs the matrix from the namespace e.Bridges
// works in, and diagnoses every failure. The error is for a VM that cannot
// be checked at all; failed checks are in the report (Report.Err).
func VM(ctx context.Context, e vm.Env, name, matrix string, opt Options) (*Report, error) {
	t, err := Describe(e, name)
	if err != nil {
		return nil, err
	}
	matrix, err = ChooseMatrix(matrix, t, opt.Apps)
	if err != nil {
		return nil, err
	}
	host := KernelHost{K: e.Bridges}
	guest := latch(&VMGuest{Env: e, Name: name, Serial: !t.Agent})
	started := time.Now()
	if a, ok := opt.Apps.Lookup(matrix); ok {
		t.App = &a
		t.Containers = Discover(ctx, guest, a.ContainerNames(), a.Network, opt.withDefaults(t).ExecTimeout)
	}
	checks, err := Matrix(matrix, t, opt.Apps)
	if err != nil {
		return nil, err
	}
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "checking %s: %d checks (%s matrix)\n", name, len(checks), matrix)
	}
	results := Run(ctx, host, guest, t, checks, opt)
	return &Report{VM: name, Matrix: matrix, Started: started, Duration: time.Since(started), Results: results, Accel: t.Accel}, nil
}

// VMGuest is the real Guest: vm.Exec, through the QEMU guest agent or the
// serial console.
type VMGuest struct {
	Env  vm.Env
	Name string
	// Serial makes commands wait for each other: the serial console is one
	// line, and two sessions on it would cut each other off.
	Serial bool

	mu sync.Mutex
}

var _ Guest = (*VMGuest)(nil)

// Exec runs argv in the guest.
func (g *VMGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	if g.Serial {
		g.mu.Lock()
		defer g.mu.Unlock()
	}
	stdout, stderr, code, err := vm.Exec(ctx, g.Env, g.Name, argv, timeout)
	return Output{Stdout: string(stdout), Stderr: string(stderr), Code: code}, err
}

// Describe reads what the checks need to know about VM name: its NICs with
// their addresses, host bridges, taps and the host's address on each link,
// its spec name, and whether its guest agent answers.
func Describe(e vm.Env, name string) (Target, error) {
	infos, err := vm.List(e)
	if err != nil {
		return Target{}, err
	}
	var info *vm.Info
	for i := range infos {
		if infos[i].Name == name {
			info = &infos[i]
		}
	}
	switch {
	case info == nil:
		return Target{}, errs.WithHint(fmt.Errorf("VM %q does not exist", name), "'vmnet vm list' shows the VMs; 'vmnet vm up "+name+"' makes it")
	case info.Owner != domain.Owner:
		return Target{}, vm.Foreign(name)
	case info.State != "running":
		return Target{}, errs.WithHint(fmt.Errorf("VM %q is %s, not running", name, info.State), "start it with 'vmnet vm up "+name+"'")
	}
	dom, err := e.Conn.LookupDomain(name)
	if err != nil {
		return Target{}, fmt.Errorf("look up domain %q: %s", name, virt.Message(err))
	}
	defer dom.Free()
	x, err := dom.XMLDesc(0)
	if err != nil {
		return Target{}, fmt.Errorf("read the live XML of %q: %s", name, virt.Message(err))
	}
	agentErr := agent.New(dom).Ping()
	nets, err := e.Conn.Networks()
	if err != nil {
		return Target{}, err
	}
	host := KernelHost{K: e.Bridges}
	addrs := func(link string) []netip.Prefix {
		l, err := host.Link(link)
		if err != nil {
			return nil
		}
		return l.Addrs
	}
	return describeFrom(*info, x, nets, addrs, agentErr == nil), nil
}

// describeFrom is Describe's pure part.
func describeFrom(info vm.Info, domainXML string, nets []network.Info, hostAddrs func(link string) []netip.Prefix, agent bool) Target {
	t := Target{Name: info.Name, Agent: agent}
	if m, ok := domain.ParseMetadata(domainXML); ok {
		t.Spec = m.Spec
	}
	taps := map[string]string{}
	var d libvirtxml.Domain
	if d.Unmarshal(domainXML) == nil {
		t.Accel = d.Type
	}
	if d.Devices != nil {
		for _, ifc := range d.Devices.Interfaces {
			if ifc.MAC != nil && ifc.Target != nil {
				taps[strings.ToLower(ifc.MAC.Address)] = ifc.Target.Dev
			}
		}
	}
	byNet := map[string]network.Info{}
	for _, n := range nets {
		byNet[n.Name] = n
	}
	for _, ni := range info.NICs {
		n := NIC{Index: ni.Index, Guest: fmt.Sprintf("eth%d", ni.Index), Network: ni.Network, Bridge: ni.Bridge,
			MAC: strings.ToLower(ni.MAC), Tap: taps[strings.ToLower(ni.MAC)], Source: ni.Source}
		n.Address, _ = netip.ParseAddr(ni.Address)
		if ni.Network != "" {
			ln := byNet[ni.Network]
			n.Bridge = ln.Bridge
			n.Host, _ = netip.ParseAddr(ln.Gateway)
			if p, err := netip.ParsePrefix(ln.CIDR); err == nil {
				n.Prefix, n.HostPrefix = p.Bits(), p.Bits()
			}
		} else if ni.Parent != "" {
			n.Parent, n.Mode = ni.Parent, ni.Mode
			n.Host, n.HostPrefix = parentAddress(hostAddrs(ni.Parent), n.Address)
		} else if n.Bridge != "" {
			n.Host, n.HostPrefix = hostAddress(hostAddrs(n.Bridge), n.Address)
			if n.HostPrefix > 0 && n.Address.IsValid() {
				n.Prefix = n.HostPrefix
			}
		}
		t.NICs = append(t.NICs, n)
	}
	return t
}

// hostAddress picks the bridge's IPv4 address in the VM's subnet, or its
// first IPv4 address.
func hostAddress(ps []netip.Prefix, vmAddr netip.Addr) (netip.Addr, int) {
	for _, p := range ps {
		if p.Addr().Is4() && vmAddr.IsValid() && p.Masked().Contains(vmAddr) {
			return p.Addr(), p.Bits()
		}
	}
	for _, p := range ps {
		if p.Addr().Is4() {
			return p.Addr(), p.Bits()
		}
	}
	return netip.Addr{}, 0
}
