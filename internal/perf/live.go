package perf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// LabEnv is the Env of lab l running under e: the host runs iperf3 itself
// (in the namespace vmnet runs in, where libvirtd runs), a node runs it
// through vm.Exec (the guest agent, or tiny's serial console), a container
// through podman exec in its node's guest. A node's address is its static
// one from the file, or the one libvirt saw it get (DHCP) when the file
// gives none; a container's is the one vmnet gave it (lab.ContainerAddrs),
// a host-network container's its node's.
func LabEnv(e vm.Env, l lab.Lab) (Env, error) {
	infos, err := vm.List(e)
	if err != nil {
		return Env{}, err
	}
	live := map[string]vm.Info{}
	for _, in := range infos {
		if in.Lab == l.Name {
			live[in.Name] = in
		}
	}
	return Env{
		Side: func(ep Endpoint) (Side, error) {
			if ep.Kind == KindHost {
				return HostSide{}, nil
			}
			if in, ok := live[ep.Node]; !ok || in.State != "running" {
				return nil, notRunning(l.Name, ep.Node)
			}
			g := GuestSide{Env: e, Node: ep.Node, Image: l.Nodes[ep.Node].Image}
			if c, ok := containerOf(l, ep); ok {
				return ContainerSide{Guest: g, Name: ep.Container, HostNetwork: c.Mode() == lab.ModeHost}, nil
			}
			return g, nil
		},
		Addr:     func(ep Endpoint, net string) (netip.Addr, error) { return labAddr(l, live, ep, net) },
		Progress: e.Progress,
	}, nil
}

// notRunning is the error for a node that is not up.
func notRunning(labName, node string) error {
	return errs.WithHint(fmt.Errorf("node %s of lab %s is not running", node, labName),
		"bring it up with 'vmnet lab up "+labName+"' ('vmnet lab inspect "+labName+"' shows its state)")
}

// labAddr is an endpoint's address on net: the host's from the network,
// a node's static one from the file, else the one it has now.
func labAddr(l lab.Lab, live map[string]vm.Info, ep Endpoint, net string) (netip.Addr, error) {
	if ep.Kind == KindHost {
		if a := l.Networks[net].HostAddr(); a.IsValid() {
			return a, nil
		}
		return netip.Addr{}, fmt.Errorf("the host has no address on %s network %s", l.Networks[net].Kind, net)
	}
	if c, ok := containerOf(l, ep); ok {
		if c.Mode() == lab.ModeHost {
			return labAddr(l, live, VM(ep.Node), net)
		}
		if a := l.ContainerAddrs(ep.Node)[ep.Container]; a.IsValid() {
			return a, nil
		}
		return netip.Addr{}, fmt.Errorf("container %s has no address of its own (network mode %s)", ep.Name(), c.Mode())
	}
	idx := nicIndex(l.Nodes[ep.Node], net)
	if idx < 0 {
		return netip.Addr{}, fmt.Errorf("node %s has no NIC on %s", ep.Node, net)
	}
	if a := l.Nodes[ep.Node].NICs[idx].Address; a.IsValid() {
		return a.Addr(), nil
	}
	in, ok := live[ep.Node]
	if !ok {
		return netip.Addr{}, notRunning(l.Name, ep.Node)
	}
	for _, nic := range in.NICs {
		if a, err := netip.ParseAddr(nic.Address); nic.Index == idx && err == nil {
			return a, nil
		}
	}
	return netip.Addr{}, errs.WithHint(fmt.Errorf("node %s has no address on %s (eth%d) yet", ep.Node, net, idx),
		"a DHCP lease may still be coming: 'vmnet lab inspect "+l.Name+"' shows the addresses")
}

// HostSide runs iperf3 on the host, in vmnet's own network namespace.
type HostSide struct{}

// missingHost is the error for a host without iperf3.
func missingHost(err error) error {
	return errs.WithHint(fmt.Errorf("run iperf3 on the host: %w", err), "install Debian's iperf3 package (scripts/deps.sh does)")
}

// Iperf runs iperf3 args on the host; an exit status other than 0 is
// left to the JSON to explain.
func (HostSide) Iperf(ctx context.Context, args []string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "iperf3", args...).Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out, nil
	case err != nil:
		return nil, missingHost(err)
	}
	return out, nil
}

// Serve starts iperf3 -s on the host as a child of vmnet; stop kills it.
func (HostSide) Serve(ctx context.Context, port int) (func() error, error) {
	cmd := exec.Command("iperf3", "-s", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		return nil, missingHost(err)
	}
	return func() error {
		cmd.Process.Kill()
		cmd.Wait() // killed: its error says so
		return nil
	}, nil
}

// GuestSide runs iperf3 in a node's guest through vm.Exec.
type GuestSide struct {
	Env   vm.Env
	Node  string
	Image string // the node's image, for the error when it has no iperf3
}

// exitNotFound is the shell's exit status for a command it cannot find.
const exitNotFound = 127

// iperf3 is the command that runs iperf3 in the guest: its own, or, in
// an image with a container rootfs built in (capstone, whose system has no
// iperf3), the rootfs's binary with the guest's own libraries first and
// the rootfs's for what the guest lacks (libiperf, libsctp).
func (g GuestSide) iperf3() []string {
	root := lab.ContainerImages[g.Image]
	if root == "" {
		return []string{"iperf3"}
	}
	return []string{"env", "LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:" + root + "/usr/lib/x86_64-linux-gnu", root + "/usr/bin/iperf3"}
}

// Iperf runs iperf3 args in the guest.
func (g GuestSide) Iperf(ctx context.Context, args []string, timeout time.Duration) ([]byte, error) {
	out, _, code, err := vm.Exec(ctx, g.Env, g.Node, append(g.iperf3(), args...), timeout)
	if err != nil {
		return nil, fmt.Errorf("run iperf3 in %s: %w", g.Node, err)
	}
	if code == exitNotFound {
		return nil, g.missing()
	}
	return out, nil
}

// missing is the error for a guest without iperf3.
func (g GuestSide) missing() error {
	if root := lab.ContainerImages[g.Image]; root != "" {
		return errs.WithHint(fmt.Errorf("node %s has no iperf3: its image %s has none in its container rootfs %s", g.Node, g.Image, root),
			"rebuild the image with 'vmnet image build "+g.Image+"' (outside any sandbox): its container-packages.txt lists iperf3")
	}
	return errs.WithHint(fmt.Errorf("node %s has no iperf3: its image %s lacks Debian's iperf3 package", g.Node, g.Image),
		"the tiny image has it: rebuild it with 'vmnet image build tiny' (outside any sandbox) if it is older")
}

// pidFile is where a guest's iperf3 server writes its pid.
func pidFile(port int) string { return "/tmp/vmnet-perf-" + strconv.Itoa(port) + ".pid" }

// Serve starts iperf3 -s -D in the guest, first stopping one an
// interrupted run left, and opens its port in the guest's firewall if it
// has vmnet's (capstone's drops everything else inbound); stop kills it by
// its pid file and closes the port again. A daemon, because a serial
// console runs one command at a time.
func (g GuestSide) Serve(ctx context.Context, port int) (func() error, error) {
	pid := pidFile(port)
	script := fmt.Sprintf("[ -f %[1]s ] && kill $(cat %[1]s) 2>/dev/null; rm -f %[1]s; %[3]s; %[4]s -s -D -p %[2]d -I %[1]s",
		pid, port, firewallOpen(port), strings.Join(g.iperf3(), " "))
	out, _, code, err := vm.Exec(ctx, g.Env, g.Node, []string{"sh", "-c", script}, 30*time.Second)
	switch {
	case err != nil:
		return nil, err
	case code == exitNotFound:
		return nil, g.missing()
	case code != 0:
		return nil, fmt.Errorf("iperf3 -s -D exited %d: %s", code, clip(out))
	}
	return func() error {
		// Not ctx: a run cut short (Ctrl-C) still stops its server.
		_, _, _, err := vm.Exec(context.Background(), g.Env, g.Node, []string{"sh", "-c", "kill $(cat " + pid + ") && rm -f " + pid + "; " + firewallClose(port)}, 30*time.Second)
		return err
	}, nil
}
