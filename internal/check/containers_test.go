package check

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"vmnet/internal/lab"
	"vmnet/templates"
)

// modesLab is the built-in modes lab and its node as Describe would see it
// running (its NAT NIC leased, its br0 NIC static).
func modesLab(t *testing.T) (lab.Lab, map[string]Target) {
	t.Helper()
	l, err := lab.LoadRef("modes")
	if err != nil {
		t.Fatal(err)
	}
	tg := fileTarget(l, "modes")
	tg.Agent = true
	tg.NICs[0].Address, tg.NICs[0].Source = netip.MustParseAddr("198.51.100.14"), "lease"
	tg.NICs[0].MAC, tg.NICs[1].MAC = "52:54:00:88:cf:91", "52:54:00:52:f8:6d"
	return l, map[string]Target{"modes": tg}
}

func TestLabMatrixModesGolden(t *testing.T) {
	l, targets := modesLab(t)
	runs := LabMatrix(l, targets)
	checkLabIDs(t, runs)
	golden(t, "lab-modes.txt", renderLab(l, runs))
}

// TestModesSemantics: each mode's derived checks say what the mode means,
// and every mode has at least one expected-blocked check with a control.
func TestModesSemantics(t *testing.T) {
	l, targets := modesLab(t)
	runs := LabMatrix(l, targets)
	want := []struct {
		id       string
		want     Want
		mode     string
		requires []string
	}{
		{"ping:modes->modes/web", WantReply, "", nil},
		{"tcp:host->modes:eth1:8081", WantOpen, "", nil},
		{"tcp:host->modes:eth1:80", WantClosed, "", []string{"ping:host->modes:eth1", "tcp:modes->modes/peer:80", "tcp:modes->modes/plain:80", "tcp:modes->modes/web:80"}},
		{"tcp:host->modes:eth1:8090", WantOpen, "", nil},
		{"ping:modes/isolated->127.0.0.1", WantReply, "", nil},
		{"ping:modes/isolated->modes:eth1", WantNoReply, lab.ModeNone, []string{"ping:modes/isolated->127.0.0.1"}},
		{"ping:host->modes/lanapi", WantReply, "", nil},
		{"tcp:host->modes/lanapi:80", WantOpen, "", nil},
		{"ping:modes->modes/lanapi", WantNoReply, lab.ModeMacvlan, []string{"ping:host->modes/lanapi"}},
		{"tcp:modes/sidecar->modes/app@127.0.0.1:8000", WantOpen, lab.ModePod, nil},
		{"neigh:host->modes/lanapi", WantOwnMAC, lab.ModeMacvlan, nil},
		{"ping:host->modes/natipv", WantReply, "", nil},
		{"ping:modes->modes/natipv", WantNoReply, lab.ModeIPvlan, []string{"ping:host->modes/natipv"}},
		{"neigh:host->modes/natipv", WantSameMAC, lab.ModeIPvlan, nil},
		{"tcp:host->modes:eth1:8000", WantClosed, "", []string{"ping:host->modes:eth1", "tcp:modes/sidecar->modes/app@127.0.0.1:8000"}},
		{"checks[3]:tcp:modes->modes/lanapi:80", WantClosed, lab.ModeMacvlan, []string{"ping:host->modes/lanapi"}},
		{"checks[4]:ping:modes/isolated->192.0.2.1", WantNoReply, lab.ModeNone, []string{"ping:modes/isolated->127.0.0.1"}},
	}
	for _, w := range want {
		c, run, ok := find(runs, w.id)
		switch {
		case !ok:
			t.Errorf("%s is not planned", w.id)
		case run != "modes" || c.Want != w.want || c.Mode != w.mode || !slices.Equal(c.Requires, w.requires):
			t.Errorf("%s: run %s want %q mode %q requires %v; want run modes, %q, %q, %v", w.id, run, c.Want, c.Mode, c.Requires, w.want, w.mode, w.requires)
		case c.Unknown != "":
			t.Errorf("%s has no address: %s", w.id, c.Unknown)
		}
	}
	if c, _, _ := find(runs, "ping:modes->modes/lanapi"); c.To != netip.MustParseAddr("192.0.2.50") {
		t.Errorf("the macvlan container's address is %s, want the lab file's 192.0.2.50", c.To)
	}
	if c, _, _ := find(runs, "ping:modes->modes/plain"); c.To != netip.MustParseAddr("10.88.143.238") {
		t.Errorf("plain's address is %s, want 10.88.143.238, the one its name's hash picks on podman's network", c.To)
	}
}

// exitGuest answers every guest command with one exit code.
type exitGuest struct{ code int }

func (g exitGuest) Exec(context.Context, []string, time.Duration) (Output, error) {
	return Output{Code: g.code, Stderr: "ping: connect: Network is unreachable"}, nil
}

// quietHost answers nothing; modeLimit never needs it.
type quietHost struct{}

func (quietHost) Ping(context.Context, netip.Addr, time.Duration) error     { return ErrNoAnswer }
func (quietHost) Dial(context.Context, netip.AddrPort, time.Duration) error { return ErrNoAnswer }
func (quietHost) Get(context.Context, string, time.Duration) (int, []byte, error) {
	return 0, nil, ErrNoAnswer
}
func (quietHost) Link(name string) (Link, error) { return Link{Name: name}, nil }

// TestModeJudgement: a none container's "network unreachable" (ping exit
// 2) is its blocked ping passing, and only for mode none; a wrong
// expectation, or a blocked path that got through, fails with the mode's
// own cause.
func TestModeJudgement(t *testing.T) {
	l, targets := modesLab(t)
	runs := LabMatrix(l, targets)
	get := func(id string) Check {
		c, _, ok := find(runs, id)
		if !ok {
			t.Fatalf("%s is not planned", id)
		}
		c.Requires = nil
		return c
	}
	tg := withLabContainers(l, "modes", targets["modes"])
	none, parent := get("ping:modes/isolated->modes:eth1"), get("ping:modes->modes/lanapi")
	noMode := none
	noMode.Mode, noMode.ID = "", "no-mode"
	reach := parent
	reach.Want, reach.ID = WantReply, "reach"
	cases := []struct {
		c     Check
		code  int
		pass  bool
		cause Cause
	}{
		{none, 2, true, ""},
		{noMode, 2, false, ""},
		{none, 0, false, CauseModeNotHeld},
		{parent, 1, true, ""},
		{parent, 0, false, CauseModeNotHeld},
		{reach, 1, false, CauseMacvlanParent},
	}
	for _, tc := range cases {
		r := Run(context.Background(), quietHost{}, exitGuest{tc.code}, tg, []Check{tc.c}, Options{})[0]
		if r.Pass != tc.pass || (tc.cause != "" && r.Cause != tc.cause) {
			t.Errorf("%s (mode %q) with exit %d: pass %v cause %q (%s); want pass %v cause %q", tc.c.ID, tc.c.Mode, tc.code, r.Pass, r.Cause, r.Actual, tc.pass, tc.cause)
		}
		if r.Cause == CauseModeNotHeld && !strings.Contains(strings.Join(r.Evidence, " "), tc.c.Mode) {
			t.Errorf("%s: the evidence %v does not name the mode %s", tc.c.ID, r.Evidence, tc.c.Mode)
		}
	}
}

// neighHost answers pings and has one MAC for every address.
type neighHost struct {
	quietHost
	mac string
}

func (neighHost) Ping(context.Context, netip.Addr, time.Duration) error { return nil }
func (h neighHost) Neigh(netip.Addr) (string, error)                    { return h.mac, nil }

// TestNeighJudgement: an ipvlan child passes at its parent's MAC, a
// macvlan child at a MAC of its own; the other way round each fails naming
// its mode; a host without a neighbour table fails the check.
func TestNeighJudgement(t *testing.T) {
	l, targets := modesLab(t)
	runs := LabMatrix(l, targets)
	ipv, _, _ := find(runs, "neigh:host->modes/natipv")
	mv, _, _ := find(runs, "neigh:host->modes/lanapi")
	parentMAC := "52:54:00:88:CF:91" // eth0's, in upper case: MACs compare without case
	cases := []struct {
		c    Check
		host Host
		pass bool
	}{
		{ipv, neighHost{mac: parentMAC}, true},
		{ipv, neighHost{mac: "ea:63:99:6d:ea:ee"}, false},
		{mv, neighHost{mac: "ea:63:99:6d:ea:ee"}, true},
		{mv, neighHost{mac: "52:54:00:52:f8:6d"}, false},
		{ipv, quietHost{}, false},
	}
	for _, tc := range cases {
		r := Run(context.Background(), tc.host, exitGuest{0}, targets["modes"], []Check{tc.c}, Options{})[0]
		if r.Pass != tc.pass {
			t.Errorf("%s via %T: pass %v (%s), want %v", tc.c.ID, tc.host, r.Pass, r.Actual, tc.pass)
		}
		if !r.Pass && strings.HasPrefix(r.Actual, "MAC ") && (r.Cause != CauseModeNotHeld || !strings.Contains(strings.Join(r.Evidence, " "), tc.c.Mode)) {
			t.Errorf("%s: cause %q evidence %v, want %q naming %s", tc.c.ID, r.Cause, r.Evidence, CauseModeNotHeld, tc.c.Mode)
		}
	}
}

// A node may run the capstone app and containers of its own: both sets of
// checks are planned, and the app's proxy port stays the app's.
func TestAppAndContainers(t *testing.T) {
	yaml := `name: both
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
nodes:
  web:
    image: capstone
    app: capstone
    nics: [{net: lan, address: 192.0.2.10/24}]
    containers:
      side: {network: podman, listen: 80, ports: ["8081:80"]}
`
	l := parseLab(t, yaml)
	tg := fileTarget(l, "web")
	tg.Containers = capstoneTarget().Containers
	runs := LabMatrix(l, map[string]Target{"web": tg})
	checkLabIDs(t, runs)
	for _, id := range []string{"http:host->web:eth0:8080", "dns:api->db", "ping:web->web/side", "tcp:host->web:eth0:8081", "tcp:host->web:eth0:80"} {
		if _, _, ok := find(runs, id); !ok {
			t.Errorf("%s is not planned", id)
		}
	}
	if _, err := lab.Parse([]byte(strings.Replace(yaml, `"8081:80"`, `"8080:80"`, 1)), "both.lab.yaml"); err == nil || !strings.Contains(err.Error(), "first: the capstone app's proxy") {
		t.Errorf("publishing the app's 8080 again: %v", err)
	}
	if _, err := lab.Parse([]byte(strings.Replace(yaml, "side:", "db:", 1)), "both.lab.yaml"); err == nil || !strings.Contains(err.Error(), "is app capstone's own container db") {
		t.Errorf("a container named like the app's db: %v", err)
	}
}

// capmacLab is the built-in capstone-macvlan lab, with a declared check
// from the VM to its api appended, and its node running as Discover
// would see it (the app's containers on app-net).
func capmacLab(t *testing.T) (lab.Lab, map[string]Target) {
	t.Helper()
	b, err := templates.Lab("capstone-macvlan")
	if err != nil {
		t.Fatal(err)
	}
	l := parseLab(t, string(b)+"checks:\n  - {from: capstone, to: capstone/api, tcp: 5000}\n")
	return l, map[string]Target{"capstone": capstoneTarget()}
}

// TestCapstoneMacvlanChecks: the api's macvlan attachment adds the host
// reaching it on its own address (ping, the API's JSON from the database
// on 5000) and the parent VM not reaching it (expected blocked, mode
// macvlan); every capstone check stays, the api still on app-net for the
// VM, the proxy and declared checks.
func TestCapstoneMacvlanChecks(t *testing.T) {
	l, targets := capmacLab(t)
	runs := LabMatrix(l, targets)
	checkLabIDs(t, runs)
	plain, err := lab.LoadRef("capstone")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range LabMatrix(plain, targets)["capstone"] {
		if got, _, ok := find(runs, c.ID); !ok || got.To != c.To || got.Want != c.Want {
			t.Errorf("capstone's %s: planned %v, to %s want %q; want to %s, %q", c.ID, ok, got.To, got.Want, c.To, c.Want)
		}
	}
	mv := netip.MustParseAddr("192.0.2.60")
	want := []struct {
		id, addr string
		want     Want
		mode     string
		requires []string
	}{
		{"ping:host->capstone/api", "192.0.2.60", WantReply, "", nil},
		{"http:host->capstone/api:5000", "http://192.0.2.60:5000/", WantAPI, "", nil},
		{"ping:capstone->capstone/api", "192.0.2.60", WantNoReply, lab.ModeMacvlan, []string{"ping:host->capstone/api"}},
		{"neigh:host->capstone/api", "192.0.2.60", WantOwnMAC, lab.ModeMacvlan, nil},
		{"checks[0]:tcp:capstone->capstone/api:5000", "10.89.0.3:5000", WantOpen, "", nil},
	}
	for _, w := range want {
		c, run, ok := find(runs, w.id)
		switch {
		case !ok:
			t.Errorf("%s is not planned", w.id)
		case run != "capstone" || c.Want != w.want || c.Mode != w.mode || !slices.Equal(c.Requires, w.requires) || c.Address != w.addr:
			t.Errorf("%s: run %s want %q mode %q requires %v address %s; want run capstone, %q, %q, %v, %s", w.id, run, c.Want, c.Mode, c.Requires, c.Address, w.want, w.mode, w.requires, w.addr)
		case c.Unknown != "":
			t.Errorf("%s: %s", w.id, c.Unknown)
		case strings.HasPrefix(w.id, "checks[") != (c.To != mv) || (c.NIC != 1 && c.From.Kind == OnHost):
			t.Errorf("%s: to %s on NIC %d", w.id, c.To, c.NIC)
		}
	}
	if c, _, _ := find(runs, "ping:capstone->api"); c.To != netip.MustParseAddr("10.89.0.3") {
		t.Errorf("the VM pings the api at %s, want its app-net address 10.89.0.3", c.To)
	}
	if n := len(runs["capstone"]); n != 21+4+1 {
		t.Errorf("%d checks, want the capstone's 21, 4 for the attachment and 1 declared", n)
	}
}

// TestCapstoneMacvlanJudgement: the API's answer on the macvlan address
// passes, a refusal fails; the parent's blocked ping passes unanswered and
// fails with the mode's cause when it gets through.
func TestCapstoneMacvlanJudgement(t *testing.T) {
	l, targets := capmacLab(t)
	runs := LabMatrix(l, targets)
	get := func(id string) Check {
		c, _, ok := find(runs, id)
		if !ok {
			t.Fatalf("%s is not planned", id)
		}
		c.Requires = nil
		return c
	}
	tg := targets["capstone"]
	w := healthyWorld()
	w.gets["http://192.0.2.60:5000/"] = httpAnswer{status: 200, body: apiJSON}
	if r := Run(context.Background(), w, w, tg, []Check{get("http:host->capstone/api:5000")}, Options{})[0]; !r.Pass {
		t.Errorf("the API's JSON on its macvlan address: %s", r.Actual)
	}
	delete(w.gets, "http://192.0.2.60:5000/")
	if r := Run(context.Background(), w, w, tg, []Check{get("http:host->capstone/api:5000")}, Options{})[0]; r.Pass {
		t.Errorf("a refused GET on the macvlan address passed: %s", r.Actual)
	}
	parent := get("ping:capstone->capstone/api")
	if r := Run(context.Background(), quietHost{}, exitGuest{1}, tg, []Check{parent}, Options{})[0]; !r.Pass {
		t.Errorf("the parent's unanswered ping: %s", r.Actual)
	}
	if r := Run(context.Background(), quietHost{}, exitGuest{0}, tg, []Check{parent}, Options{})[0]; r.Pass || r.Cause != CauseModeNotHeld {
		t.Errorf("the parent reaching its macvlan child: pass %v cause %q, want %q", r.Pass, r.Cause, CauseModeNotHeld)
	}
	reach := parent
	reach.Want, reach.ID = WantReply, "reach"
	if r := Run(context.Background(), quietHost{}, exitGuest{1}, tg, []Check{reach}, Options{})[0]; r.Cause != CauseMacvlanParent {
		t.Errorf("a reach expectation from the parent: cause %q (%s), want %q", r.Cause, r.Actual, CauseMacvlanParent)
	}
}
