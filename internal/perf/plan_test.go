package perf

import (
	"errors"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

// builtin loads a built-in lab.
func builtin(t *testing.T, name string) lab.Lab {
	t.Helper()
	l, err := lab.LoadRef(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dashedLab has node names with dashes, one the prefix of another, and
// an isolated network.
const dashedLab = `name: dashed
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
  back: {kind: isolated, cidr: 203.0.113.0/24}
nodes:
  web-1:
    image: tiny
    nics: [{net: lan, address: 192.0.2.10/24}, {net: back}]
  web:
    image: tiny
    nics: [{net: lan, address: 192.0.2.11/24}]
  db:
    image: tiny
    nics: [{net: back}]
`

// dashed parses dashedLab.
func dashed(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.Parse([]byte(dashedLab), "dashed.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPlanBuiltinLabs: each built-in lab's default pairs follow from its
// networks: host → the first node where the host has an address, VM → VM
// on bridge and macvtap networks, none from the host on macvtap.
func TestPlanBuiltinLabs(t *testing.T) {
	for _, c := range []struct{ lab, want string }{
		{"duo", "host-left:nat0,host-left:br0,left-right:br0"},
		{"capstone", "host-capstone:nat0,host-capstone:br0"},
		{"macvtap", "left-right:wan,host-left:br0,left-right:br0"},
		{"pod-sidecar", "host-pods:podnat,host-pods:podbr"}, // pod members only: no container pair
	} {
		if got := Names(Plan(builtin(t, c.lab))); got != c.want {
			t.Errorf("Plan(%s) = %s, want %s", c.lab, got, c.want)
		}
	}
	if got, want := Names(Plan(dashed(t))), "host-web-1:lan,web-1-web:lan,host-web-1:back"; got != want {
		t.Errorf("Plan(dashed) = %s, want %s (isolated: host ↔ VM only)", got, want)
	}
}

// TestPairModes: the mode names the ends (host first) and the network kind.
func TestPairModes(t *testing.T) {
	pairs := Plan(builtin(t, "macvtap"))
	want := []string{"VM ↔ VM, macvtap", "host ↔ VM, bridge", "VM ↔ VM, bridge"}
	for i, p := range pairs {
		if p.Mode() != want[i] {
			t.Errorf("%s: mode %q, want %q", p.Name(), p.Mode(), want[i])
		}
	}
	rev := Pair{Client: VM("left"), Server: Host, Net: "br0", NetKind: "bridge"}
	if rev.Mode() != "host ↔ VM, bridge" || rev.Name() != "left-host:br0" {
		t.Errorf("reversed pair: %s, %q", rev.Name(), rev.Mode())
	}
}

// TestParsePair: names resolve against the lab, dashes in node names
// included; every refusal is invalid input that names the pair, says
// why, and lists the lab's pairs.
func TestParsePair(t *testing.T) {
	d := dashed(t)
	good := map[string]Pair{
		"web-1-web:lan":    {Client: VM("web-1"), Server: VM("web"), Net: "lan", NetKind: "bridge"},
		"web-web-1:lan":    {Client: VM("web"), Server: VM("web-1"), Net: "lan", NetKind: "bridge"},
		"host-web-1:back":  {Client: Host, Server: VM("web-1"), Net: "back", NetKind: "isolated"},
		"db-host:back":     {Client: VM("db"), Server: Host, Net: "back", NetKind: "isolated"},
		"db-web-1:back":    {Client: VM("db"), Server: VM("web-1"), Net: "back", NetKind: "isolated"},
		"host-web-1:lan":   {Client: Host, Server: VM("web-1"), Net: "lan", NetKind: "bridge"},
		"web-1-host:lan":   {Client: VM("web-1"), Server: Host, Net: "lan", NetKind: "bridge"},
		"host-web:lan":     {Client: Host, Server: VM("web"), Net: "lan", NetKind: "bridge"},
		" host-web:lan ":   {}, // trimmed by Select, not by ParsePair
		"web-1-web-1:back": {},
	}
	for name, want := range good {
		got, err := ParsePair(d, name)
		if want == (Pair{}) {
			if err == nil {
				t.Errorf("ParsePair(%q) = %+v, want an error", name, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParsePair(%q) = %+v, %v; want %+v", name, got, err, want)
		}
	}
	bad := []struct{ lab, name, want string }{
		{"duo", "host-left", "has no :NET"},
		{"duo", "host-left:lan", `network "lan", which lab duo does not have (it has nat0, br0)`},
		{"duo", "host-middle:br0", "two endpoints of the lab (host, or a node: left, right)"},
		{"duo", "left-left:br0", "same endpoint at both ends"},
		{"duo", "host-host:br0", "same endpoint at both ends"},
		{"macvtap", "host-left:wan", "whose guests the host cannot reach through the parent mv0"},
		{"macvtap", "left-host:wan", "macvtap network wan"},
	}
	for _, c := range bad {
		_, err := ParsePair(builtin(t, c.lab), c.name)
		var fe *errs.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, errs.ErrInvalid) {
			t.Errorf("ParsePair(%s, %q) = %v, want a field error", c.lab, c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.name) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePair(%s, %q): %q, want it to name the pair and say %q", c.lab, c.name, err, c.want)
		}
		if !strings.Contains(fe.Hint(), Names(Plan(builtin(t, c.lab)))) {
			t.Errorf("ParsePair(%s, %q): hint %q does not list the lab's pairs", c.lab, c.name, fe.Hint())
		}
	}
	if _, err := ParsePair(d, "db-web:lan"); err == nil || !strings.Contains(err.Error(), "node db has no NIC on lan") {
		t.Errorf("db-web:lan: %v, want db's missing NIC named", err)
	}
}

// TestParsePairAmbiguous: a split that names two endpoints in two ways is
// refused rather than guessed.
func TestParsePairAmbiguous(t *testing.T) {
	l, err := lab.Parse([]byte(`name: amb
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
nodes:
  a: {image: tiny, nics: [{net: lan, address: 192.0.2.10/24}]}
  a-b: {image: tiny, nics: [{net: lan, address: 192.0.2.11/24}]}
  b: {image: tiny, nics: [{net: lan, address: 192.0.2.12/24}]}
  b-c: {image: tiny, nics: [{net: lan, address: 192.0.2.13/24}]}
  c: {image: tiny, nics: [{net: lan, address: 192.0.2.14/24}]}
`), "amb.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePair(l, "a-b-c:lan"); err == nil || !strings.Contains(err.Error(), "in 2 ways") {
		t.Errorf("a-b-c:lan (a → b-c or a-b → c): %v, want it refused as ambiguous", err)
	}
}

// TestSelect: comma-separated and repeated names keep their order, once
// each; none gives the plan; a bad one fails the whole selection.
func TestSelect(t *testing.T) {
	duo := builtin(t, "duo")
	got, err := Select(duo, []string{"left-right:br0, host-right:nat0", "left-right:br0"})
	if err != nil || Names(got) != "left-right:br0,host-right:nat0" {
		t.Errorf("Select = %s, %v", Names(got), err)
	}
	if got, err := Select(duo, nil); err != nil || Names(got) != Names(Plan(duo)) {
		t.Errorf("Select(nil) = %s, %v; want the plan", Names(got), err)
	}
	if _, err := Select(duo, []string{"left-right:br0,nope"}); !errors.Is(err, errs.ErrInvalid) {
		t.Errorf("Select with a bad name: %v, want invalid input", err)
	}
	lonely, err := lab.Parse([]byte("name: lonely\nnetworks:\n  wan: {kind: macvtap, parent: mv0, cidr: 192.0.2.0/24}\nnodes:\n  a: {image: tiny, nics: [{net: wan, address: 192.0.2.10/24}]}\n"), "lonely.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Select(lonely, nil); err == nil || !strings.Contains(err.Error(), "no pair to measure") {
		t.Errorf("Select of a lab with one macvtap guest: %v, want 'no pair to measure'", err)
	}
}

// TestBaseline: VM ↔ VM on a bridge first, else host ↔ VM on a bridge,
// else none; a named one must be among the pairs.
func TestBaseline(t *testing.T) {
	duo := Plan(builtin(t, "duo"))
	cases := []struct {
		pairs []Pair
		name  string
		want  int
	}{
		{duo, "", 2},
		{duo[:2], "", 1},
		{duo[:1], "", -1},
		{Plan(builtin(t, "macvtap")), "", 2},
		{duo, "host-left:nat0", 0},
	}
	for _, c := range cases {
		if got, err := Baseline(c.pairs, c.name); err != nil || got != c.want {
			t.Errorf("Baseline(%s, %q) = %d, %v; want %d", Names(c.pairs), c.name, got, err, c.want)
		}
	}
	if _, err := Baseline(duo, "left-right:nat0"); !errors.Is(err, errs.ErrInvalid) || !strings.Contains(err.Error(), "--baseline") {
		t.Errorf("an unmeasured baseline: %v, want a --baseline field error", err)
	}
}
