package check

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/lab"
)

func officeLab(t *testing.T) lab.Lab {
	t.Helper()
	l, err := lab.Load("../../examples/office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// officeTargets are office's two nodes as Describe and Discover would see
// them running: web is the capstone VM (its lan NIC on the bridge lan),
// client a tiny VM without a guest agent.
func officeTargets() map[string]Target {
	web := capstoneTarget()
	web.Name = "web"
	web.NICs[1].Bridge = "lan"
	client := Target{Name: "client", Spec: "tiny", NICs: []NIC{
		{Index: 0, Guest: "eth0", Address: a("192.0.2.20"), Prefix: 24, Source: "static",
			Bridge: "lan", Tap: "vnet2", MAC: "52:54:00:bb:00:01", Host: a("192.0.2.1"), HostPrefix: 24},
		{Index: 1, Guest: "eth1", Address: a("203.0.113.150"), Prefix: 24, Source: "lease", Network: "back",
			Bridge: "vmnet-back", Tap: "vnet3", MAC: "52:54:00:bb:00:02", Host: a("203.0.113.1"), HostPrefix: 24},
	}}
	return map[string]Target{"web": web, "client": client}
}

// renderLab is a lab's plan for golden files: each run, then its checks.
func renderLab(l lab.Lab, runs map[string][]Check) string {
	var b strings.Builder
	for _, run := range append(slices.Clone(l.NodeOrder), HostRun) {
		if len(runs[run]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "== run %s\n", run)
		b.WriteString(renderPlan(runs[run]))
		for _, c := range runs[run] {
			if c.Path != "" || c.Body != "" {
				fmt.Fprintf(&b, "%s: path %s body %q\n", c.ID, c.Path, c.Body)
			}
		}
	}
	return b.String()
}

func TestLabMatrixGolden(t *testing.T) {
	l := officeLab(t)
	half := officeTargets()
	delete(half, "client")
	golden(t, "lab-office.txt", renderLab(l, LabMatrix(l, officeTargets())))
	golden(t, "lab-office-client-down.txt", renderLab(l, LabMatrix(l, half)))
}

// parseLab parses a small lab written for a test.
func parseLab(t *testing.T, yaml string) lab.Lab {
	t.Helper()
	l, err := lab.Parse([]byte(yaml), "test.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// find is the check id in plan and the run that holds it.
func find(runs map[string][]Check, id string) (Check, string, bool) {
	for run, checks := range runs {
		for _, c := range checks {
			if c.ID == id {
				return c, run, true
			}
		}
	}
	return Check{}, "", false
}

// twoNodes is a lab where a and b share lan only: a's lan NIC is its
// second, b's its second too; b's first is on back, which a lacks.
const twoNodes = `name: two
networks:
  nat0: {kind: nat, cidr: 198.51.100.0/24}
  lan:  {kind: bridge, address: 192.0.2.1/24}
  back: {kind: isolated, cidr: 203.0.113.0/24}
nodes:
  a: {image: tiny, nics: [{net: nat0, address: 198.51.100.5/24}, {net: lan, address: 192.0.2.5/24}]}
  b: {image: tiny, nics: [{net: back, address: 203.0.113.6/24}, {net: lan, address: 192.0.2.6/24}]}
`

// twoTargets are twoNodes' nodes running, with their file's addresses.
func twoTargets(l lab.Lab) map[string]Target {
	return map[string]Target{"a": fileTarget(l, "a"), "b": fileTarget(l, "b")}
}

func TestLabMatrix(t *testing.T) {
	type want struct {
		id, run  string
		from     Place
		to       string // the address; "" for none
		nic      int
		want     Want
		requires []string
		unknown  string // a part of Unknown; "" for none
		ctr      string
	}
	vm, host := Place{Kind: OnVM}, Place{Kind: OnHost}
	api := Place{Kind: OnContainer, Container: "api"}
	for _, tc := range []struct {
		name    string
		lab     string // "" for office
		checks  string // appended under checks:
		targets func(lab.Lab) map[string]Target
		wants   []want
		absent  []string
	}{
		{name: "office", targets: func(lab.Lab) map[string]Target { return officeTargets() },
			wants: []want{
				{"ping:client->web:lan", "client", vm, "192.0.2.10", 0, WantReply, nil, "", ""},
				{"ping:web->client:lan", "web", vm, "192.0.2.20", 1, WantReply, nil, "", ""},
				{"ping:host->client:eth1", "client", host, "203.0.113.150", 1, WantReply, nil, "", ""},
				{"checks[0]:ping:client->web:lan", "client", vm, "192.0.2.10", 0, WantReply, nil, "", ""},
				{"checks[1]:http:client->web:lan:8080", "client", vm, "192.0.2.10", 0, WantBody, nil, "", ""},
				{"checks[2]:tcp:host->web:lan:5432", "web", host, "192.0.2.10", 1, WantClosed, []string{"ping:host->web:eth1"}, "", ""},
			},
			absent: []string{"ping:client->web:nat0", "ping:web->client:back", "ping:client->web:back"}},
		{name: "client down", targets: func(lab.Lab) map[string]Target { t := officeTargets(); delete(t, "client"); return t },
			wants: []want{
				{"ping:web->client:lan", "web", vm, "192.0.2.20", 1, WantReply, nil, "node client is not running: 'vmnet lab up office --node client' starts it", ""},
				{"ping:host->client:eth0", "client", host, "192.0.2.20", 0, WantReply, nil, "node client is not running", ""},
				{"checks[1]:http:client->web:lan:8080", "client", vm, "192.0.2.10", 0, WantBody, nil, "node client is not running", ""},
				{"checks[2]:tcp:host->web:lan:5432", "web", host, "192.0.2.10", 1, WantClosed, []string{"ping:host->web:eth1"}, "", ""},
			}},
		{name: "to node: a shared network, or the host's first NIC", lab: twoNodes,
			checks: "  - {from: a, to: b, ping: true}\n  - {from: host, to: b, ping: true}\n  - {from: b, to: a, tcp: 22}\n",
			wants: []want{
				{"checks[0]:ping:a->b", "a", vm, "192.0.2.6", 1, WantReply, nil, "", ""},
				{"checks[1]:ping:host->b", "b", host, "203.0.113.6", 0, WantReply, nil, "", ""},
				{"checks[2]:tcp:b->a:22", "b", vm, "192.0.2.5", 1, WantOpen, nil, "", ""},
				{"ping:a->b:lan", "a", vm, "192.0.2.6", 1, WantReply, nil, "", ""},
			},
			absent: []string{"ping:a->b:nat0", "ping:a->b:back"}},
		{name: "negative checks need their controls", lab: twoNodes,
			checks: "  - {from: a, to: b:lan, ping: true, expect: blocked}\n" +
				"  - {from: a, to: b, tcp: 5432, expect: blocked}\n" +
				"  - {from: host, to: b:back, http: 80, expect: blocked}\n" +
				"  - {from: host, to: 192.0.2.99, tcp: 22, expect: blocked}\n" +
				"  - {from: host, to: a:lan, ping: true, expect: blocked}\n" +
				"  - {from: a, to: 203.0.113.77, tcp: 22, expect: blocked}\n" +
				"  - {from: a, to: b, dns: b.lab, expect: blocked}\n",
			wants: []want{
				{"checks[0]:ping:a->b:lan", "a", vm, "192.0.2.6", 1, WantNoReply, []string{"ping:host->b:eth1", "ping:a->host:lan"}, "", ""},
				{"checks[1]:tcp:a->b:5432", "a", vm, "192.0.2.6", 1, WantClosed, []string{"ping:a->b:lan"}, "", ""},
				{"checks[2]:http:host->b:back:80", "b", host, "203.0.113.6", 0, WantNoHTTP, []string{"ping:host->b:eth0"}, "", ""},
				{"checks[3]:tcp:host->192.0.2.99:22", HostRun, host, "192.0.2.99", -1, WantClosed, []string{"ping:host->192.0.2.99"}, "", ""},
				{"ping:host->192.0.2.99", HostRun, host, "192.0.2.99", -1, WantReply, nil, "", ""},
				{"checks[4]:ping:host->a:lan", "a", host, "192.0.2.5", 1, WantNoReply, []string{"ping:a->host:lan"}, "", ""},
				{"checks[5]:tcp:a->203.0.113.77:22", "a", vm, "203.0.113.77", -1, WantClosed, []string{"ping:a->203.0.113.77"}, "", ""},
				{"ping:a->203.0.113.77", "a", vm, "203.0.113.77", -1, WantReply, nil, "", ""},
				{"checks[6]:dns:a->b", "a", vm, "", 1, WantUnresolved, []string{"ping:a->host:nat0"}, "", ""},
			}},
		{name: "a NIC the domain lacks", lab: twoNodes, checks: "  - {from: host, to: b:lan, ping: true}\n",
			targets: func(l lab.Lab) map[string]Target {
				ts := twoTargets(l)
				b := ts["b"]
				b.NICs = b.NICs[:1]
				ts["b"] = b
				return ts
			},
			wants: []want{{"checks[0]:ping:host->b:lan", "b", host, "", 1, WantReply, nil, "node b has no eth1: its domain has 1 NICs, the lab file gives it 2", ""},
				{"ping:a->b:lan", "a", vm, "", 1, WantReply, nil, "node b has no eth1", ""}}},
		{name: "container refs", lab: strings.Replace(twoNodes, "  b: {image: tiny,", "  b: {image: capstone, app: capstone,", 1),
			checks: "  - {from: a, to: b/db, ping: true}\n" +
				"  - {from: b, to: b/db, tcp: 5432}\n" +
				"  - {from: b/api, to: b/db, dns: db, expect: blocked}\n" +
				"  - {from: b/api, to: a:lan, http: 8080, body: ok, expect: blocked}\n" +
				"  - {from: host, to: a, dns: a.lab}\n" +
				"  - {from: a, to: b/proxy, tcp: 80}\n" +
				"  - {from: b/db, to: a, dns: a.lab, expect: blocked}\n",
			targets: func(l lab.Lab) map[string]Target {
				ts := twoTargets(l)
				b := ts["b"]
				b.Containers = capstoneTarget().Containers[:2] // no proxy
				ts["b"] = b
				return ts
			},
			wants: []want{
				{"checks[0]:ping:a->b/db", "a", vm, "10.89.0.2", -1, WantReply, nil, "", ""},
				{"checks[1]:tcp:b->b/db:5432", "b", vm, "10.89.0.2", -1, WantOpen, nil, "", "db"},
				{"checks[2]:dns:b/api->b/db", "b", api, "10.89.0.2", -1, WantUnresolved, []string{"dns:api->db"}, "", "db"},
				{"checks[3]:http:b/api->a:lan:8080", "b", api, "192.0.2.5", 1, WantNoHTTP, []string{"ping:b/api->a:lan"}, "", ""},
				{"ping:b/api->a:lan", "b", api, "192.0.2.5", 1, WantReply, nil, "", ""},
				{"checks[4]:dns:host->a", "a", host, "", 0, WantResolves, nil, "look the name up from a node", ""},
				{"checks[5]:tcp:a->b/proxy:80", "a", vm, "", -1, WantOpen, nil, "container proxy does not exist", ""},
				{"checks[6]:dns:b/db->a", "b", Place{Kind: OnContainer, Container: "db"}, "", 1, WantUnresolved, []string{"ping:db->b"}, "", ""},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := officeLab(t)
			if tc.lab != "" {
				if tc.checks != "" {
					tc.lab += "checks:\n" + tc.checks
				}
				l = parseLab(t, tc.lab)
			}
			targets := tc.targets
			if targets == nil {
				targets = twoTargets
			}
			runs := LabMatrix(l, targets(l))
			for _, w := range tc.wants {
				c, run, ok := find(runs, w.id)
				if !ok {
					t.Errorf("%s: not planned; plan:\n%s", w.id, renderLab(l, runs))
					continue
				}
				to := ""
				if c.To.IsValid() {
					to = c.To.String()
				}
				if run != w.run || c.From != w.from || to != w.to || c.NIC != w.nic || c.Want != w.want ||
					!slices.Equal(c.Requires, w.requires) || c.Container != w.ctr ||
					(w.unknown == "") != (c.Unknown == "") || !strings.Contains(c.Unknown, w.unknown) {
					t.Errorf("%s: run %s from %+v to %q nic %d want %s requires %v container %q unknown %q;\nwant run %s from %+v to %q nic %d want %s requires %v container %q unknown %q",
						w.id, run, c.From, to, c.NIC, c.Want, c.Requires, c.Container, c.Unknown,
						w.run, w.from, w.to, w.nic, w.want, w.requires, w.ctr, w.unknown)
				}
			}
			for _, id := range tc.absent {
				if _, _, ok := find(runs, id); ok {
					t.Errorf("%s is planned; the nodes share no such network", id)
				}
			}
			checkLabIDs(t, runs)
		})
	}
}

// checkLabIDs: every ID is unique across the lab, and every Requires
// names a planned check.
func checkLabIDs(t *testing.T, runs map[string][]Check) {
	t.Helper()
	seen := map[string]bool{}
	for _, checks := range runs {
		for _, c := range checks {
			if seen[c.ID] {
				t.Errorf("duplicate ID %s", c.ID)
			}
			seen[c.ID] = true
		}
	}
	for _, checks := range runs {
		for _, c := range checks {
			for _, r := range c.Requires {
				if !seen[r] {
					t.Errorf("%s requires %s, which is not planned", c.ID, r)
				}
			}
		}
	}
}

// Two capstone nodes on one bridge: their app checks would share IDs
// (dns:api->db, ping:db->host:lan); the lab names each after its node.
func TestLabMatrixTwoCapstones(t *testing.T) {
	l := parseLab(t, `name: pair
networks:
  lan: {kind: bridge, address: 192.0.2.1/24}
nodes:
  w1: {image: capstone, app: capstone, nics: [{net: lan, address: 192.0.2.11/24}]}
  w2: {image: capstone, app: capstone, nics: [{net: lan, address: 192.0.2.12/24}]}
checks:
  - {from: w1/api, to: w2, dns: db, expect: blocked}
`)
	targets := map[string]Target{}
	for _, n := range []string{"w1", "w2"} {
		t := fileTarget(l, n)
		t.Containers = capstoneTarget().Containers
		targets[n] = t
	}
	runs := LabMatrix(l, targets)
	checkLabIDs(t, runs)
	for _, id := range []string{"dns:w1/api->w1/db", "dns:w2/api->w2/db", "ping:w1/db->host:lan", "ping:w1->w2:lan", "ping:w2->w1:lan"} {
		if _, _, ok := find(runs, id); !ok {
			t.Errorf("%s is not planned", id)
		}
	}
	if c, _, _ := find(runs, "checks[0]:dns:w1/api->w2"); !slices.Equal(c.Requires, []string{"dns:w1/api->w1/db"}) {
		t.Errorf("the blocked lookup requires %v, want its container's own lookup, renamed", c.Requires)
	}
}
