package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vmnet/internal/bridge"
)

// netnsLab is a host and a "guest" in two throwaway network namespaces:
// in the host, br0 (192.0.2.1/24) with the tap-like veth vnet1 as its port;
// in the guest, vnet1's peer eth1 (192.0.2.10/24), an HTTP server on 8080
// answering like the capstone API, and a listener on 5000. Port 5432 has
// nothing behind it. Nothing reaches the machine's own namespace.
type netnsLab struct {
	host, guest     *bridge.Handle
	hostNS, guestNS string // names for ip netns exec
}

func requireRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// namedNetns makes a network namespace with ip netns add (so commands can
// run in it with ip netns exec), removed when the test ends.
func namedNetns(t *testing.T) (string, *bridge.Handle) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "vmnetchk-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := bridge.Open(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	lo, err := h.LinkByName("lo")
	must(t, err)
	must(t, h.LinkSetUp(lo))
	return name, h
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func nlAddr(s string) *netlink.Addr {
	p := netip.MustParsePrefix(s)
	return &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
}

func newNetnsLab(t *testing.T) *netnsLab {
	t.Helper()
	requireRoot(t, "ip", "ping")
	l := &netnsLab{}
	l.hostNS, l.host = namedNetns(t)
	l.guestNS, l.guest = namedNetns(t)

	must(t, l.host.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}))
	br, err := l.host.LinkByName("br0")
	must(t, err)
	must(t, l.host.AddrAdd(br, nlAddr("192.0.2.1/24")))
	must(t, l.host.LinkSetUp(br))
	gns, err := netns.GetFromName(l.guestNS)
	must(t, err)
	defer gns.Close()
	must(t, l.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vnet1"}, PeerName: "eth1", PeerNamespace: netlink.NsFd(gns)}))
	tap, err := l.host.LinkByName("vnet1")
	must(t, err)
	must(t, l.host.LinkSetMaster(tap, br))
	must(t, l.host.LinkSetUp(tap))
	eth1, err := l.guest.LinkByName("eth1")
	must(t, err)
	must(t, l.guest.AddrAdd(eth1, nlAddr("192.0.2.10/24")))
	must(t, l.guest.LinkSetUp(eth1))
	// The new links may drop the first frames (carrier and the bridge
	// port coming up): a probe that sends one ping would fail on that, not
	// on what it checks. Ready when the guest answers a ping.
	waitAnswers(t, l.hostNS, "192.0.2.10")

	// Servers in the guest: the listening sockets are made inside its
	// namespace and served from ordinary goroutines.
	listen := func(addr string) net.Listener {
		var ln net.Listener
		must(t, l.guest.Do(func() (err error) {
			ln, err = net.Listen("tcp", addr)
			return err
		}))
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, apiJSON)
	})}
	go srv.Serve(listen("192.0.2.10:8080"))
	t.Cleanup(func() { srv.Close() })
	open := listen("192.0.2.10:5000")
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

// nsGuest runs commands in a namespace with ip netns exec: a guest without
// QEMU, for the engine's real-world tests.
type nsGuest struct{ ns string }

func (g nsGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", g.ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := Output{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		out.Code = ee.ExitCode()
		return out, nil
	}
	return out, err
}

func TestKernelHost(t *testing.T) {
	l := newNetnsLab(t)
	h := KernelHost{K: l.host}
	ctx := context.Background()

	if err := h.Ping(ctx, a("192.0.2.10"), 3*time.Second); err != nil {
		t.Errorf("ping 192.0.2.10: %v", err)
	}
	if err := h.Ping(ctx, a("192.0.2.99"), 500*time.Millisecond); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("ping 192.0.2.99 (nobody) = %v, want ErrNoAnswer", err)
	}
	for _, tc := range []struct {
		to   string
		want error
	}{
		{"192.0.2.10:5000", nil},
		{"192.0.2.10:5432", ErrRefused},
		{"192.0.2.99:5432", ErrNoAnswer}, // nobody answers ARP: the connect times out
	} {
		timeout := 3 * time.Second // an open port answers at once, even on a loaded machine
		if tc.want == ErrNoAnswer {
			timeout = time.Second // shorter than ARP's 3 s give-up, so it is a timeout
		}
		err := h.Dial(ctx, netip.MustParseAddrPort(tc.to), timeout)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("dial %s = %v, want %v", tc.to, err, tc.want)
		}
	}
	status, body, err := h.Get(ctx, "http://192.0.2.10:8080/", 5*time.Second)
	if err != nil || status != 200 || string(body) != apiJSON {
		t.Errorf("GET = %d, %q, %v", status, body, err)
	}
	if _, _, err := h.Get(ctx, "http://192.0.2.10:5432/", 2*time.Second); !errors.Is(err, ErrRefused) {
		t.Errorf("GET from a closed port = %v, want ErrRefused", err)
	}

	tap, err := h.Link("vnet1")
	if err != nil || !tap.Exists || !tap.Up || tap.Master != "br0" {
		t.Errorf("Link(vnet1) = %+v, %v", tap, err)
	}
	br, err := h.Link("br0")
	if err != nil || !br.Up || !hasAddr(br.Addrs, a("192.0.2.1")) {
		t.Errorf("Link(br0) = %+v, %v", br, err)
	}
	if l, err := h.Link("nope0"); err != nil || l.Exists {
		t.Errorf("Link(nope0) = %+v, %v; want a link that does not exist", l, err)
	}
}

// The engine against the netns lab: real ping, TCP, HTTP and guest
// commands; then broken hops diagnosed from the real state.
func TestRunInNetns(t *testing.T) {
	l := newNetnsLab(t)
	requireRoot(t, "nft")
	target := Target{Name: "lab", Agent: true, NICs: []NIC{{
		Index: 0, Guest: "eth1", Address: a("192.0.2.10"), Prefix: 24, Bridge: "br0", Tap: "vnet1",
		Host: a("192.0.2.1"), HostPrefix: 24,
	}}}
	checks := BasicMatrix(target)
	checks = append(checks,
		Check{ID: "tcp:5432", Source: "host", Target: "lab:eth1", Method: MethodTCP, From: Place{Kind: OnHost}, Want: WantClosed,
			To: a("192.0.2.10"), Port: 5432, NIC: 0, Requires: []string{"ping:host->lab:eth1"}},
		Check{ID: "tcp:5000", Source: "host", Target: "lab:eth1", Method: MethodTCP, From: Place{Kind: OnHost}, Want: WantClosed,
			To: a("192.0.2.10"), Port: 5000, NIC: 0, Requires: []string{"ping:host->lab:eth1"}},
		Check{ID: "http:8080", Source: "host", Target: "lab:eth1", Address: "http://192.0.2.10:8080/", Method: MethodHTTP,
			From: Place{Kind: OnHost}, Want: WantAPI, To: a("192.0.2.10"), Port: 8080, NIC: 0},
	)
	host := KernelHost{K: l.host}
	guest := nsGuest{ns: l.guestNS}
	opt := Options{PingTimeout: 3 * time.Second, ConnectTimeout: 3 * time.Second, HTTPTimeout: 5 * time.Second} // generous: a loaded CI machine must not turn "open" into "no answer"
	runAll := func() map[string]Result {
		out := map[string]Result{}
		for _, r := range Run(context.Background(), host, guest, target, checks, opt) {
			out[r.ID] = r
		}
		return out
	}
	ip := func(ns string, args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
		}
	}
	type want struct {
		pass  bool
		cause Cause
		hop   string
	}
	expect := func(t *testing.T, res map[string]Result, w map[string]want) {
		t.Helper()
		for id, r := range res {
			wt := w[id]
			if !wt.pass && wt.cause == "" {
				wt.pass = true // not listed: must pass
			}
			if r.Pass != wt.pass || r.Cause != wt.cause || wt.hop != "" && r.Hop != wt.hop {
				t.Errorf("%s: pass %v (%s), hop %q, cause %q, evidence %q; want pass %v, hop %q, cause %q",
					id, r.Pass, r.Actual, r.Hop, r.Cause, r.Evidence, wt.pass, wt.hop, wt.cause)
			}
		}
	}

	t.Run("healthy, one port open", func(t *testing.T) {
		res := runAll()
		expect(t, res, map[string]want{"tcp:5000": {false, CausePortOpen, "lab firewall (input)"}})
		if got := res["tcp:5432"].Actual; got != "closed (refused)" {
			t.Errorf("tcp:5432 actual %q", got)
		}
		if got := res["http:8080"].Actual; got != "200, PostgreSQL 15.8, visits 7" {
			t.Errorf("http actual %q", got)
		}
		if ev := strings.Join(res["tcp:5000"].Evidence, "\n"); !strings.Contains(ev, "nftables ruleset is empty") {
			t.Errorf("tcp:5000 evidence %q does not mention the empty ruleset", ev)
		}
	})
	// Each broken hop fails host → guest and guest → host; the ports that
	// look closed prove nothing then.
	// When the host has no route any more, the connects fail outright and
	// are diagnosed like the pings.
	broken := func(cause Cause, hop string, tcp Cause) map[string]want {
		w := want{false, cause, hop}
		return map[string]want{
			"ping:host->lab:eth1": w, "ping:lab->host:br0": w, "http:8080": w,
			"tcp:5432": {false, tcp, hop}, "tcp:5000": {false, tcp, hop},
		}
	}
	for _, tc := range []struct {
		name          string
		breaks, fixes [][]string // ip -n NS ... commands: [0] is "host" or "guest"
		want          map[string]want
	}{
		{"tap without master", [][]string{{"host", "link", "set", "vnet1", "nomaster"}}, [][]string{{"host", "link", "set", "vnet1", "master", "br0"}},
			broken(CauseTapNotAttached, "tap vnet1", CauseInconclusive)},
		{"bridge down", [][]string{{"host", "link", "set", "br0", "down"}}, [][]string{{"host", "link", "set", "br0", "up"}},
			broken(CauseBridgeDown, "host:br0", CauseBridgeDown)},
		{"guest NIC down", [][]string{{"guest", "link", "set", "eth1", "down"}}, [][]string{{"guest", "link", "set", "eth1", "up"}, {"guest", "addr", "replace", "192.0.2.10/24", "dev", "eth1"}},
			broken(CauseGuestNICDown, "lab:eth1", CauseInconclusive)},
		{"host address gone", [][]string{{"host", "addr", "del", "192.0.2.1/24", "dev", "br0"}}, [][]string{{"host", "addr", "add", "192.0.2.1/24", "dev", "br0"}},
			broken(CauseHostAddressMissing, "host:br0", CauseHostAddressMissing)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := map[string]string{"host": l.hostNS, "guest": l.guestNS}
			for _, c := range tc.breaks {
				ip(ns[c[0]], c[1:]...)
			}
			res := runAll()
			for _, c := range tc.fixes {
				ip(ns[c[0]], c[1:]...)
			}
			expect(t, res, tc.want)
		})
	}
	t.Run("guest firewall", func(t *testing.T) {
		rules := `table inet vmnet {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		tcp dport 8080 accept
	}
}
`
		cmd := exec.Command("ip", "netns", "exec", l.guestNS, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("nft cannot load a ruleset here: %v: %s", err, out)
		}
		defer exec.Command("ip", "netns", "exec", l.guestNS, "nft", "flush", "ruleset").Run()
		res := runAll()
		expect(t, res, map[string]want{
			"ping:host->lab:eth1": {false, CauseFirewallDrop, "lab firewall (input)"},
			// The guest's own ping is answered: replies are established traffic.
			"tcp:5432": {false, CauseInconclusive, "lab firewall (input)"},
			"tcp:5000": {false, CauseInconclusive, "lab firewall (input)"},
		})
		if got := res["ping:host->lab:eth1"].Evidence; !strings.Contains(fmt.Sprint(got), "chain input in table inet vmnet (hook input, policy drop) has no rule accepting it") {
			t.Errorf("firewall evidence %q", got)
		}
	})
}

// waitAnswers waits, at most 10 s, until addr answers a ping from the
// namespace ns.
func waitAnswers(t *testing.T, ns, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr).Run() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer a ping from %s", addr, ns)
		}
	}
}
