package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/agent"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/network"
	"vmnet/internal/virt"
)

// metadata reads vmnet's ownership record from a defined domain.
func metadata(dom Domain) (domain.Meta, bool, error) {
	x, err := dom.XMLDesc(libvirt.DOMAIN_XML_INACTIVE)
	if err != nil {
		return domain.Meta{}, false, virt.Err("read domain XML", err)
	}
	m, ok := domain.ParseMetadata(x)
	return m, ok, nil
}

// macsIn lists the NIC MACs of a domain's XML.
func macsIn(x string) []string {
	var d libvirtxml.Domain
	if d.Unmarshal(x) != nil || d.Devices == nil {
		return nil
	}
	var out []string
	for _, i := range d.Devices.Interfaces {
		if i.MAC != nil {
			out = append(out, strings.ToLower(i.MAC.Address))
		}
	}
	return out
}

// networkInfo finds a libvirt network's subnet and bridge.
func networkInfo(conn Libvirt, name string) (network.Info, error) {
	infos, err := conn.Networks()
	if err != nil {
		return network.Info{}, err
	}
	for _, in := range infos {
		if in.Name == name {
			return in, nil
		}
	}
	return network.Info{}, &network.NotFoundError{Name: name}
}

func networkCIDR(conn Libvirt, name string) (netip.Prefix, error) {
	in, err := networkInfo(conn, name)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, err := netip.ParsePrefix(in.CIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %q has no IPv4 subnet to reserve an address in", name)
	}
	return p, nil
}

// removeLease releases a guest's lease in the network's dnsmasq, as if the
// guest had sent DHCPRELEASE (dhcp_release from dnsmasq-utils), so a removed
// VM leaves no lease behind. Best effort: a lease also expires by itself.
func removeLease(conn Libvirt, net, mac string) {
	leases, err := conn.DHCPLeases(net)
	if err != nil {
		return
	}
	tool, err := exec.LookPath("dhcp_release")
	if err != nil {
		return
	}
	released := false
	for _, l := range leases {
		if !strings.EqualFold(l.Mac, mac) || l.Type != libvirt.IP_ADDR_TYPE_IPV4 {
			continue
		}
		// dnsmasq matches the lease by MAC and client id: the guest's own
		// (01:MAC from busybox, a DUID-based one from systemd-networkd).
		args := []string{l.Iface, l.IPaddr, mac}
		if l.Clientid != "" {
			args = append(args, l.Clientid)
		}
		exec.Command(tool, args...).Run()
		released = true
	}
	if !released {
		return
	}
	// dnsmasq updates libvirt's lease list through its helper script: wait for it briefly.
	for i := 0; i < 20; i++ {
		if l, err := conn.Leases(net); err != nil || l[strings.ToLower(mac)] == (netip.Addr{}) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nicInfo describes a VM's NICs from its record and the networks' leases.
func nicInfo(conn Libvirt, dir string) ([]NICInfo, error) {
	rec, ok, err := readRecord(dir)
	if err != nil || !ok {
		return nil, err
	}
	return nicsOf(conn, rec), nil
}

func nicsOf(conn Libvirt, rec record) []NICInfo {
	leases := map[string]map[string]netip.Addr{}
	var out []NICInfo
	for i, n := range rec.NICs {
		info := NICInfo{Index: i, Network: n.Network, Bridge: n.Bridge, Parent: n.Parent, Mode: n.Mode, MAC: n.MAC}
		switch {
		case n.Static.IsValid():
			info.Address, info.Source = n.Static.Addr().String(), "static"
		case n.Network != "":
			if _, seen := leases[n.Network]; !seen {
				leases[n.Network], _ = conn.Leases(n.Network)
			}
			if a, ok := leases[n.Network][strings.ToLower(n.MAC)]; ok {
				info.Address, info.Source = a.String(), "lease"
			} else if n.Reserved.IsValid() {
				info.Address, info.Source = n.Reserved.String(), "reservation"
			}
		}
		out = append(out, info)
	}
	return out
}

// ReadyError says the guest did not become ready, what vmnet waited for,
// and what the guest last printed.
type ReadyError struct {
	Name    string
	WaitFor string
	Reason  string // "timed out after 2m0s", "the guest stopped"
	Tail    string // last lines of the serial console
}

func (e *ReadyError) Error() string {
	tail := e.Tail
	if tail == "" {
		tail = "(the console is empty)"
	}
	return fmt.Sprintf("VM %q was not ready: waited for %s, %s; last console lines:\n%s", e.Name, e.WaitFor, e.Reason, tail)
}

// Hint tells the user where to look.
func (e *ReadyError) Hint() string {
	return fmt.Sprintf("see the whole console with 'vmnet vm console %s'; raise 'timeout' in the spec if the guest is only slow", e.Name)
}

// waitReady waits until the guest shows the readiness the plan asks for.
func waitReady(ctx context.Context, e Env, dom Domain, plan domain.Plan) error {
	what := readyText(plan)
	e.say("waiting for %s (at most %s)", what, plan.Timeout)
	ctx, cancel := context.WithTimeout(ctx, plan.Timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	fail := func(reason string) error {
		return &ReadyError{Name: plan.Name, WaitFor: what, Reason: reason, Tail: consoleTail(plan.ConsoleLog, 15)}
	}
	for {
		ok, err := isReady(e.Conn, dom, plan)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if active, err := dom.IsActive(); err == nil && !active {
			return fail("the guest stopped")
		} else if virt.IsDaemonGone(err) {
			return virt.Err(fmt.Sprintf("read state of %q", plan.Name), err) // waiting on is pointless
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fail(fmt.Sprintf("timed out after %s", plan.Timeout))
			}
			return fail("interrupted")
		case <-tick.C:
		}
	}
}

func readyText(plan domain.Plan) string {
	switch {
	case plan.Ready.Console != "":
		return fmt.Sprintf("a console line starting %q", plan.Ready.Console)
	case plan.Ready.Lease:
		return "a DHCP lease for every network NIC"
	default:
		return "the QEMU guest agent"
	}
}

func isReady(conn Libvirt, dom Domain, plan domain.Plan) (bool, error) {
	switch {
	case plan.Ready.Console != "":
		return consoleHas(plan.ConsoleLog, plan.Ready.Console), nil
	case plan.Ready.Lease:
		for _, n := range plan.NICs {
			if n.Network == "" || n.Address.IsValid() {
				continue
			}
			leases, err := conn.Leases(n.Network)
			if err != nil {
				return false, err
			}
			if _, ok := leases[strings.ToLower(n.MAC.String())]; !ok {
				return false, nil
			}
		}
		return true, nil
	default:
		return agent.New(dom).Ping() == nil, nil
	}
}

// consoleHas reports whether a line of the console log starts with marker.
func consoleHas(path, marker string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(strings.TrimLeft(sc.Text(), "\r"), marker) {
			return true
		}
	}
	return false
}

// consoleTail returns the last n lines of the console log.
func consoleTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tail(strings.ReplaceAll(string(b), "\r", ""), n)
}

// agentExec runs argv in the guest through the QEMU guest agent and returns
// its output and exit code (128+N for a command killed by signal N).
func agentExec(ctx context.Context, dom Domain, argv []string, timeout time.Duration) (stdout, stderr []byte, code int, err error) {
	r, err := agent.New(dom).Exec(ctx, argv, timeout)
	if errors.Is(err, agent.ErrUnavailable) {
		return nil, nil, 0, errs.WithHint(err,
			"the guest needs a running qemu-guest-agent (the tiny image has none; use 'vmnet vm console')")
	}
	if err != nil {
		return nil, nil, 0, err
	}
	return r.Stdout, r.Stderr, r.Code(), nil
}
