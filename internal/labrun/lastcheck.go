package labrun

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"vmnet/internal/check"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/lab"
)

// lastCheckFile is the name, in a lab's record directory, of its last
// check run; lab down removes it with the directory.
const lastCheckFile = "last-check.json"

// LastReport is a lab's last check run as lab up and lab check save it,
// for lab graph to colour the links: each check with the NIC it crossed.
type LastReport struct {
	Lab     string      `json:"lab"`
	Started time.Time   `json:"started"`
	Checks  []LastCheck `json:"checks"`
}

// LastCheck is one check of a LastReport. The names are those of lab
// check -o json; NIC is the index of the NIC of the node the check runs
// from (of the node it reaches, from the host) the path crosses, or -1.
type LastCheck struct {
	ID      string `json:"id"`
	Source  string `json:"source"`
	Target  string `json:"target"`
	Address string `json:"address"`
	Method  string `json:"method"`
	Pass    bool   `json:"pass"`
	NIC     int    `json:"nic"`
	Actual  string `json:"actual"`
	Hop     string `json:"hop,omitempty"`
	Cause   string `json:"cause,omitempty"`
}

// ErrNoLastReport is matched when a lab has no saved check run.
var ErrNoLastReport = errors.New("no saved check run")

// SaveLastReport keeps r as lab name's last check run
// (STATEDIR/labs/NAME/last-check.json, mode 0644, replaced atomically). It
// writes only beside the lab file up saved: a lab that is not up here
// gets no directory, so nothing is left for down to find.
func SaveLastReport(stateDir, name string, r *check.Report) error {
	dir := recordDir(stateDir, name)
	if _, err := os.Stat(filepath.Join(dir, "lab.yaml")); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	last := LastReport{Lab: name, Started: r.Started.UTC(), Checks: []LastCheck{}}
	for _, res := range r.Results {
		last.Checks = append(last.Checks, LastCheck{ID: res.ID, Source: res.Source, Target: res.Target,
			Address: res.Address, Method: string(res.Method), Pass: res.Pass, NIC: res.NIC, Actual: res.Actual,
			Hop: res.Hop, Cause: string(res.Cause)})
	}
	data, err := json.MarshalIndent(last, "", "  ")
	if err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(filepath.Join(dir, lastCheckFile), append(data, '\n'), 0o644); err != nil {
		return errs.WithHint(fmt.Errorf("save lab %s's check run: %w", name, err),
			"the checks ran and their result stands; lab graph will not colour the links until a save works")
	}
	return nil
}

// LoadLastReport reads lab name's last check run; ErrNoLastReport when
// none was saved.
func LoadLastReport(stateDir, name string) (*LastReport, error) {
	path := filepath.Join(recordDir(stateDir, name), lastCheckFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: %w", name, ErrNoLastReport)
	}
	if err != nil {
		return nil, err
	}
	var last LastReport
	if err := json.Unmarshal(data, &last); err != nil {
		return nil, errs.WithHint(fmt.Errorf("%s: %w", path, err), "run 'vmnet lab check "+name+"' again to replace it")
	}
	return &last, nil
}

// Overlay is what lab graph draws over lab l's file: each node's state and
// NIC addresses from in (Inspect), and each NIC link's checks from last
// (nil for none). Overlay is pure.
func Overlay(l lab.Lab, in *Inspection, last *LastReport) *lab.Live {
	live := &lab.Live{States: map[string]string{}, Addresses: map[lab.NICRef]string{}, Links: map[lab.NICRef]lab.Link{}}
	if in != nil {
		for _, n := range in.Nodes {
			live.States[n.Node] = n.State
			for _, nic := range n.NICs {
				if nic.Address != "" {
					live.Addresses[lab.NICRef{Node: n.Node, NIC: nic.Index}] = nic.Address
				}
			}
		}
	}
	if last == nil {
		return live
	}
	live.Checked = last.Started
	addChecks(l, live, last.Checks)
	return live
}

// addChecks counts each check on the links it crosses. A failed check that
// crosses two links (node to node) is blamed on the end whose own checks
// (host ↔ that NIC) failed too, and counted on the other as failed
// elsewhere: a detached tap on one node does not paint its peer's link
// red. Without such evidence it is blamed on both.
func addChecks(l lab.Lab, live *lab.Live, checks []LastCheck) {
	crossed := make([][]lab.NICRef, len(checks))
	alone := map[lab.NICRef]bool{} // links with a failed check that crosses only them
	for i, c := range checks {
		crossed[i] = Crossed(l, live, c)
		if len(crossed[i]) == 1 && !c.Pass {
			alone[crossed[i][0]] = true
		}
	}
	for i, c := range checks {
		blamed := slices.ContainsFunc(crossed[i], func(r lab.NICRef) bool { return alone[r] })
		for _, ref := range crossed[i] {
			k := live.Links[ref]
			f := lab.FailedCheck{ID: c.ID, Cause: failCause(c)}
			switch {
			case c.Pass:
				k.Passed++
			case blamed && !alone[ref]:
				k.Elsewhere = append(k.Elsewhere, f)
			default:
				k.Failed = append(k.Failed, f)
			}
			live.Links[ref] = k
		}
	}
}

// failCause is what a link's label says of a failed check: its cause, or
// what it saw when the plan failed it without one.
func failCause(c LastCheck) string {
	if c.Cause != "" {
		return c.Cause
	}
	if c.Actual != "" {
		return c.Actual
	}
	return "failed"
}

// Crossed is the NIC links check c crosses in lab l: the NIC it names (of
// its source node, or of its target node from the host) and, between two
// nodes, the target's NIC the target label names (web:eth1, web:lan) or
// the one on the same network. A check inside one node (the VM to its
// containers) crosses none. live's addresses find a node by an address a
// declared check names.
func Crossed(l lab.Lab, live *lab.Live, c LastCheck) []lab.NICRef {
	src, tgt := labNode(l, c.Source), labNode(l, c.Target)
	if tgt == "" {
		tgt = holder(l, live, c.Target)
	}
	var out []lab.NICRef
	first := src
	if first == "" {
		first = tgt
	}
	if first == "" || c.NIC < 0 || c.NIC >= len(l.Nodes[first].NICs) {
		return nil
	}
	out = append(out, lab.NICRef{Node: first, NIC: c.NIC})
	if src == "" || tgt == "" || tgt == src {
		return out
	}
	if j := targetNIC(l, tgt, c.Target, l.Nodes[src].NICs[c.NIC].Net); j >= 0 {
		out = append(out, lab.NICRef{Node: tgt, NIC: j})
	}
	return out
}

// labNode is the node of l a check label names (web, web:eth1, web:lan,
// web/db), or "".
func labNode(l lab.Lab, label string) string {
	name, _, _ := strings.Cut(label, "/")
	name, _, _ = strings.Cut(name, ":")
	if _, ok := l.Nodes[name]; ok {
		return name
	}
	return ""
}

// holder is the node whose NIC has the address a label names, from the
// file or live; "" for none.
func holder(l lab.Lab, live *lab.Live, label string) string {
	a, err := netip.ParseAddr(label)
	if err != nil {
		return ""
	}
	for _, name := range l.NodeOrder {
		for i, n := range l.Nodes[name].NICs {
			if n.Address.Addr() == a || live.Addresses[lab.NICRef{Node: name, NIC: i}] == a.String() {
				return name
			}
		}
	}
	return ""
}

// targetNIC is the index of node's NIC a check's target label reaches:
// the one it names (node:ethN, node:NET), else the one on net; -1 for none.
func targetNIC(l lab.Lab, node, label, net string) int {
	nics := l.Nodes[node].NICs
	if _, after, ok := strings.Cut(label, ":"); ok && !strings.Contains(label, "/") {
		if n, err := strconv.Atoi(strings.TrimPrefix(after, "eth")); err == nil && strings.HasPrefix(after, "eth") && n < len(nics) {
			return n
		}
		if i := slices.IndexFunc(nics, func(n lab.NIC) bool { return n.Net == after }); i >= 0 {
			return i
		}
	}
	return slices.IndexFunc(nics, func(n lab.NIC) bool { return n.Net == net })
}
