package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"vmnet/internal/hostctr"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// allNodes is the lab's VM nodes, then its host containers (nodes of kind
// container), each in file order: a host container is checked as a node
// with one NIC, eth0 on its bridge.
func allNodes(l lab.Lab) []string { return append(slices.Clone(l.NodeOrder), l.HostOrder...) }

// labNICs is node's NICs in the lab file: a VM's, or a host container's
// one interface on its network.
func labNICs(l lab.Lab, node string) []lab.NIC {
	if c, ok := l.HostContainers[node]; ok {
		return []lab.NIC{{Net: c.Network, Address: c.Address}}
	}
	return l.Nodes[node].NICs
}

// hostContainerTarget describes a host container from the lab file: eth0
// with its static address on its bridge, the host's address there.
func hostContainerTarget(l lab.Lab, name string) Target {
	c := l.HostContainers[name]
	net := l.Networks[c.Network]
	return Target{Name: name, Spec: "container", Agent: true, NICs: []NIC{{Index: 0, Guest: hostctr.Guest,
		Address: c.Address.Addr(), Prefix: c.Address.Bits(), Source: "static", Bridge: c.Network,
		Host: net.HostAddr(), HostPrefix: net.Subnet().Bits()}}}
}

// describeHostContainers adds the lab's running host containers to nodes,
// each with a guest that runs commands in its network namespace.
func describeHostContainers(ctx context.Context, e vm.Env, l lab.Lab, nodes map[string]LabNode) error {
	if len(l.HostOrder) == 0 {
		return nil
	}
	infos, err := hostctr.Podman{StateDir: e.StateDir, Lab: l.Name}.List(ctx)
	if err != nil {
		return fmt.Errorf("lab %s: host containers: %w", l.Name, err)
	}
	for _, in := range infos {
		if l.IsHostContainer(in.Node) && in.Pid > 0 {
			nodes[in.Node] = LabNode{Target: hostContainerTarget(l, in.Node), Guest: NetnsGuest{Pid: in.Pid}}
		}
	}
	return nil
}

// NetnsGuest runs a check's commands in a host container's network
// namespace with the host's own tools (nsenter -t PID -n), so a probe does
// not depend on what the container's rootfs holds.
type NetnsGuest struct{ Pid int }

var _ Guest = NetnsGuest{}

// Exec runs argv in the namespace: nsenter -t PID -n -- ARGV.
func (g NetnsGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(g.Pid), "-n", "--"}, argv...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return Output{Stdout: stdout.String(), Stderr: stderr.String(), Code: ee.ExitCode()}, nil
	}
	if err != nil {
		return Output{}, fmt.Errorf("nsenter -t %d -n %s: %w", g.Pid, argv[0], err)
	}
	return Output{Stdout: stdout.String(), Stderr: stderr.String()}, nil
}

// hostContainerMatrix is a host container's host ↔ container pings
// (BasicMatrix on its one NIC). A macvlan child of the bridge never
// reaches the bridge's own address, nor the other way round (a macvlan
// parent does not receive its children's frames): both pings are expected
// unanswered, and count only when the container's pings to the VMs on its
// bridge, the controls, pass.
func (p *labPlan) hostContainerMatrix(name string, t Target) []Check {
	out := BasicMatrix(t)
	c := p.l.HostContainers[name]
	if c.Mode != lab.HostMacvlan {
		return out
	}
	var controls []string
	for _, b := range p.l.NodeOrder {
		if p.nicOn(b, c.Network) >= 0 {
			controls = append(controls, "ping:"+name+"->"+b+":"+c.Network)
		}
	}
	for i := range out {
		out[i].Want, out[i].Expect, out[i].Mode, out[i].Requires = WantNoReply, string(WantNoReply), lab.ModeMacvlan, controls
	}
	return out
}

// hostMacvlanPath is lab.ModeMacvlan for a declared check between the host
// and a macvlan host container (either way), which the mode rules out;
// "" for any other path.
func (p *labPlan) hostMacvlanPath(src, dst endpoint, from Place) string {
	isMacvlan := func(node string) bool {
		c, ok := p.l.HostContainers[node]
		return ok && c.Mode == lab.HostMacvlan
	}
	switch {
	case from.Kind == OnHost && isMacvlan(dst.node):
		return lab.ModeMacvlan
	case isMacvlan(src.node) && dst.node == "" && dst.addr == p.l.HostGateway(src.node):
		return lab.ModeMacvlan
	}
	return ""
}
