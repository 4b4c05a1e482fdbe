// Package labrun brings whole labs up and down: the lab's networks and
// bridges first (each made only when missing, and tagged with the lab's
// name), then every node's VM at once through the VM lifecycle (vm.Up),
// then the containers on the host (kind container, internal/hostctr,
// labelled with the lab's name), and on the way down everything that
// carries the lab's tag, found on the
// objects themselves, so `lab down` works after the lab file is deleted or
// edited and after an `up` that was killed at any point.
package labrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"vmnet/internal/bridge"
	"vmnet/internal/doctor"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/lab"
	"vmnet/internal/network"
	"vmnet/internal/safe"
	"vmnet/internal/vm"
	"vmnet/internal/vmspec"
)

// Options tune Up.
type Options struct {
	// Nodes brings up only these nodes (and the networks they use); empty
	// means every node.
	Nodes []string
	// Links says which link types the host's kernel makes, for host
	// containers in mode macvlan or ipvlan; nil is doctor.ProbeLinks.
	Links LinkProbe
}

// UpResult says what Up did.
type UpResult struct {
	Lab     string       `json:"lab"`
	Outcome string       `json:"outcome"` // created, changed, unchanged
	Changes []string     `json:"changes"` // the lab's networks and bridges made
	Nodes   []NodeResult `json:"nodes"`
	Seconds float64      `json:"seconds"` // from start until every node was ready
	// ChecksSeconds is how long the checks that ended up took (set by the
	// caller that ran them).
	ChecksSeconds float64 `json:"checks_seconds,omitempty"`
}

// NodeResult is one node's vm.Up.
type NodeResult struct {
	Node string `json:"node"`
	*vm.UpResult
	ReadySeconds float64 `json:"ready_seconds"`
}

// NodeError says which nodes failed to come up and why; the rest of the lab
// was rolled back to what existed before this up.
type NodeError struct {
	Lab    string
	Failed map[string]error
	Undo   []string // what the rollback removed, or could not
}

func (e *NodeError) Error() string {
	var parts []string
	for _, n := range sortedKeys(e.Failed) {
		parts = append(parts, fmt.Sprintf("node %s: %v", n, e.Failed[n]))
	}
	msg := fmt.Sprintf("lab %s: %s", e.Lab, strings.Join(parts, "; "))
	if len(e.Undo) > 0 {
		msg += "; rolled back: " + strings.Join(e.Undo, ", ")
	}
	return msg
}

// Unwrap lets errors.Is and errors.As see each node's error (ErrInvalid
// from a node's spec gives exit code 2).
func (e *NodeError) Unwrap() []error {
	var out []error
	for _, n := range sortedKeys(e.Failed) {
		out = append(out, e.Failed[n])
	}
	return out
}

// Hint says what to do next.
func (e *NodeError) Hint() string {
	for _, err := range e.Unwrap() {
		var h interface{ Hint() string }
		if errors.As(err, &h) && h.Hint() != "" {
			return h.Hint()
		}
	}
	return fmt.Sprintf("'vmnet vm console NODE' shows a node's console; 'vmnet lab down %s' removes what is left", e.Lab)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Up brings lab l up in e: it plans every selected node's spec (refusing a
// bad lab before anything changes), keeps a copy of the lab file, builds
// each image once, makes the lab's missing networks and bridges, then
// brings every node up at once. A second Up of a running lab changes
// nothing. When a node fails, what this Up made is removed again (the
// nodes it created, the networks and bridges it made) and the error names
// each failed node.
func Up(ctx context.Context, e vm.Env, l lab.Lab, opt Options) (*UpResult, error) {
	start := time.Now()
	specs, err := selectSpecs(l, opt.Nodes)
	if err != nil {
		return nil, err
	}
	if err := checkParents(e.Bridges, l, specs); err != nil {
		return nil, err
	}
	if opt.Links == nil {
		opt.Links = doctor.ProbeLinks
	}
	l = withHostContainers(l, opt.Nodes)
	if err := checkHostModes(l, opt.Links); err != nil {
		return nil, err
	}
	if err := planNodes(ctx, e, specs); err != nil {
		return nil, err
	}
	rootfs, err := hostRootfs(ctx, e, l)
	if err != nil {
		return nil, err
	}
	saved, err := saveRecord(e.StateDir, l)
	if err != nil {
		return nil, err
	}
	res := &UpResult{Lab: l.Name, Changes: []string{}}
	made, err := ensureNetworks(ctx, e, l, specs, res)
	if err != nil {
		made.run(ctx, e)
		forgetNew(e, l.Name, saved)
		return nil, err
	}
	failed := upNodes(ctx, e, l, specs, res)
	if len(failed) == 0 { // else the rollback would only remove them again
		if err := upHostContainers(ctx, e, l, rootfs, res); err != nil {
			failed[lab.NodeContainer+"s"] = err
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if len(failed) > 0 {
		err := rollback(ctx, e, l.Name, res, failed, made, saved)
		forgetNew(e, l.Name, saved)
		return nil, err
	}
	res.Outcome = outcome(res)
	return res, nil
}

// selectSpecs plans the nodes opt names (all when none), in lab order.
func selectSpecs(l lab.Lab, nodes []string) ([]vmspec.Spec, error) {
	for _, n := range nodes {
		if _, ok := l.Nodes[n]; !ok && !l.IsHostContainer(n) {
			return nil, &errs.FieldError{Field: "--node", Value: n, Problem: "is not a node of lab " + l.Name,
				Fix: "use one of: " + strings.Join(append(slices.Clone(l.NodeOrder), l.HostOrder...), ", ")}
		}
	}
	var specs []vmspec.Spec
	for _, name := range l.NodeOrder {
		if len(nodes) > 0 && !slices.Contains(nodes, name) {
			continue
		}
		s, err := l.Spec(name)
		if err != nil {
			return nil, err
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// planNodes finds (or builds, once) every image the nodes boot, one at a
// time, and plans every node's domain (pure) with it, before anything of
// the lab changes: nodes that share an image do not build it twice, and a
// node its image cannot run (ready: agent on tiny) is refused while no
// network or bridge has been made yet.
func planNodes(ctx context.Context, e vm.Env, specs []vmspec.Spec) error {
	imgs := map[string]domain.ImageInfo{}
	for _, s := range specs {
		img, ok := imgs[s.Image]
		if !ok {
			var err error
			if img, err = e.Image(ctx, s); err != nil {
				return fmt.Errorf("image %s of node %s: %w", s.Image, s.Name, err)
			}
			imgs[s.Image] = img
		}
		if _, err := domain.NewPlan(s, img, e.Accel, e.StateDir); err != nil {
			return fmt.Errorf("node %s: %w", s.Name, err)
		}
	}
	return nil
}

// made is what this Up created, newest last, for a rollback.
type made struct{ networks, bridges []string }

// run removes what this Up made, newest first, and says what it removed
// or could not.
func (m made) run(ctx context.Context, e vm.Env) []string {
	var out []string
	for _, n := range slices.Backward(m.networks) {
		if _, err := e.Conn.DeleteNetwork(n); err != nil {
			out = append(out, fmt.Sprintf("network %s left: %v", n, err))
			continue
		}
		out = append(out, "network "+n)
	}
	for _, b := range slices.Backward(m.bridges) {
		if _, err := bridge.Delete(ctx, e.Bridges, b, bridge.Options{HostID: e.HostID}); err != nil {
			out = append(out, fmt.Sprintf("bridge %s left: %v", b, err))
			continue
		}
		out = append(out, "bridge "+b)
	}
	return out
}

// ensureNetworks makes the bridges and libvirt networks the nodes use when
// they are missing, tagged with the lab's name; one that exists is used as
// it is, and stays out of the lab's (and its down's) hands.
func ensureNetworks(ctx context.Context, e vm.Env, l lab.Lab, specs []vmspec.Spec, res *UpResult) (made, error) {
	var m made
	for _, b := range l.Requires().Bridges {
		if !usedBy(b.Name, specs) && !slices.Contains(hostBridges(l), b.Name) {
			continue
		}
		if _, err := e.Bridges.LinkByName(b.Name); err == nil {
			continue
		}
		r, err := bridge.Ensure(ctx, e.Bridges, bridge.Spec{Name: b.Name, Lab: l.Name, Addresses: []netip.Prefix{b.Address}}, bridge.Options{HostID: e.HostID})
		if err != nil {
			return m, fmt.Errorf("bridge %s of lab %s: %w", b.Name, l.Name, err)
		}
		if r.Created {
			m.bridges = append(m.bridges, b.Name)
			res.Changes = append(res.Changes, fmt.Sprintf("create bridge %s (%s)", b.Name, b.Address))
		}
	}
	for _, n := range used(l.Requires().Networks, specs, func(n vmspec.NetworkReq) string { return n.Name }) {
		if active, err := e.Conn.NetworkActive(n.Name); err == nil && active {
			continue
		}
		r, err := e.Conn.EnsureNetwork(ctx, network.Spec{Name: n.Name, Mode: network.Mode(n.Mode), CIDR: n.CIDR, Lab: l.Name}, e.Routes)
		if err != nil {
			return m, fmt.Errorf("network %s of lab %s: %w", n.Name, l.Name, err)
		}
		if r.Outcome == network.Created {
			m.networks = append(m.networks, n.Name)
		}
		if r.Outcome != network.Unchanged {
			res.Changes = append(res.Changes, fmt.Sprintf("create %s network %s (%s)", n.Mode, n.Name, n.CIDR))
		}
	}
	return m, nil
}

// usedBy reports whether one of specs attaches to the network or bridge.
func usedBy(name string, specs []vmspec.Spec) bool {
	return slices.ContainsFunc(specs, func(s vmspec.Spec) bool {
		return slices.Contains(s.Networks(), name) || slices.Contains(s.Bridges(), name)
	})
}

// used keeps the requirements that one of specs' NICs attaches to.
func used[T any](all []T, specs []vmspec.Spec, nameOf func(T) string) []T {
	var out []T
	for _, r := range all {
		if slices.ContainsFunc(specs, func(s vmspec.Spec) bool {
			return slices.Contains(s.Networks(), nameOf(r)) || slices.Contains(s.Bridges(), nameOf(r))
		}) {
			out = append(out, r)
		}
	}
	return out
}

// upNodes runs vm.Up for every spec at once, then starts the node's own
// containers (upContainers); each node's progress lines carry its name.
// It returns the nodes that failed.
func upNodes(ctx context.Context, e vm.Env, l lab.Lab, specs []vmspec.Spec, res *UpResult) map[string]error {
	results := make([]NodeResult, len(specs))
	var mu sync.Mutex
	failed := atOnce(e, specNames(specs), "vm up", func(i int, ne vm.Env) error {
		r, err := vm.Up(ctx, ne, specs[i])
		if err != nil {
			return err
		}
		results[i] = NodeResult{Node: specs[i].Name, UpResult: r, ReadySeconds: r.Ready.Seconds()}
		changed, err := upContainers(ctx, ne, l, specs[i].Name)
		mu.Lock()
		res.Changes = append(res.Changes, changed...)
		mu.Unlock()
		return err
	})
	res.Nodes = append(res.Nodes, done(results)...)
	return failed
}

// atOnce runs run for every node at once, each with progress lines that
// carry the node's name, and returns the nodes whose run failed (or
// panicked) with their errors. run(i, ne) is for nodes[i].
func atOnce(e vm.Env, nodes []string, what string, run func(i int, ne vm.Env) error) map[string]error {
	failed := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := &lineWriter{w: e.Progress}
	for i, n := range nodes {
		ne := e
		ne.Progress = out.prefixed(n + ": ")
		safe.Go(&wg, what+" "+n, func() error { return run(i, ne) }, func(err error) {
			if err != nil {
				mu.Lock()
				failed[n] = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// specNames is the specs' VM names, in order.
func specNames(specs []vmspec.Spec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// done is the results of the nodes that came up, in order.
func done(results []NodeResult) []NodeResult {
	var out []NodeResult
	for _, r := range results {
		if r.UpResult != nil {
			out = append(out, r)
		}
	}
	return out
}

// rollback removes the nodes this Up created (a node that ran before stays)
// and the networks and bridges it made.
func rollback(ctx context.Context, e vm.Env, name string, res *UpResult, failed map[string]error, m made, fresh bool) error {
	ne := &NodeError{Lab: name, Failed: failed}
	// Host containers go only when the lab is new here (this up made every
	// one of them); a lab that was up before keeps the ones it had.
	if fresh {
		var dr DownResult
		if err := downHostContainers(ctx, e, name, &dr); err != nil {
			ne.Undo = append(ne.Undo, fmt.Sprintf("host containers left: %v", err))
		}
		ne.Undo = append(ne.Undo, dr.Changes...)
	}
	for _, n := range res.Nodes {
		if n.Outcome != "created" {
			continue
		}
		if _, err := vm.Down(ctx, e, n.Node); err != nil {
			ne.Undo = append(ne.Undo, fmt.Sprintf("node %s left: %v", n.Node, err))
			continue
		}
		ne.Undo = append(ne.Undo, "node "+n.Node)
	}
	ne.Undo = append(ne.Undo, m.run(ctx, e)...)
	return ne
}

// outcome sums up the nodes' outcomes: created when every node was,
// unchanged when nothing changed, changed otherwise.
func outcome(res *UpResult) string {
	created, unchanged := len(res.Nodes) > 0, len(res.Changes) == 0
	for _, n := range res.Nodes {
		created = created && n.Outcome == "created"
		unchanged = unchanged && n.Outcome == "unchanged"
	}
	switch {
	case unchanged:
		return "unchanged"
	case created:
		return "created"
	}
	return "changed"
}

// lineWriter writes whole lines from several goroutines, each with its
// prefix, so concurrent nodes' progress stays readable.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// prefixed is a writer whose lines go to w with prefix in front.
func (l *lineWriter) prefixed(prefix string) io.Writer {
	if l.w == nil {
		return nil
	}
	return &prefixWriter{l: l, prefix: prefix}
}

type prefixWriter struct {
	l      *lineWriter
	prefix string
	buf    []byte
}

// Write passes on each complete line with the prefix; a partial line waits
// for its end.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.l.mu.Lock()
		_, err := fmt.Fprintf(p.l.w, "%s%s\n", p.prefix, p.buf[:i])
		p.l.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), err
		}
	}
}

// recordDir is where Up keeps a copy of lab name's file.
func recordDir(stateDir, name string) string {
	if stateDir == "" {
		stateDir = domain.DefaultStateDir
	}
	return filepath.Join(stateDir, "labs", name)
}

// saveRecord keeps the lab file as up read it, for check and inspect by
// name; down removes it. It comes before the first change to the lab's
// networks and nodes, so a killed up leaves it for down to find. created
// says whether there was none before.
func saveRecord(stateDir string, l lab.Lab) (created bool, err error) {
	dir := recordDir(stateDir, l.Name)
	path := filepath.Join(dir, "lab.yaml")
	_, serr := os.Stat(path)
	if err := fsperm.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("keep lab %s's file: %w", l.Name, err)
	}
	return errors.Is(serr, os.ErrNotExist), fsperm.WriteFileAtomic(path, l.Source, 0o644)
}

// forgetNew removes the record a failed up saved, when it was new and no
// node of the lab is left: a refused or rolled-back up leaves nothing.
func forgetNew(e vm.Env, name string, created bool) {
	if created {
		Forget(e, name) // best effort: the up's own error is what matters
	}
}

// ErrNoRecord is matched when a lab has no saved file: it was never
// brought up here, or it was brought down.
var ErrNoRecord = errors.New("no saved lab file")

// Saved reads the lab file Up kept for lab name.
func Saved(stateDir, name string) (lab.Lab, error) {
	path := filepath.Join(recordDir(stateDir, name), "lab.yaml")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return lab.Lab{}, errs.WithHint(fmt.Errorf("lab %s: %w (it is not up here)", name, ErrNoRecord),
			"bring it up first: vmnet lab up FILE, or name the lab file instead of the lab")
	}
	if err != nil {
		return lab.Lab{}, err
	}
	return lab.Parse(data, path)
}
