package check

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// duoYAML is two tiny nodes on one bridge: a at .11 (tap vnet0), b at .12
// (tap vnet1), and a declared ping from a to b.
const duoYAML = `name: duo
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
nodes:
  a: {image: tiny, nics: [{net: lan, address: 192.0.2.11/24}]}
  b: {image: tiny, nics: [{net: lan, address: 192.0.2.12/24}]}
checks:
  - {from: a, to: b, ping: true}
`

// guestLinksUp is the guest's ip -o output with eth0 up (state) and addr on it.
func guestLinksUp(state, addr string) guestAnswer {
	return says("2: eth0: <BROADCAST,MULTICAST" + state + "> mtu 1500 state UP\\    link/ether 52:54:00:cc:00:01 brd ff:ff:ff:ff:ff:ff\n@@vmnet@@\n2: eth0    inet " + addr + "/24 scope global eth0\n")
}

// duoWorld is the duo lab where every path to b fails (b's hop is broken):
// the host's view and each node's guest, and the running nodes.
func duoWorld(t *testing.T, bLinks guestAnswer, bAgent bool, tapB Link) (*world, map[string]LabNode) {
	l := parseLab(t, duoYAML)
	host := &world{pings: map[netip.Addr]error{a("192.0.2.12"): ErrNoAnswer}, links: map[string]Link{
		"lan":   {Name: "lan", Exists: true, Up: true, OperState: "up", Addrs: pfx("192.0.2.1/24")},
		"vnet0": {Name: "vnet0", Exists: true, Up: true, OperState: "unknown", Master: "lan"},
		"vnet1": tapB,
	}}
	ga := &world{guest: map[string]guestAnswer{
		"ping -c 1 -W 2 -I eth0 192.0.2.1":  says(""),
		"ping -c 1 -W 2 -I eth0 192.0.2.12": exit(1, ""),
		"sh -c " + guestLinksScript:         guestLinksUp(",UP,LOWER_UP", "192.0.2.11"),
		"nft list ruleset":                  exit(127, "sh: nft: not found"),
	}}
	gb := &world{guest: map[string]guestAnswer{
		"ping -c 1 -W 2 -I eth0 192.0.2.1":  exit(1, ""),
		"ping -c 1 -W 2 -I eth0 192.0.2.11": exit(1, ""),
		"sh -c " + guestLinksScript:         bLinks,
		"nft list ruleset":                  exit(127, "sh: nft: not found"),
	}}
	ta, tb := fileTarget(l, "a"), fileTarget(l, "b")
	ta.NICs[0].Tap, tb.NICs[0].Tap, tb.Agent = "vnet0", "vnet1", bAgent
	return host, map[string]LabNode{"a": {Target: ta, Guest: ga}, "b": {Target: tb, Guest: gb}}
}

// A VM-to-VM ping that fails because of the target's hop names that hop:
// the source's own path is healthy, so diagnosis walks the target's.
func TestDiagnosisWalksTheTarget(t *testing.T) {
	up := Link{Name: "vnet1", Exists: true, Up: true, OperState: "unknown", Master: "lan"}
	detached := up
	detached.Master = ""
	for _, tc := range []struct {
		name     string
		bLinks   guestAnswer
		bAgent   bool
		tapB     Link
		hop      string
		cause    Cause
		evidence string
	}{
		{"target's tap detached", guestLinksUp(",UP,LOWER_UP", "192.0.2.12"), false, detached,
			"tap vnet1", CauseTapNotAttached, "vnet1 is not a port of any bridge; it belongs in lan"},
		{"target's tap missing", guestLinksUp(",UP,LOWER_UP", "192.0.2.12"), false, Link{Name: "vnet1"},
			"tap vnet1", CauseTapNotAttached, "vnet1 (the host side of b:eth0) does not exist"},
		{"target's NIC down (agent)", guestLinksUp("", "192.0.2.12"), true, up,
			"b:eth0", CauseGuestNICDown, "eth0 is administratively down in the guest"},
		{"target's address missing (agent)", guestLinksUp(",UP,LOWER_UP", "192.0.2.99"), true, up,
			"b:eth0", CauseGuestNICDown, "eth0 does not have 192.0.2.12 in the guest"},
		{"target's NIC down, no agent to tell", guestLinksUp("", "192.0.2.12"), false, up,
			"a → b:lan", CauseUnknown, "b has no guest agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, nodes := duoWorld(t, tc.bLinks, tc.bAgent, tc.tapB)
			rep := RunLab(context.Background(), host, parseLab(t, duoYAML), nodes, Options{})
			seen := 0
			for _, r := range rep.Results {
				if r.ID != "ping:a->b:lan" && r.ID != "checks[0]:ping:a->b" {
					continue
				}
				seen++
				hop := strings.Replace(tc.hop, "b:lan", r.Target, 1) // the fallback names the check's own ends
				if r.Pass || r.Hop != hop || r.Cause != tc.cause || !strings.Contains(strings.Join(r.Evidence, "; "), tc.evidence) {
					t.Errorf("%s: pass %v, hop %q, cause %q, evidence %q; want hop %q, cause %q, evidence ~ %q",
						r.ID, r.Pass, r.Hop, r.Cause, r.Evidence, hop, tc.cause, tc.evidence)
				}
			}
			if seen != 2 {
				t.Errorf("%d of the derived and the declared ping from a to b; results %v", seen, rep.Results)
			}
		})
	}
}

// After lab up --node a, the lab's checks are a's own: none that needs b
// (b's, a's ping to b, the declared ping to b), so b not running fails
// nothing.
func TestLabChecksOfSelectedNodes(t *testing.T) {
	host, nodes := duoWorld(t, guestLinksUp(",UP,LOWER_UP", "192.0.2.12"), false, Link{Name: "vnet1"})
	delete(nodes, "b")
	rep := RunLab(context.Background(), host, parseLab(t, duoYAML), nodes, Options{Nodes: []string{"a"}})
	var ids []string
	for _, r := range rep.Results {
		ids = append(ids, r.ID)
		if !r.Pass {
			t.Errorf("%s failed: %s (%s)", r.ID, r.Actual, r.Cause)
		}
	}
	if want := "ping:host->a:eth0 ping:a->host:lan"; strings.Join(ids, " ") != want {
		t.Errorf("checks %v, want %s", ids, want)
	}
	all := RunLab(context.Background(), host, parseLab(t, duoYAML), nodes, Options{})
	if len(all.Results) <= len(rep.Results) || all.Failed() == 0 {
		t.Errorf("without Nodes: %d checks, %d failed; want more than %d, and b's failing", len(all.Results), all.Failed(), len(rep.Results))
	}
}
