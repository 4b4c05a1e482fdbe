package perf

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"vmnet/internal/errs"
	"vmnet/internal/vm"
)

// ContainerSide runs iperf3 in a container of a node, through podman exec
// in the node's guest (the container's rootfs has iperf3).
type ContainerSide struct {
	Guest GuestSide // the container's node
	Name  string    // the container's name
	// HostNetwork is a container in the VM's own network namespace, behind
	// the guest's firewall: its server's port is opened there.
	HostNetwork bool
}

// Iperf runs iperf3 args in the container.
func (c ContainerSide) Iperf(ctx context.Context, args []string, timeout time.Duration) ([]byte, error) {
	argv := append([]string{"podman", "exec", c.Name, "iperf3"}, args...)
	out, _, code, err := vm.Exec(ctx, c.Guest.Env, c.Guest.Node, argv, timeout)
	if err != nil {
		return nil, fmt.Errorf("run iperf3 in container %s/%s: %w", c.Guest.Node, c.Name, err)
	}
	if code == exitNotFound {
		return nil, c.missing()
	}
	return out, nil
}

// missing is the error for a container without iperf3.
func (c ContainerSide) missing() error {
	return errs.WithHint(fmt.Errorf("container %s/%s has no iperf3: the container rootfs of image %s lacks Debian's iperf3 package", c.Guest.Node, c.Name, c.Guest.Image),
		"the capstone image's rootfs has it since iperf3 is in templates/capstone/container-packages.txt: rebuild it with 'vmnet image build capstone' (outside any sandbox)")
}

// Serve stops a server an interrupted run left in the container, opens
// the port in the guest's firewall for a host-network container, and
// starts iperf3 -s there with podman exec -d; stop kills it by its pid file
// (inside the container) and closes the port again.
func (c ContainerSide) Serve(ctx context.Context, port int) (func() error, error) {
	pid, p := pidFile(port), strconv.Itoa(port)
	open, shut := ":", ":"
	if c.HostNetwork {
		open, shut = firewallOpen(port), firewallClose(port)
	}
	script := `podman exec "$1" sh -c 'command -v iperf3 >/dev/null || exit 127; [ -f "$1" ] && kill $(cat "$1") 2>/dev/null; rm -f "$1"' vmnet-perf "$2" || exit $?; ` +
		open + `; podman exec -d "$1" iperf3 -s -p "$3" -I "$2" >/dev/null`
	out, _, code, err := vm.Exec(ctx, c.Guest.Env, c.Guest.Node, []string{"sh", "-c", script, "vmnet-perf", c.Name, pid, p}, 30*time.Second)
	switch {
	case err != nil:
		return nil, err
	case code == exitNotFound:
		return nil, c.missing()
	case code != 0:
		return nil, fmt.Errorf("podman exec -d %s iperf3 -s exited %d: %s", c.Name, code, clip(out))
	}
	return func() error {
		stop := `podman exec "$1" sh -c 'kill $(cat "$1") && rm -f "$1"' vmnet-perf "$2"; ` + shut
		_, _, _, err := vm.Exec(context.Background(), c.Guest.Env, c.Guest.Node, []string{"sh", "-c", stop, "vmnet-perf", c.Name, pid}, 30*time.Second)
		return err
	}, nil
}

// firewallGuard runs cmds only in a guest with vmnet's firewall (the
// capstone image's table inet vmnet, which drops what it does not let in).
func firewallGuard(cmds string) string {
	return "if command -v nft >/dev/null 2>&1 && nft list chain inet vmnet input >/dev/null 2>&1; then " + cmds + "; fi"
}

// firewallComment marks the rule perf adds for port.
func firewallComment(port int) string { return "vmnet-perf " + strconv.Itoa(port) }

// firewallOpen is a shell command that lets TCP and UDP to port in (after
// removing a rule an interrupted run left), in a guest with vmnet's
// firewall; nothing elsewhere.
func firewallOpen(port int) string {
	return firewallGuard(deleteRules(port) + fmt.Sprintf(`; nft insert rule inet vmnet input meta l4proto '{ tcp, udp }' th dport %d accept comment '"%s"'`, port, firewallComment(port)))
}

// firewallClose is a shell command that removes firewallOpen's rule.
func firewallClose(port int) string { return firewallGuard(deleteRules(port)) }

// deleteRules is a shell command that deletes port's perf rules by handle.
func deleteRules(port int) string {
	pattern := `s/.*comment "` + firewallComment(port) + `" # handle \([0-9]*\)$/\1/p`
	return `for h in $(nft -a list chain inet vmnet input | sed -n '` + pattern + `'); do nft delete rule inet vmnet input handle "$h"; done`
}
