package integration

import (
	"strings"
	"testing"
)

// macvtapParent is the command that makes the built-in macvtap lab's
// parent in a sandbox, as the lab file's comment gives it: one end of a
// veth pair (the other end plays the LAN), with the host's address on it.
const macvtapParent = "ip link add mv0 type veth peer name mv0-lan && ip link set mv0-lan up && ip link set mv0 up && ip addr add 192.0.2.1/24 dev mv0"

// Issue 10's macvtap networks, on the real kernel: lab up macvtap without
// its parent is refused before anything changes; with the parent made in
// the sandbox it comes up green, with the host ↔ guest pings on the
// macvtap NICs expected (and found) blocked, each after its control on br0,
// and the two guests reaching each other on the parent in bridge mode; a
// peer on the parent's link reaches both guests; lab down leaves nothing but
// the veth (and the peer's namespace) the test made, which the test removes.
func TestMacvtapLab(t *testing.T) {
	tinyImage(t)
	s := newSandbox(t)

	_, r := labUp(t, s, "macvtap")
	if r.code != 2 || !strings.Contains(r.stderr, "networks.wan.parent") || !strings.Contains(r.stderr, "ip link add mv0 type veth") {
		t.Fatalf("lab up macvtap without mv0: exit %d, want 2 naming networks.wan.parent and the command that makes it\n%s", r.code, r.stderr)
	}
	labResidue(t, s)

	if mk := sb(t, s, "sh", "-c", macvtapParent); mk.code != 0 {
		t.Fatalf("make the parent: exit %d\n%s", mk.code, mk.stderr)
	}
	up, r := labUp(t, s, "macvtap")
	if r.code != 0 || up.Outcome != "created" || len(up.Nodes) != 2 || up.Check.Failed != 0 {
		t.Fatalf("lab up macvtap: exit %d, outcome %q, %d nodes, %d of %d checks passed\n%s", r.code, up.Outcome, len(up.Nodes), up.Check.Passed, up.Check.Total, r.stdout)
	}
	want := map[string]string{ // check ID → what it must expect
		"ping:host->left:eth0":  "no reply: the host cannot reach a macvtap guest",
		"ping:host->right:eth0": "no reply: the host cannot reach a macvtap guest",
		"ping:left->host:mv0":   "no reply: a macvtap guest cannot reach the host",
		"ping:left->right:wan":  "reply",
		"ping:right->left:wan":  "reply",
		"ping:host->left:eth1":  "reply",
		"ping:right->host:br0":  "reply",
		"ping:right->host:mv0":  "no reply",
		"ping:left->right:br0":  "reply",
		"ping:host->right:eth1": "reply",
	}
	got := map[string]string{}
	for _, res := range up.Check.Results {
		got[res.ID] = res.Expect
	}
	for id, w := range want {
		if e, ok := got[id]; !ok || !strings.HasPrefix(e, w) {
			t.Errorf("check %s: expect %q (present %v), want it to start with %q", id, e, ok, w)
		}
	}
	if links := sb(t, s, "sh", "-c", "ip -o link show type macvtap | wc -l"); strings.TrimSpace(links.stdout) != "2" {
		t.Errorf("macvtap links in the sandbox: %q, want 2 (one per guest on mv0)", links.stdout)
	}

	// The positive control the check matrix cannot hold: a peer on the
	// parent's link (mv0's veth peer, moved into a namespace of its own with
	// an address) reaches both guests, which the host could not.
	peer := "ip netns add h7lan && ip link set mv0-lan netns h7lan && ip -n h7lan addr add 192.0.2.254/24 dev mv0-lan && ip -n h7lan link set mv0-lan up && ip -n h7lan link set lo up"
	if mk := sb(t, s, "sh", "-c", peer); mk.code != 0 {
		t.Fatalf("move the peer into its namespace: exit %d\n%s", mk.code, mk.stderr)
	}
	for _, guest := range []string{"192.0.2.11", "192.0.2.12"} {
		if p := sb(t, s, "ip", "netns", "exec", "h7lan", "ping", "-c", "1", "-W", "3", guest); p.code != 0 {
			t.Errorf("the peer on mv0's link cannot ping guest %s: exit %d\n%s", guest, p.code, p.stdout)
		}
	}
	if p := sb(t, s, "ping", "-c", "1", "-W", "2", "192.0.2.11"); p.code == 0 {
		t.Errorf("the host pinged a macvtap guest through its parent mv0; the kernel is not doing what the checks expect")
	}

	down := sb(t, s, vmnetBin(t), "lab", "down", "macvtap")
	if down.code != 0 || !strings.Contains(down.stdout, "removed") {
		t.Fatalf("lab down macvtap: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	if left := sb(t, s, "sh", "-c", "ip -o link show type macvtap"); strings.TrimSpace(left.stdout) != "" {
		t.Errorf("macvtap links left after lab down:\n%s", left.stdout)
	}
	if del := sb(t, s, "sh", "-c", "ip link del mv0 && ip netns del h7lan"); del.code != 0 {
		t.Fatalf("remove the parent and the peer's namespace: exit %d\n%s", del.code, del.stderr)
	}
	labResidue(t, s)
}
