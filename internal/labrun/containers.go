package labrun

import (
	"context"
	"fmt"
	"time"

	"vmnet/internal/containers"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// upContainers starts node's own containers in its guest once the node is
// up (containers.Plan, through the guest agent), and returns what changed,
// each line naming the node. A node without containers changes nothing.
func upContainers(ctx context.Context, e vm.Env, l lab.Lab, node string) ([]string, error) {
	steps := containers.Plan(l, node)
	if len(steps) == 0 {
		return nil, nil
	}
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "containers: %d steps (networks, pods, firewall, containers)\n", len(steps))
	}
	changed, err := containers.Ensure(ctx, guest{e: e, name: node}, steps)
	out := make([]string, len(changed))
	for i, c := range changed {
		out[i] = "node " + node + ": " + c
		if e.Progress != nil {
			fmt.Fprintf(e.Progress, "containers: %s\n", c)
		}
	}
	if err != nil {
		return out, fmt.Errorf("containers of node %s: %w", node, err)
	}
	return out, nil
}

// guest runs commands in a node's guest with vm.Exec.
type guest struct {
	e    vm.Env
	name string
}

var _ containers.Guest = guest{}

// Exec runs argv in the guest through its agent.
func (g guest) Exec(ctx context.Context, argv []string, timeout time.Duration) (string, string, int, error) {
	stdout, stderr, code, err := vm.Exec(ctx, g.e, g.name, argv, timeout)
	return string(stdout), string(stderr), code, err
}
