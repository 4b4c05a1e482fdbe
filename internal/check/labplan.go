package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"vmnet/internal/lab"
)

// MatrixLab is the Matrix of a lab's Report.
const MatrixLab = "lab"

// HostRun is the key, in LabMatrix's answer, of the host-side checks that
// reach no node (a declared check to an address outside the lab): they run
// with no VM.
const HostRun = lab.Host

// LabMatrix plans the checks of lab l: node name → the checks that node's
// run holds. targets has the running nodes, by node name, as Describe (and
// Discover, for a node with an app) read them; a node missing from
// it is not running, and every check that runs on it or reaches it says so
// in Unknown. Each node's run has, in order: its BasicMatrix (its app's
// AppMatrix with app: NAME); a ping to every other node on every
// network the two share (ping:A->B:NET); then the positive controls the
// declared checks need. Declared checks go in the run of their source
// node, or, from the host, of the node they reach (HostRun when they reach
// none); their IDs start with checks[N]: after their place in the file.
// LabMatrix is pure.
func LabMatrix(l lab.Lab, targets map[string]Target) map[string][]Check {
	return planLab(l, targets, nil).runs
}

// labPlan is LabMatrix's work and what Lab needs besides the checks.
type labPlan struct {
	l        lab.Lab
	targets  map[string]Target // every node: the live one, or one made from the file
	running  map[string]bool
	runs     map[string][]Check
	declared map[string]int  // check ID → its index in l.Checks
	only     map[string]bool // Options.Nodes: a check needing any other node is left out; empty: none is
}

// runOrder is the order of the runs: the nodes in file order, then HostRun.
func (p *labPlan) runOrder() []string { return append(allNodes(p.l), HostRun) }

// planLab is LabMatrix, with only the checks that need no node outside
// only when only is not empty.
func planLab(l lab.Lab, targets map[string]Target, only []string) *labPlan {
	p := &labPlan{l: l, targets: map[string]Target{}, running: map[string]bool{}, runs: map[string][]Check{},
		declared: map[string]int{}, only: map[string]bool{}}
	for _, n := range only {
		p.only[n] = true
	}
	for _, name := range allNodes(l) {
		t, ok := targets[name]
		switch {
		case !ok && l.IsHostContainer(name):
			t = hostContainerTarget(l, name)
		case !ok:
			t = fileTarget(l, name)
		}
		if !l.IsHostContainer(name) {
			t = withLabContainers(l, name, t)
			t = withApp(l, name, t)
		}
		p.targets[name], p.running[name] = t, ok
	}
	for _, name := range allNodes(l) {
		t := p.targets[name]
		derived := BasicMatrix(t)
		if l.IsHostContainer(name) {
			derived = p.hostContainerMatrix(name, t)
		}
		if t.App != nil {
			derived = AppMatrix(t)
		}
		p.add(name, name, derived...)
		if !l.IsHostContainer(name) {
			p.add(name, name, p.containerMatrix(name)...)
		}
		p.peerPings(name)
	}
	p.macvtapControls()
	for i, dc := range l.Checks {
		p.addDeclared(i, dc)
	}
	p.dedupe()
	return p
}

// withApp gives t the description of node's app, or none when the node
// has no app: the lab file's app: decides, which internal/lab resolves in
// the registry it validated it against.
func withApp(l lab.Lab, node string, t Target) Target {
	t.App = nil
	if a, ok := l.Nodes[node].Application(); ok {
		t.App = &a
	}
	return t
}

// add puts checks that need node in run.
func (p *labPlan) add(run string, node string, checks ...Check) {
	for _, c := range checks {
		p.addNeeding(run, c, node)
	}
}

// addNeeding puts c in run; when one of the nodes it needs is not
// running, c fails at once and says so. A check that needs a node outside
// p.only (when set) is left out.
func (p *labPlan) addNeeding(run string, c Check, needs ...string) {
	for _, n := range needs {
		if n != "" && len(p.only) > 0 && !p.only[n] {
			return
		}
	}
	for _, n := range needs {
		if n != "" && !p.running[n] {
			c.Unknown, c.down = p.notRunning(n), n
			break
		}
	}
	p.runs[run] = append(p.runs[run], c)
}

// notRunning is the Actual of a check whose node is down.
func (p *labPlan) notRunning(node string) string {
	return fmt.Sprintf("node %s is not running: 'vmnet lab up %s --node %s' starts it", node, p.l.Name, node)
}

// fileTarget describes a node that is not running from the lab file alone:
// its static addresses and the host's address on each network.
func fileTarget(l lab.Lab, name string) Target {
	t := Target{Name: name, Spec: l.Nodes[name].Image}
	for i, nic := range labNICs(l, name) {
		net := l.Networks[nic.Net]
		n := NIC{Index: i, Guest: fmt.Sprintf("eth%d", i), Address: nic.Address.Addr(), Prefix: nic.Address.Bits(),
			Host: net.HostAddr(), HostPrefix: net.Subnet().Bits(), Source: "static"}
		if d := l.Direct(nic.Net); !d.IsZero() {
			n.Parent, n.Mode = d.Parent, d.ModeOrDefault() // the host has no address there (HostAddr)
		} else if net.Kind == lab.KindBridge {
			n.Bridge = nic.Net
		} else {
			n.Network = nic.Net
		}
		t.NICs = append(t.NICs, n)
	}
	return t
}

// nicOn is the index of node's first NIC on network net, or -1.
func (p *labPlan) nicOn(node, net string) int {
	return slices.IndexFunc(labNICs(p.l, node), func(n lab.NIC) bool { return n.Net == net })
}

// peerPings adds node a pinging every other node on every network they
// share, out of a's NIC on it: ping:A->B:NET, in a's run.
func (p *labPlan) peerPings(a string) {
	ta := p.targets[a]
	for _, b := range allNodes(p.l) {
		if b == a {
			continue
		}
		tb := p.targets[b]
		for i, nic := range labNICs(p.l, a) {
			j := p.nicOn(b, nic.Net)
			if j < 0 || p.nicOn(a, nic.Net) != i {
				continue
			}
			c := Check{
				ID: "ping:" + a + "->" + b + ":" + nic.Net, Source: a, Target: b + ":" + nic.Net,
				Method: MethodPing, Expect: "reply", From: Place{Kind: OnVM}, Want: WantReply, NIC: i,
				peer: b, peerNIC: j,
			}
			p.macvtapPeer(&c, a, b, nic.Net)
			switch {
			case i >= len(ta.NICs):
				c.Address, c.Unknown = "-", p.nicMissing(a, i)
			case j >= len(tb.NICs):
				c.Address, c.Unknown = "-", p.nicMissing(b, j)
			default:
				c.To = tb.NICs[j].Address
				c.Address, c.Unknown = addrOrWhy(c.To, noNICAddress(tb, tb.NICs[j]))
			}
			p.addNeeding(a, c, a, b)
		}
	}
}

// nicMissing says that a running node's domain lacks the NIC the lab file
// gives it.
func (p *labPlan) nicMissing(node string, i int) string {
	return fmt.Sprintf("node %s has no eth%d: its domain has %d NICs, the lab file gives it %d", node, i, len(p.targets[node].NICs), len(labNICs(p.l, node)))
}

// dedupe gives every check an ID of its own across the lab: two capstone
// nodes both have dns:api->db, which become dns:web/api->web/db and so on
// (each run's Requires follow).
func (p *labPlan) dedupe() {
	count := map[string]int{}
	for _, run := range p.runOrder() {
		for _, c := range p.runs[run] {
			count[c.ID]++
		}
	}
	for _, run := range p.runOrder() {
		renamed := map[string]string{}
		checks := p.runs[run]
		for i, c := range checks {
			if count[c.ID] > 1 {
				id := string(c.Method) + ":" + c.Source + "->" + c.Target
				if c.Port != 0 && !strings.HasSuffix(id, ":"+strconv.Itoa(int(c.Port))) {
					id += ":" + strconv.Itoa(int(c.Port))
				}
				renamed[c.ID], checks[i].ID = id, id
			}
		}
		for i := range checks {
			for j, r := range checks[i].Requires {
				if id, ok := renamed[r]; ok {
					checks[i].Requires[j] = id
				}
			}
		}
	}
}
