package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"vmnet/internal/lab"
)

// officeExtra are declared checks beside office's own three, one per new
// kind of check: checks[3] on.
const officeExtra = `  - {from: client, to: web:lan, tcp: 8080}
  - {from: client, to: 203.0.113.5, ping: true, expect: blocked}
  - {from: client, to: web, dns: web.office}
  - {from: client, to: web:lan, http: 5000, expect: blocked}
  - {from: web/proxy, to: client, ping: true}
`

func probeArgv(script, name string, args ...string) string {
	return strings.Join(append([]string{"sh", "-c", script, name}, args...), " ")
}

// inspectJSON is podman container inspect output for cs.
func inspectJSON(cs []Container) string {
	var list []map[string]any
	for _, c := range cs {
		list = append(list, map[string]any{"Name": c.Name, "State": map[string]any{"Status": c.State, "Health": map[string]string{"Status": c.Health}},
			"NetworkSettings": map[string]any{"Networks": map[string]any{AppNetwork: map[string]string{"IPAddress": c.IP.String(), "Gateway": c.Gateway.String()}}}})
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// officeWorld is the office lab running and healthy, with officeExtra:
// the host's view (pings, connects, GETs, links) and each node's guest.
type officeWorld struct {
	l            lab.Lab
	host         *world
	web, client  *world
	targets      map[string]Target
	clientIsDown bool
}

func newOfficeWorld(t *testing.T) *officeWorld {
	l, err := lab.Parse([]byte(readFile(t, "../../examples/office.lab.yaml")+officeExtra), "office.lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := &officeWorld{l: l, host: healthyWorld(), web: healthyWorld(), targets: officeTargets()}
	lan := o.host.links["br0"]
	lan.Name = "lan"
	o.host.links["lan"] = lan
	o.host.links["vnet1"] = Link{Name: "vnet1", Exists: true, Up: true, OperState: "unknown", Master: "lan"}
	o.host.links["vnet2"] = Link{Name: "vnet2", Exists: true, Up: true, OperState: "unknown", Master: "lan"}
	o.host.links["vnet3"] = Link{Name: "vnet3", Exists: true, Up: true, OperState: "unknown", Master: "vmnet-back"}
	o.host.links["vmnet-back"] = Link{Name: "vmnet-back", Exists: true, Up: true, OperState: "up", Addrs: pfx("203.0.113.1/24")}
	o.web.guest["podman container inspect db api proxy"] = says(inspectJSON(capstoneTarget().Containers))
	o.web.guest["ping -c 1 -W 2 -I eth1 192.0.2.20"] = says("")
	o.web.guest["podman exec proxy ping -c 1 -W 2 192.0.2.20"] = says("")
	o.client = &world{guest: map[string]guestAnswer{
		"ping -c 1 -W 2 -I eth0 192.0.2.1":                                   says(""),
		"ping -c 1 -W 2 -I eth1 203.0.113.1":                                 says(""),
		"ping -c 1 -W 2 -I eth0 192.0.2.10":                                  says(""),
		probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:8080/", "10"): says(apiJSON + "\n200"),
		probeArgv(tcpScript, "vmnet-tcp", "192.0.2.10", "8080", "2"):         says(""),
		"ping -c 1 -W 2 -I eth1 203.0.113.5":                                 exit(1, ""),
		probeArgv(dnsScript, "vmnet-dns", "web.office"):                      says("192.0.2.10      web.office\n"),
		probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:5000/", "10"): exit(probeClosed, ""),
		"sh -c " + guestLinksScript: says(`2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\    link/ether 52:54:00:bb:00:01 brd ff:ff:ff:ff:ff:ff
3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 state UP\    link/ether 52:54:00:bb:00:02 brd ff:ff:ff:ff:ff:ff
@@vmnet@@
2: eth0    inet 192.0.2.20/24 scope global eth0
3: eth1    inet 203.0.113.150/24 scope global eth1
`),
		"nft list ruleset": exit(127, "sh: nft: not found"),
	}}
	return o
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// run checks the office lab; the results by ID, and their IDs in order.
func (o *officeWorld) run(t *testing.T) (map[string]Result, []string) {
	t.Helper()
	nodes := map[string]LabNode{}
	web := o.targets["web"]
	web.Containers = nil // Discover finds them
	nodes["web"] = LabNode{Target: web, Guest: o.web}
	if !o.clientIsDown {
		nodes["client"] = LabNode{Target: o.targets["client"], Guest: o.client}
	}
	rep := RunLab(context.Background(), o.host, o.l, nodes, Options{})
	if rep.VM != "office" || rep.Matrix != MatrixLab {
		t.Errorf("report of %q, matrix %q", rep.VM, rep.Matrix)
	}
	out := map[string]Result{}
	var ids []string
	for _, r := range rep.Results {
		if _, dup := out[r.ID]; dup {
			t.Fatalf("two results with ID %s", r.ID)
		}
		out[r.ID] = r
		ids = append(ids, r.ID)
	}
	return out, ids
}

func TestLabHealthy(t *testing.T) {
	o := newOfficeWorld(t)
	res, ids := o.run(t)
	for _, id := range ids {
		if r := res[id]; !r.Pass {
			t.Errorf("%s failed: %s (%s at %s; %v)", id, r.Actual, r.Cause, r.Hop, r.Evidence)
		}
	}
	// Node by node in file order, then the declared checks in file order.
	if ids[0] != "ping:host->web:eth0" {
		t.Errorf("the first result is %s, want web's first derived check", ids[0])
	}
	for i, id := range ids[len(ids)-len(o.l.Checks):] {
		if !strings.HasPrefix(id, fmt.Sprintf("checks[%d]:", i)) {
			t.Errorf("declared check %d is %s; order: %v", i, id, ids)
		}
	}
	if webEnd, clientStart := indexOf(ids, "ping:web->client:lan"), indexOf(ids, "ping:host->client:eth0"); webEnd < 0 || clientStart < webEnd {
		t.Errorf("web's checks do not all come before client's: %v", ids)
	}
}

func indexOf(ids []string, id string) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

func TestLabFailures(t *testing.T) {
	type want struct {
		pass   bool
		cause  Cause
		actual string // a part
	}
	noAnswer := fmt.Errorf("ping: %w", ErrNoAnswer)
	for _, tc := range []struct {
		name   string
		break_ func(o *officeWorld)
		wants  map[string]want
	}{
		{"body does not match", func(o *officeWorld) {
			o.client.guest[probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:8080/", "10")] = says("<h1>It works</h1>\n200")
		}, map[string]want{"checks[1]:http:client->web:lan:8080": {false, CauseServiceError, `200 but the body does not match "PostgreSQL"`}}},
		{"http error status", func(o *officeWorld) {
			o.client.guest[probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:8080/", "10")] = says("PostgreSQL is down\n503")
		}, map[string]want{"checks[1]:http:client->web:lan:8080": {false, CauseServiceError, "HTTP 503"}}},
		{"http no answer", func(o *officeWorld) {
			o.client.guest[probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:8080/", "10")] = exit(probeNoAnswer, "")
		}, map[string]want{"checks[1]:http:client->web:lan:8080": {false, CauseUnknown, "no answer within 10s"}}},
		{"blocked port is open", func(o *officeWorld) {
			delete(o.host.dials, netip.MustParseAddrPort("192.0.2.10:5432"))
			o.host.dials[netip.MustParseAddrPort("192.0.2.10:5432")] = nil
		},
			map[string]want{"checks[2]:tcp:host->web:lan:5432": {false, CausePortOpen, "open"}, "tcp:host->web:eth1:5432": {false, CausePortOpen, "open"}}},
		{"blocked port's control failed", func(o *officeWorld) { o.host.pings[a("192.0.2.10")] = noAnswer },
			map[string]want{"checks[2]:tcp:host->web:lan:5432": {false, CauseInconclusive, "proves nothing: ping:host->web:eth1 failed"}, "ping:host->web:eth1": {false, CauseUnknown, "no reply"}}},
		{"port closed that must be open", func(o *officeWorld) {
			o.client.guest[probeArgv(tcpScript, "vmnet-tcp", "192.0.2.10", "8080", "2")] = exit(probeClosed, "")
		}, map[string]want{"checks[3]:tcp:client->web:lan:8080": {false, CauseUnknown, "closed (refused)"}}},
		{"tcp probe itself fails", func(o *officeWorld) {
			o.client.guest[probeArgv(tcpScript, "vmnet-tcp", "192.0.2.10", "8080", "2")] = exit(127, "sh: timeout: not found")
		}, map[string]want{"checks[3]:tcp:client->web:lan:8080": {false, CauseUnknown, "probe exit 127: sh: timeout: not found"}}},
		{"blocked ping answered", func(o *officeWorld) { o.client.guest["ping -c 1 -W 2 -I eth1 203.0.113.5"] = says("") },
			map[string]want{"checks[4]:ping:client->203.0.113.5": {false, CauseNotBlocked, "reply, but the path must be blocked"}}},
		{"blocked ping cannot be sent", func(o *officeWorld) {
			o.client.guest["ping -c 1 -W 2 -I eth1 203.0.113.5"] = exit(2, "ping: bad address")
		}, map[string]want{"checks[4]:ping:client->203.0.113.5": {false, CauseUnknown, "ping: bad address"}}},
		{"blocked ping's control failed", func(o *officeWorld) { o.client.guest["ping -c 1 -W 2 -I eth1 203.0.113.1"] = exit(1, "") },
			map[string]want{"checks[4]:ping:client->203.0.113.5": {false, CauseInconclusive, "proves nothing: ping:client->host:back failed"},
				"ping:client->host:back": {false, CauseUnknown, "no reply within 2s"}}},
		{"name not found", func(o *officeWorld) { o.client.guest[probeArgv(dnsScript, "vmnet-dns", "web.office")] = exit(2, "") },
			map[string]want{"checks[5]:dns:client->web": {false, CauseUnknown, "not found"}}},
		{"blocked http answered", func(o *officeWorld) {
			o.client.guest[probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:5000/", "10")] = says("{}\n200")
		}, map[string]want{"checks[6]:http:client->web:lan:5000": {false, CauseNotBlocked, "HTTP 200, but the path must be blocked"}}},
		{"blocked http's control failed", func(o *officeWorld) { o.client.guest["ping -c 1 -W 2 -I eth0 192.0.2.10"] = exit(1, "") },
			map[string]want{"checks[6]:http:client->web:lan:5000": {false, CauseInconclusive, "proves nothing: ping:client->web:lan failed"},
				"ping:client->web:lan": {false, CauseUnknown, "no reply"}, "checks[0]:ping:client->web:lan": {false, CauseUnknown, "no reply"}}},
		{"web's lan tap detached", func(o *officeWorld) {
			// The client's own path is healthy: diagnosis walks web's, the far end.
			o.host.links["vnet1"] = Link{Name: "vnet1", Exists: true, Up: true, OperState: "unknown"}
			o.client.guest["ping -c 1 -W 2 -I eth0 192.0.2.10"] = exit(1, "")
		}, map[string]want{"checks[6]:http:client->web:lan:5000": {false, CauseInconclusive, "proves nothing: ping:client->web:lan failed"},
			"ping:client->web:lan": {false, CauseTapNotAttached, "no reply"}, "checks[0]:ping:client->web:lan": {false, CauseTapNotAttached, "no reply"}}},
		{"container ping fails", func(o *officeWorld) { o.web.guest["podman exec proxy ping -c 1 -W 2 192.0.2.20"] = exit(1, "") },
			map[string]want{"checks[7]:ping:web/proxy->client": {false, CauseUnknown, "no reply"}}},
		{"client not running", func(o *officeWorld) { o.clientIsDown = true }, map[string]want{
			"ping:host->client:eth0":              {false, CauseNotRunning, "node client is not running: 'vmnet lab up office --node client' starts it"},
			"ping:web->client:lan":                {false, CauseNotRunning, "node client is not running"},
			"checks[1]:http:client->web:lan:8080": {false, CauseNotRunning, "node client is not running"},
			"checks[7]:ping:web/proxy->client":    {false, CauseNotRunning, "node client is not running"},
			"checks[2]:tcp:host->web:lan:5432":    {true, "", "closed"},
			"ping:host->web:eth1":                 {true, "", "reply"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOfficeWorld(t)
			tc.break_(o)
			res, ids := o.run(t)
			for id, w := range tc.wants {
				r, ok := res[id]
				if !ok {
					t.Errorf("%s: no such result; have %v", id, ids)
					continue
				}
				if r.Pass != w.pass || r.Cause != w.cause || !strings.Contains(r.Actual, w.actual) {
					t.Errorf("%s: pass %v cause %q actual %q (hop %q, %v); want pass %v cause %q actual ~ %q", id, r.Pass, r.Cause, r.Actual, r.Hop, r.Evidence, w.pass, w.cause, w.actual)
				}
			}
			for _, id := range ids {
				if _, named := tc.wants[id]; !named && !res[id].Pass && !requiresAny(res[id], tc.wants) && !(o.clientIsDown && res[id].Cause == CauseNotRunning) {
					t.Errorf("%s failed too: %s (%s)", id, res[id].Actual, res[id].Cause)
				}
			}
			if o.clientIsDown && len(o.client.calls) > 0 {
				t.Errorf("the guest of a node that is not running was asked: %v", o.client.calls)
			}
		})
	}
}

// requiresAny: r is inconclusive because it needs a check the case broke.
func requiresAny[V any](r Result, broken map[string]V) bool {
	for _, id := range r.Requires {
		if _, ok := broken[id]; ok && r.Cause == CauseInconclusive {
			return true
		}
	}
	return false
}

// barrier holds every caller until n have arrived, or until it gives up:
// n nodes whose first commands all wait here prove the nodes run at once.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived map[string]bool
	all     chan struct{}
}

func newBarrier(n int) *barrier {
	return &barrier{n: n, arrived: map[string]bool{}, all: make(chan struct{})}
}

// wait reports whether all n arrived within a few seconds.
func (b *barrier) wait(who string) bool {
	b.mu.Lock()
	if !b.arrived[who] {
		b.arrived[who] = true
		if len(b.arrived) == b.n {
			close(b.all)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.all:
		return true
	case <-time.After(5 * time.Second):
		return false
	}
}

// slowGuest is a tiny node's serial console: every ping answers, one
// command at a time, and the first waits at the barrier.
type slowGuest struct {
	name     string
	b        *barrier
	mu       sync.Mutex
	inFlight int
	max      int
	missed   bool
}

func (g *slowGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	g.mu.Lock()
	g.inFlight++
	g.max = max(g.max, g.inFlight)
	g.mu.Unlock()
	defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
	if !g.b.wait(g.name) {
		g.mu.Lock()
		g.missed = true
		g.mu.Unlock()
	}
	if argv[0] != "ping" {
		return Output{}, errors.New("the slow guest only pings")
	}
	return Output{}, nil
}

// Eight tiny nodes on one bridge, without guest agents: each node's
// commands go one at a time, but the nodes run at once (the barrier holds
// the first command of each until all eight have started).
func TestLabEightTinyNodesAtOnce(t *testing.T) {
	yaml := "name: eight\nnetworks:\n  lan: {kind: bridge, address: 192.0.2.1/24}\nnodes:\n"
	for i := 1; i <= 8; i++ {
		yaml += fmt.Sprintf("  n%d: {image: tiny, nics: [{net: lan, address: 192.0.2.%d/24}]}\n", i, 10+i)
	}
	l := parseLab(t, yaml)
	b := newBarrier(8)
	nodes := map[string]LabNode{}
	guests := map[string]*slowGuest{}
	for _, name := range l.NodeOrder {
		guests[name] = &slowGuest{name: name, b: b}
		nodes[name] = LabNode{Target: fileTarget(l, name), Guest: guests[name]}
	}
	host := &world{pings: map[netip.Addr]error{}}
	rep := RunLab(context.Background(), host, l, nodes, Options{Parallel: 4})
	if n := rep.Failed(); n > 0 || len(rep.Results) != 8*(2+7) {
		t.Errorf("%d of %d checks failed, want 0 of %d", n, len(rep.Results), 8*9)
	}
	for name, g := range guests {
		if g.missed || g.max != 1 {
			t.Errorf("%s: waited for the other nodes in vain %v; %d commands at once (want 1: a serial console)", name, g.missed, g.max)
		}
	}
}

// slowHost is a host whose connects wait at a barrier: closed ports are
// tried all at once, not one after another.
type slowHost struct {
	*world
	b *barrier
}

func (h slowHost) Dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) error {
	if !h.b.wait(to.String()) {
		return errors.New("dialled alone: the closed ports were tried one after another")
	}
	return h.world.Dial(ctx, to, timeout)
}

func TestLabClosedPortsAtOnce(t *testing.T) {
	o := newOfficeWorld(t)
	// web's four closed ports (the declared one is the same address as one of them).
	host := slowHost{world: o.host, b: newBarrier(4)}
	web := o.targets["web"]
	nodes := map[string]LabNode{"web": {Target: web, Guest: o.web}, "client": {Target: o.targets["client"], Guest: o.client}}
	rep := RunLab(context.Background(), host, o.l, nodes, Options{})
	for _, r := range rep.Results {
		if r.Method == MethodTCP && r.From.Kind == OnHost && !r.Pass {
			t.Errorf("%s: %s", r.ID, r.Actual)
		}
	}
}

// TestAccelOf: a lab's report names the accelerator its running nodes have,
// each once, sorted; a node that did not say (not running) adds nothing.
func TestAccelOf(t *testing.T) {
	node := func(accel string) LabNode { return LabNode{Target: Target{Accel: accel}} }
	for _, tc := range []struct {
		nodes map[string]LabNode
		want  string
	}{
		{map[string]LabNode{}, ""},
		{map[string]LabNode{"a": node("qemu"), "b": node("qemu")}, "qemu"},
		{map[string]LabNode{"a": node("qemu"), "b": node("kvm"), "c": node("")}, "kvm,qemu"},
	} {
		if got := accelOf(tc.nodes); got != tc.want {
			t.Errorf("accelOf(%v) = %q, want %q", tc.nodes, got, tc.want)
		}
	}
}
