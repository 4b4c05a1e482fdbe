package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"vmnet/internal/lab"
	"vmnet/internal/safe"
	"vmnet/internal/vm"
)

// Lab checks the whole lab l: it describes every node that is running (a
// node's domain is named after it), asks podman about the app's
// containers on each node with an app, plans LabMatrix, runs each
// node's checks with that node's Target and Guest, all nodes at once, and
// diagnoses every failure. A node that is not running fails the checks
// that need it, each saying so; it does not stop the run. The report's VM
// is the lab's name and its Matrix MatrixLab; its results are the derived
// checks node by node in file order (then those of the host alone), then
// the declared checks in file order. The error is for a lab that cannot be
// checked at all; failed checks are in the report (Report.Err).
func Lab(ctx context.Context, e vm.Env, l lab.Lab, opt Options) (*Report, error) {
	started := time.Now()
	infos, err := vm.List(e)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, in := range infos {
		running[in.Name] = in.State == "running"
	}
	nodes, err := describeNodes(e, l, running)
	if err != nil {
		return nil, err
	}
	if err := describeHostContainers(ctx, e, l, nodes); err != nil {
		return nil, err
	}
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, "checking lab %s: %d of %d nodes running\n", l.Name, len(nodes), len(allNodes(l)))
	}
	host := KernelHost{K: e.Bridges}
	rep := converge(ctx, e.Progress, l.Name, opt.Converge, convergeWait, started, func() *Report { return RunLab(ctx, host, l, nodes, opt) })
	rep.Started, rep.Duration = started, time.Since(started)
	return rep, nil
}

// convergeWait is the pause between two rounds of a converging run.
const convergeWait = 2 * time.Second

// converge runs the lab's matrix, and while some check fails and
// opt.Converge has not passed since started, runs it again: a lab that was
// just brought up may need seconds more (a lease, a neighbour entry, a
// container's first answer). Each round is the whole matrix, so a negative
// check is judged again with its control. The report says how many rounds
// it took and, when it went green, after how long.
func converge(ctx context.Context, progress io.Writer, name string, until, wait time.Duration, started time.Time, run func() *Report) *Report {
	for round := 1; ; round++ {
		rep := run()
		rep.Rounds = round
		if rep.Failed() == 0 {
			rep.ConvergedAfter = time.Since(started)
			return rep
		}
		if time.Since(started)+wait >= until || ctx.Err() != nil {
			return rep
		}
		if progress != nil {
			fmt.Fprintf(progress, "checking lab %s: %d of %d checks failed in round %d; trying again (until %s)\n",
				name, rep.Failed(), len(rep.Results), round, until)
		}
		select {
		case <-ctx.Done():
			return rep
		case <-time.After(wait):
		}
	}
}

// describeNodes describes the running nodes, all at once (a node without
// a guest agent may take a while to say so).
func describeNodes(e vm.Env, l lab.Lab, running map[string]bool) (map[string]LabNode, error) {
	targets := make([]Target, len(l.NodeOrder))
	errs := make([]error, len(l.NodeOrder))
	var wg sync.WaitGroup
	for i, name := range l.NodeOrder {
		if !running[name] {
			continue
		}
		safe.Go(&wg, "describe "+name, func() (err error) {
			targets[i], err = Describe(e, name)
			return err
		}, func(err error) { errs[i] = err })
	}
	wg.Wait()
	nodes := map[string]LabNode{}
	for i, name := range l.NodeOrder {
		switch {
		case errs[i] != nil:
			return nil, fmt.Errorf("lab %s: node %s: %w", l.Name, name, errs[i])
		case running[name]:
			nodes[name] = LabNode{Target: targets[i], Guest: &VMGuest{Env: e, Name: name, Serial: !targets[i].Agent}}
		}
	}
	return nodes, nil
}

// LabNode is a running node as RunLab uses it.
type LabNode struct {
	Target Target // from Describe; RunLab fills in App and Containers for a node with an app
	Guest  Guest
}

// RunLab is Lab after the nodes are described: it discovers the app
// nodes' containers, plans the lab (LabMatrix) and runs every node's
// checks at once, each node's guest commands bounded by its own
// opt.Parallel (1 without a guest agent). nodes holds the running ones.
func RunLab(ctx context.Context, host Host, l lab.Lab, nodes map[string]LabNode, opt Options) *Report {
	started := time.Now()
	nodes = discoverApps(ctx, l, nodes, opt)
	opt.peers = nodes
	targets := map[string]Target{}
	for name, n := range nodes {
		targets[name] = n.Target
	}
	p := planLab(l, targets, opt.Nodes)
	results := map[string][]Result{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, run := range p.runOrder() {
		checks := p.runs[run]
		if len(checks) == 0 {
			continue
		}
		n, ok := nodes[run]
		if !ok {
			n = LabNode{Target: Target{Name: run}, Guest: noGuest{}} // HostRun, or a node that is not running
			if t, ok := p.targets[run]; ok {
				n.Target = t
			}
		}
		safe.Go(&wg, "checks of "+run, func() error {
			rs := runNode(ctx, host, n, checks, opt)
			mu.Lock()
			results[run] = rs
			mu.Unlock()
			return nil
		}, func(err error) {
			if err != nil {
				mu.Lock()
				results[run] = crashedRun(checks, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	all := p.order(results)
	requireOthers(all) // a control may be in another node's run
	return &Report{VM: l.Name, Matrix: MatrixLab, Started: started, Duration: time.Since(started), Results: all, Accel: accelOf(nodes)}
}

// accelOf is the accelerators the running nodes have, sorted and
// comma-separated: one word unless a lab's nodes were started apart with
// different --accel.
func accelOf(nodes map[string]LabNode) string {
	var types []string
	for _, n := range nodes {
		if n.Target.Accel != "" && !slices.Contains(types, n.Target.Accel) {
			types = append(types, n.Target.Accel)
		}
	}
	slices.Sort(types)
	return strings.Join(types, ",")
}

// discoverApps asks podman about the containers on every running node
// with an app or containers of its own, all nodes at once, and returns the
// nodes with their app's description, their containers and latched guests
// (the caller's map is not changed).
func discoverApps(ctx context.Context, l lab.Lab, nodes map[string]LabNode, opt Options) map[string]LabNode {
	out := map[string]LabNode{}
	for name, n := range nodes {
		n.Guest = latch(n.Guest)
		n.Target = withApp(l, name, n.Target)
		out[name] = n
	}
	found := make([][]Container, len(l.NodeOrder))
	var wg sync.WaitGroup
	for i, name := range l.NodeOrder {
		n, ok := out[name]
		names := l.Nodes[name].AllContainers()
		if !ok || len(names) == 0 {
			continue
		}
		network := "" // a node's own containers have the lab file's addresses (withLabContainers)
		if n.Target.App != nil {
			network = n.Target.App.Network
		}
		safe.Go(&wg, "containers of "+name, func() error {
			found[i] = Discover(ctx, n.Guest, names, network, opt.withDefaults(n.Target).ExecTimeout)
			return nil
		}, nil)
	}
	wg.Wait()
	for i, name := range l.NodeOrder {
		if n, ok := out[name]; ok && found[i] != nil {
			n.Target.Containers = found[i]
			out[name] = n
		}
	}
	return out
}

// runNode runs one node's checks: those that need a node that is not
// running fail at once, the rest go to Run with the node's target and guest.
func runNode(ctx context.Context, host Host, n LabNode, checks []Check, opt Options) []Result {
	out := make([]Result, len(checks))
	var live []Check
	var at []int
	for i, c := range checks {
		if c.down != "" {
			out[i] = Result{Check: c, Actual: c.Unknown, Hop: c.down, Cause: CauseNotRunning,
				Evidence: []string{fmt.Sprintf("vmnet finds no running domain %s", c.down)}}
			continue
		}
		live, at = append(live, c), append(at, i)
	}
	if len(live) > 0 {
		for j, r := range Run(ctx, host, n.Guest, n.Target, live, opt) {
			out[at[j]] = r
		}
	}
	return out
}

// crashedRun fails every check of a run that panicked.
func crashedRun(checks []Check, err error) []Result {
	out := make([]Result, len(checks))
	for i, c := range checks {
		out[i] = Result{Check: c, Actual: err.Error(), Cause: CauseUnknown}
	}
	return out
}

// order puts the runs' results in report order: each run's own checks in
// run order, then the declared checks in file order.
func (p *labPlan) order(results map[string][]Result) []Result {
	var own, declared []Result
	for _, run := range p.runOrder() {
		for _, r := range results[run] {
			if _, ok := p.declared[r.ID]; ok {
				declared = append(declared, r)
			} else {
				own = append(own, r)
			}
		}
	}
	sort.SliceStable(declared, func(i, j int) bool { return p.declared[declared[i].ID] < p.declared[declared[j].ID] })
	return append(own, declared...)
}

// noGuest is the guest of the host's own run, which has no VM.
type noGuest struct{}

// Exec refuses: a check of the host's own run never runs in a guest.
func (noGuest) Exec(context.Context, []string, time.Duration) (Output, error) {
	return Output{}, errors.New("no guest: this check runs on the host")
}
