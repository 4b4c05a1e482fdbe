package check

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func run(t *testing.T, w *world, target Target) map[string]Result {
	t.Helper()
	results := Run(context.Background(), w, w, target, CapstoneMatrix(target), Options{})
	out := map[string]Result{}
	for _, r := range results {
		if _, dup := out[r.ID]; dup {
			t.Fatalf("two checks with ID %s", r.ID)
		}
		out[r.ID] = r
	}
	return out
}

func TestHealthyLabPasses(t *testing.T) {
	w := healthyWorld()
	target := capstoneTarget()
	res := run(t, w, target)
	if len(res) != 21 {
		t.Errorf("%d checks, want 21", len(res))
	}
	for id, r := range res {
		if !r.Pass {
			t.Errorf("%s failed: %s (hop %s, cause %s, evidence %q)", id, r.Actual, r.Hop, r.Cause, r.Evidence)
		}
		if r.Cause != "" || r.Hop != "" || r.Evidence != nil {
			t.Errorf("%s passed but has a diagnosis: %s %s %q", id, r.Hop, r.Cause, r.Evidence)
		}
	}
	if got := res["http:host->capstone:eth1:8080"].Actual; got != "200, PostgreSQL 15.8, visits 7" {
		t.Errorf("http actual = %q", got)
	}
	if got := res["tcp:host->capstone:eth1:5432"].Actual; !strings.HasPrefix(got, "closed (no answer") {
		t.Errorf("tcp actual = %q", got)
	}
	if got := res["dns:api->db"].Actual; got != "resolves to 10.89.0.2" {
		t.Errorf("dns actual = %q", got)
	}
	// No failure, no probes.
	for _, c := range w.calls {
		if strings.Contains(c, "nft") || strings.Contains(c, "host link") || strings.Contains(c, guestLinksScript) {
			t.Errorf("a passing run probed: %s", c)
		}
	}
}

// Each failure mode is reported at the right hop with the right cause. The
// checks not listed in want must pass.
func TestDiagnosis(t *testing.T) {
	type want struct {
		hop      string
		cause    Cause
		evidence string // a substring of one evidence line
	}
	const (
		ping1    = "ping:host->capstone:eth1"
		ping0    = "ping:host->capstone:eth0"
		vmBr0    = "ping:capstone->host:br0"
		http1    = "http:host->capstone:eth1:8080"
		http0    = "http:host->capstone:eth0:8080"
		tcp1db   = "tcp:host->capstone:eth1:5432"
		tcp1api  = "tcp:host->capstone:eth1:5000"
		tcp0db   = "tcp:host->capstone:eth0:5432"
		tcp0api  = "tcp:host->capstone:eth0:5000"
		dbBr0    = "ping:db->host:br0"
		apiBr0   = "ping:api->host:br0"
		proxyBr0 = "ping:proxy->host:br0"
	)
	// eth1Broken is what every check over eth1 says when a hop on it is broken.
	eth1Broken := func(hop string, cause Cause, evidence string) map[string]want {
		w := want{hop, cause, evidence}
		return map[string]want{
			ping1: w, vmBr0: w, http1: w, dbBr0: w, apiBr0: w, proxyBr0: w,
			tcp1db:  {hop, CauseInconclusive, ping1 + " must pass first"},
			tcp1api: {hop, CauseInconclusive, ping1 + " must pass first"},
		}
	}
	for _, tc := range []struct {
		name   string
		break_ func(w *world, tg *Target)
		want   map[string]want
	}{
		{
			name: "bridge missing",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				w.links["br0"] = Link{Name: "br0"}
			},
			want: eth1Broken("host:br0", CauseBridgeDown, "br0 does not exist on the host"),
		},
		{
			name: "bridge down",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				l := w.links["br0"]
				l.Up, l.OperState = false, "down"
				w.links["br0"] = l
			},
			want: eth1Broken("host:br0", CauseBridgeDown, "br0 is administratively down"),
		},
		{
			name: "tap without master",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				l := w.links["vnet1"]
				l.Master = ""
				w.links["vnet1"] = l
			},
			want: eth1Broken("tap vnet1", CauseTapNotAttached, "vnet1 is not a port of any bridge; it belongs in br0"),
		},
		{
			name: "tap in the wrong bridge",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				l := w.links["vnet1"]
				l.Master = "vmnet-nat0"
				w.links["vnet1"] = l
			},
			want: eth1Broken("tap vnet1", CauseTapNotAttached, "vnet1 is a port of vmnet-nat0, not of br0"),
		},
		{
			name: "tap gone",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				delete(w.links, "vnet1")
			},
			want: eth1Broken("tap vnet1", CauseTapNotAttached, "vnet1 (the host side of capstone:eth1) does not exist"),
		},
		{
			name: "tap down",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				l := w.links["vnet1"]
				l.Up = false
				w.links["vnet1"] = l
			},
			want: eth1Broken("tap vnet1", CauseTapDown, "vnet1 is a port of br0 but administratively down"),
		},
		{
			name: "host address gone from the bridge",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				l := w.links["br0"]
				l.Addrs = nil
				w.links["br0"] = l
			},
			want: func() map[string]want {
				m := eth1Broken("host:br0", CauseHostAddressMissing, "br0 does not have 192.0.2.1")
				// HTTP does not need the host's address on br0 in the diagnosis
				// (the host is the client, but so it is for ping): same hop.
				return m
			}(),
		},
		{
			name: "guest NIC down",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				w.guest["sh -c "+guestLinksScript] = says(strings.Replace(guestIP, "3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP>", "3: eth1: <BROADCAST,MULTICAST>", 1))
			},
			want: eth1Broken("capstone:eth1", CauseGuestNICDown, "eth1 is administratively down in the guest"),
		},
		{
			name: "guest NIC without carrier",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				w.guest["sh -c "+guestLinksScript] = says(strings.Replace(guestIP, "3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP>", "3: eth1: <NO-CARRIER,BROADCAST,MULTICAST,UP>", 1))
			},
			want: eth1Broken("capstone:eth1", CauseGuestNICDown, "eth1 has no carrier"),
		},
		{
			name: "guest NIC with another address",
			break_: func(w *world, tg *Target) {
				w.cutNIC(*tg, 1)
				w.guest["sh -c "+guestLinksScript] = says(strings.Replace(guestIP, "192.0.2.10/24", "192.0.2.99/24", 1))
			},
			want: eth1Broken("capstone:eth1", CauseGuestNICDown, "eth1 does not have 192.0.2.10 in the guest (it has 192.0.2.99/24)"),
		},
		{
			name: "firewall drops ping",
			break_: func(w *world, tg *Target) {
				w.pings[a("198.51.100.23")] = fmt.Errorf("%w", ErrNoAnswer)
				w.guest["nft list ruleset"] = says(strings.Replace(guestRuleset, "icmp type echo-request accept\n", "", 1))
			},
			want: map[string]want{
				ping0:   {"capstone firewall (input)", CauseFirewallDrop, "chain input in table inet vmnet (hook input, policy drop) has no rule accepting it"},
				tcp0db:  {"capstone firewall (input)", CauseInconclusive, ping0},
				tcp0api: {"capstone firewall (input)", CauseInconclusive, ping0},
			},
		},
		{
			name: "nothing found",
			break_: func(w *world, tg *Target) {
				w.pings[a("198.51.100.23")] = fmt.Errorf("%w", ErrNoAnswer)
			},
			want: map[string]want{
				ping0:   {"host → capstone:eth0", CauseUnknown, "chain input in table inet vmnet (hook input, policy drop) accepts it"},
				tcp0db:  {"host → capstone:eth0", CauseInconclusive, ping0},
				tcp0api: {"host → capstone:eth0", CauseInconclusive, ping0},
			},
		},
		{
			name: "database port open",
			break_: func(w *world, tg *Target) {
				w.dials[netip.AddrPortFrom(a("192.0.2.10"), DBPort)] = nil
				w.guest["nft list ruleset"] = says(strings.Replace(guestRuleset, "policy drop", "policy accept", 1))
			},
			want: map[string]want{
				tcp1db: {"capstone firewall (input)", CausePortOpen, "the host connected to 192.0.2.10:5432"},
			},
		},
		{
			name: "db stopped",
			break_: func(w *world, tg *Target) {
				w.stop(tg, "db")
				for _, u := range []string{"http://198.51.100.23:8080/", "http://192.0.2.10:8080/"} {
					w.gets[u] = httpAnswer{status: 500, body: `{"error": "connection to server at \"db\" (10.89.0.2), port 5432 failed: Connection refused"}`}
				}
				w.guest["podman exec api getent hosts db"] = exit(2, "")
			},
			want: map[string]want{
				"ping:capstone->db": {"capstone/db", CauseContainerNotRunning, "podman: container db is exited (code 137)"},
				"ping:db->capstone": {"capstone/db", CauseContainerNotRunning, "container db is exited"},
				dbBr0:               {"capstone/db", CauseContainerNotRunning, "container db is exited"},
				"dns:api->db":       {"capstone/db", CauseContainerNotRunning, "aardvark-dns answers only for running containers"},
				http1:               {"capstone/api → capstone/db", CauseContainerNotRunning, "the API answered 500"},
				http0:               {"capstone/api → capstone/db", CauseContainerNotRunning, "container db is exited"},
			},
		},
		{
			name: "api stopped",
			break_: func(w *world, tg *Target) {
				w.stop(tg, "api")
				for _, u := range []string{"http://198.51.100.23:8080/", "http://192.0.2.10:8080/"} {
					w.gets[u] = httpAnswer{status: 502, body: "<html><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></html>"}
				}
				w.guest["podman exec proxy getent hosts api"] = exit(2, "")
			},
			want: map[string]want{
				"ping:capstone->api": {"capstone/api", CauseContainerNotRunning, "podman: container api is exited"},
				"ping:api->capstone": {"capstone/api", CauseContainerNotRunning, ""},
				apiBr0:               {"capstone/api", CauseContainerNotRunning, ""},
				"dns:api->db":        {"capstone/api", CauseContainerNotRunning, "podman exec in api failed"},
				"dns:proxy->api":     {"capstone/api", CauseContainerNotRunning, ""},
				http1:                {"capstone/proxy → capstone/api", CauseContainerNotRunning, "the proxy answered 502"},
				http0:                {"capstone/proxy → capstone/api", CauseContainerNotRunning, ""},
			},
		},
		{
			// The inventory saw api running; it was removed before the
			// checks ran, so podman exec fails (125) and podman now says so.
			name: "api removed during the run",
			break_: func(w *world, tg *Target) {
				execFails(w, "api")
				w.guest["podman container exists api"] = exit(1, "")
			},
			want: map[string]want{
				"ping:api->capstone": {"capstone/api", CauseContainerNotRunning, "podman: container api does not exist now"},
				apiBr0:               {"capstone/api", CauseContainerNotRunning, "podman exec in api failed"},
				"dns:api->db":        {"capstone/api", CauseContainerNotRunning, "does not exist now"},
			},
		},
		{
			name: "api stopped during the run",
			break_: func(w *world, tg *Target) {
				execFails(w, "api")
				w.guest["podman container exists api"] = says("")
				w.guest["podman container inspect api"] = says(`[{"Name":"api","State":{"Status":"exited","Running":false,"ExitCode":137}}]`)
			},
			want: map[string]want{
				"ping:api->capstone": {"capstone/api", CauseContainerNotRunning, "podman: container api is exited (code 137) now"},
				apiBr0:               {"capstone/api", CauseContainerNotRunning, "is exited (code 137) now"},
				"dns:api->db":        {"capstone/api", CauseContainerNotRunning, "is exited (code 137) now"},
			},
		},
		{
			// podman fails (125) but the container exists and runs: not
			// the container's fault, and nothing else is blamed.
			name: "podman exec fails, api runs",
			break_: func(w *world, tg *Target) {
				execFails(w, "api")
				w.guest["podman container exists api"] = says("")
				w.guest["podman container inspect api"] = says(`[{"Name":"api","State":{"Status":"running","Running":true}}]`)
			},
			want: map[string]want{
				"ping:api->capstone": {"capstone/api → capstone:app-net", CauseUnknown, "podman: container api exists and runs"},
				apiBr0:               {"capstone/api → host:br0", CauseUnknown, "exists and runs"},
				"dns:api->db":        {"capstone/api → capstone/db", CauseUnknown, "exists and runs"},
			},
		},
		{
			name: "proxy stopped",
			break_: func(w *world, tg *Target) {
				w.stop(tg, "proxy")
				for _, u := range []string{"http://198.51.100.23:8080/", "http://192.0.2.10:8080/"} {
					w.gets[u] = httpAnswer{err: fmt.Errorf("%w", ErrRefused)}
				}
			},
			want: map[string]want{
				"ping:capstone->proxy": {"capstone/proxy", CauseContainerNotRunning, ""},
				"ping:proxy->capstone": {"capstone/proxy", CauseContainerNotRunning, ""},
				proxyBr0:               {"capstone/proxy", CauseContainerNotRunning, ""},
				"dns:proxy->api":       {"capstone/proxy", CauseContainerNotRunning, ""},
				http1:                  {"capstone/proxy", CauseContainerNotRunning, "vnet1 is a port of br0 and up"},
				http0:                  {"capstone/proxy", CauseContainerNotRunning, "podman: container proxy is exited"},
			},
		},
		{
			name: "no podman to exec with",
			break_: func(w *world, tg *Target) {
				tg.Containers[0].State, tg.Containers[0].Error = "unknown", "podman exit 127: sh: podman: not found"
				w.guest["podman exec db ping -c 1 -W 2 192.0.2.1"] = exit(127, "sh: podman: not found")
			},
			want: map[string]want{
				dbBr0: {"capstone/db → host:br0", CauseUnknown, "podman exec in db failed: sh: podman: not found"},
			},
		},
		{
			name: "DNS broken",
			break_: func(w *world, tg *Target) {
				w.guest["podman exec api getent hosts db"] = exit(2, "")
				w.guest["pidof aardvark-dns"] = exit(1, "")
			},
			want: map[string]want{
				"dns:api->db": {"capstone app-net DNS (aardvark-dns)", CauseDNS, "aardvark-dns is not running in the guest"},
			},
		},
		{
			name: "DNS answers wrongly",
			break_: func(w *world, tg *Target) {
				w.guest["podman exec proxy getent hosts api"] = says("10.89.0.99      api.dns.podman api\n")
			},
			want: map[string]want{
				"dns:proxy->api": {"capstone app-net DNS (aardvark-dns)", CauseDNS, "resolves to 10.89.0.99, but podman gives api 10.89.0.3"},
			},
		},
		{
			name: "database error while db runs",
			break_: func(w *world, tg *Target) {
				w.gets["http://192.0.2.10:8080/"] = httpAnswer{status: 503, body: `{"error": "FATAL:  password authentication failed for user \"app\""}`}
			},
			want: map[string]want{
				http1: {"capstone/api → capstone/db", CauseServiceError, "password authentication failed"},
			},
		},
		{
			name: "JSON without the database's answer",
			break_: func(w *world, tg *Target) {
				w.gets["http://192.0.2.10:8080/"] = httpAnswer{status: 200, body: `{"service": "api"}`}
			},
			want: map[string]want{
				http1: {"capstone/api", CauseServiceError, `body: {"service": "api"}`},
			},
		},
		{
			name: "port not published",
			break_: func(w *world, tg *Target) {
				w.gets["http://192.0.2.10:8080/"] = httpAnswer{err: fmt.Errorf("%w", ErrRefused)}
			},
			want: map[string]want{
				http1: {"capstone:8080", CauseNotListening, "the guest refused port 8080"},
			},
		},
		{
			name: "firewall drops the proxy port",
			break_: func(w *world, tg *Target) {
				w.gets["http://198.51.100.23:8080/"] = httpAnswer{err: fmt.Errorf("%w", ErrNoAnswer)}
				w.guest["nft list ruleset"] = says(strings.Replace(guestRuleset, "iifname \"eth*\" ct status dnat tcp dport 8080 accept", "tcp dport 8080 drop", 1))
			},
			want: map[string]want{
				http0: {"capstone firewall (forward)", CauseFirewallDrop, "has: tcp dport 8080 drop"},
			},
		},
		{
			name: "app-net bridge down",
			break_: func(w *world, tg *Target) {
				w.guest["podman exec db ping -c 1 -W 2 10.89.0.1"] = exit(1, "")
				w.guest["sh -c "+guestLinksScript] = says(strings.Replace(guestIP, "4: podman1: <BROADCAST,MULTICAST,UP,LOWER_UP>", "4: podman1: <BROADCAST,MULTICAST>", 1))
			},
			want: map[string]want{
				"ping:db->capstone": {"capstone:podman1", CauseBridgeDown, "podman1 (app-net's bridge, 10.89.0.1) is administratively down"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := healthyWorld()
			target := capstoneTarget()
			tc.break_(w, &target)
			res := run(t, w, target)
			for id, r := range res {
				wt, failing := tc.want[id]
				if !failing {
					if !r.Pass {
						t.Errorf("%s failed: %s (hop %s, cause %s, evidence %q)", id, r.Actual, r.Hop, r.Cause, r.Evidence)
					}
					continue
				}
				if r.Pass {
					t.Errorf("%s passed (%s); want it to fail at %s with %s", id, r.Actual, wt.hop, wt.cause)
					continue
				}
				if r.Hop != wt.hop || r.Cause != wt.cause {
					t.Errorf("%s: hop %q, cause %q; want %q, %q (actual %s, evidence %q)", id, r.Hop, r.Cause, wt.hop, wt.cause, r.Actual, r.Evidence)
				}
				if !slices.ContainsFunc(r.Evidence, func(e string) bool { return strings.Contains(e, wt.evidence) }) {
					t.Errorf("%s: no evidence line contains %q: %q", id, wt.evidence, r.Evidence)
				}
				if !slices.Contains(Causes, r.Cause) {
					t.Errorf("%s: cause %q is not in Causes", id, r.Cause)
				}
			}
			for id := range tc.want {
				if _, ok := res[id]; !ok {
					t.Errorf("no check %s in the matrix", id)
				}
			}
		})
	}
}

func TestGuestUnreachable(t *testing.T) {
	w := healthyWorld()
	w.guestDown = true
	res := run(t, w, capstoneTarget())
	for id, r := range res {
		if r.From.Kind == OnHost {
			if !r.Pass {
				t.Errorf("%s (from the host) failed: %s", id, r.Actual)
			}
			continue
		}
		if r.Pass || r.Cause != CauseGuestUnreachable || r.Hop != "host → capstone (guest agent)" {
			t.Errorf("%s: pass %v, hop %q, cause %q; want guest unreachable", id, r.Pass, r.Hop, r.Cause)
		}
	}
}

// Without a guest agent, guest commands go over the serial console one at
// a time; with one, at most Parallel at once.
func TestGuestParallelism(t *testing.T) {
	for _, tc := range []struct {
		agent    bool
		parallel int
		max      int
	}{{false, 4, 1}, {true, 4, 4}, {true, 2, 2}, {true, 1, 1}} {
		w := healthyWorld()
		target := capstoneTarget()
		target.Agent = tc.agent
		Run(context.Background(), w, w, target, CapstoneMatrix(target), Options{Parallel: tc.parallel})
		if w.maxGuest > tc.max || tc.max > 1 && w.maxGuest < 2 {
			t.Errorf("agent %v, parallel %d: %d guest commands at once, want at most %d (and some overlap)", tc.agent, tc.parallel, w.maxGuest, tc.max)
		}
	}
}

// The probes run once per run, however many checks fail for the same reason.
func TestProbesRunOnce(t *testing.T) {
	w := healthyWorld()
	target := capstoneTarget()
	w.cutNIC(target, 1)
	w.guest["sh -c "+guestLinksScript] = says(strings.Replace(guestIP, "3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP>", "3: eth1: <BROADCAST,MULTICAST>", 1))
	run(t, w, target)
	counts := map[string]int{}
	for _, c := range w.calls {
		counts[c]++
	}
	for _, probe := range []string{"guest sh -c " + guestLinksScript, "host link br0", "host link vnet1"} {
		if counts[probe] != 1 {
			t.Errorf("%q ran %d times, want once", probe, counts[probe])
		}
	}
}

func TestJudgeAPI(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		pass   bool
		actual string
	}{
		{200, apiJSON, true, "200, PostgreSQL 15.8, visits 7"},
		{200, `{"db": {"version": "PostgreSQL 15.8"}}`, true, "200, PostgreSQL 15.8"},
		{200, `{"db": {"version": "MySQL 8"}}`, false, `200 but db.version is "MySQL 8"`},
		{200, `{"db": {}}`, false, `200 but no db.version in the JSON: {"db": {}}`},
		{200, `<html>hello</html>`, false, "200 but not JSON: <html>hello</html>"},
		{503, `{"status": "error", "db": false}`, false, `HTTP 503: {"status": "error", "db": false}`},
	} {
		pass, actual := judgeAPI(tc.status, []byte(tc.body))
		if pass != tc.pass || actual != tc.actual {
			t.Errorf("judgeAPI(%d, %s) = %v, %q; want %v, %q", tc.status, tc.body, pass, actual, tc.pass, tc.actual)
		}
	}
}

func TestPingError(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"PING 192.0.2.1 (192.0.2.1): 56 data bytes\n\n--- 192.0.2.1 ping statistics ---\n1 packets transmitted, 0 packets received, 100% packet loss\n", ""},
		{"PING 192.0.2.1 (192.0.2.1) from 192.0.2.10 eth1: 56(84) bytes of data.\n\n--- 192.0.2.1 ping statistics ---\n1 packets transmitted, 0 received, 100% packet loss, time 0ms\n", ""},
		{"ping: sendto: Network is unreachable\nPING 192.0.2.1 (192.0.2.1): 56 data bytes\n", "sendto: Network is unreachable"},
		{"ping: SO_BINDTODEVICE eth1: No such device\n", "SO_BINDTODEVICE eth1: No such device"},
	} {
		if got := pingError(tc.out); got != tc.want {
			t.Errorf("pingError(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}

func TestReportErr(t *testing.T) {
	r := &Report{VM: "capstone", Results: []Result{{Pass: true}, {Pass: false}, {Pass: false}}}
	err := r.Err()
	if err == nil || err.Error() != "2 of 3 checks failed" {
		t.Fatalf("Err() = %v", err)
	}
	r.Results = r.Results[:1]
	if err := r.Err(); err != nil {
		t.Fatalf("Err() = %v for a passing run", err)
	}
}

// A guest that cannot run commands is asked once, not once per check (each
// attempt over a dead serial console would cost a whole timeout).
func TestDeadGuestAskedOnce(t *testing.T) {
	w := healthyWorld()
	w.guestDown = true
	target := capstoneTarget()
	target.Agent = false
	results := Run(context.Background(), w, w, target, CapstoneMatrix(target), Options{})
	n := 0
	for _, c := range w.calls {
		if strings.HasPrefix(c, "guest ") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d guest commands tried, want 1: %q", n, w.calls)
	}
	for _, r := range results {
		if r.From.Kind != OnHost && (r.Cause != CauseGuestUnreachable || r.Hop != "host → capstone (serial console)") {
			t.Errorf("%s: hop %q cause %q", r.ID, r.Hop, r.Cause)
		}
	}
}

func TestSnippet(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a  b\n c", 10, "a b c"},
		{"\x1b[0mok\x00", 10, "[0mok"},
		{"abcdefghij", 5, "abcd…"},
	} {
		if got := snippet(tc.in, tc.n); got != tc.want {
			t.Errorf("snippet(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// execFails makes every podman exec into container name fail as podman
// does when it cannot exec (exit 125), with a message that names no cause.
func execFails(w *world, name string) {
	for k := range w.guest {
		if strings.HasPrefix(k, "podman exec "+name+" ") {
			w.guest[k] = exit(125, "Error: OCI runtime error")
		}
	}
}

// Three checks from a container whose exec fails ask podman about it once.
func TestContainerProbeRunsOnce(t *testing.T) {
	w := healthyWorld()
	execFails(w, "api")
	w.guest["podman container exists api"] = exit(1, "")
	run(t, w, capstoneTarget())
	n := 0
	for _, c := range w.calls {
		if c == "guest podman container exists api" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("podman container exists api ran %d times, want once", n)
	}
}
