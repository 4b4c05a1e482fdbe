package check

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// world is a lab as the fake executors show it: what the host gets for its
// pings, connects and GETs, its links, and what each guest command prints.
// healthyWorld is a capstone lab where every check passes; test cases break
// one thing in it, both in what the checks see and in what the probes find.
type world struct {
	pings map[netip.Addr]error
	dials map[netip.AddrPort]error // missing: refused
	gets  map[string]httpAnswer
	links map[string]Link
	guest map[string]guestAnswer // by argv joined with spaces; missing: the fake fails the test's expectations
	// guestDown makes every guest command fail as if the agent were gone.
	guestDown bool

	mu       sync.Mutex
	calls    []string
	inFlight int
	maxGuest int
}

type httpAnswer struct {
	status int
	body   string
	err    error
}

type guestAnswer struct {
	out Output
	err error
}

func a(s string) netip.Addr { return netip.MustParseAddr(s) }

func capstoneTarget() Target {
	return Target{
		Name: "capstone", Spec: "capstone", Agent: true, App: capstoneApp(),
		NICs: []NIC{
			{Index: 0, Guest: "eth0", Address: a("198.51.100.23"), Prefix: 24, Source: "reservation", Network: "nat0",
				Bridge: "vmnet-nat0", Tap: "vnet0", MAC: "52:54:00:aa:00:01", Host: a("198.51.100.1"), HostPrefix: 24},
			{Index: 1, Guest: "eth1", Address: a("192.0.2.10"), Prefix: 24, Source: "static",
				Bridge: "br0", Tap: "vnet1", MAC: "52:54:00:aa:00:02", Host: a("192.0.2.1"), HostPrefix: 24},
		},
		Containers: []Container{
			{Name: "db", State: "running", Health: "healthy", IP: a("10.89.0.2"), Gateway: a("10.89.0.1")},
			{Name: "api", State: "running", Health: "healthy", IP: a("10.89.0.3"), Gateway: a("10.89.0.1")},
			{Name: "proxy", State: "running", Health: "healthy", IP: a("10.89.0.4"), Gateway: a("10.89.0.1")},
		},
	}
}

const apiJSON = `{"service": "api", "db": {"version": "PostgreSQL 15.8 (Debian 15.8-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit", "now": "2026-11-26T05:00:00Z", "visits": 7}, "host": "api"}`

// guestIP is the guest's ip -o output in the healthy lab (iproute2 format).
const guestIP = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000\    link/ether 52:54:00:aa:00:01 brd ff:ff:ff:ff:ff:ff
3: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000\    link/ether 52:54:00:aa:00:02 brd ff:ff:ff:ff:ff:ff
4: podman1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 3e:1a:00:00:00:01 brd ff:ff:ff:ff:ff:ff
5: veth0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master podman1 state UP mode DEFAULT group default qlen 1000\    link/ether 3e:1a:00:00:00:02 brd ff:ff:ff:ff:ff:ff link-netns netns-1
@@vmnet@@
1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0    inet 198.51.100.23/24 metric 1024 brd 198.51.100.255 scope global dynamic eth0\       valid_lft 3500sec preferred_lft 3500sec
3: eth1    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth1\       valid_lft forever preferred_lft forever
4: podman1    inet 10.89.0.1/24 brd 10.89.0.255 scope global podman1\       valid_lft forever preferred_lft forever
`

// guestRuleset is nft list ruleset in the healthy lab: vmnet's table and
// netavark's (iptables-nft) tables side by side.
const guestRuleset = `table inet vmnet {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		ct state invalid drop
		icmp type echo-request accept
		icmpv6 type { echo-request, nd-neighbor-solicit, nd-router-advert, nd-neighbor-advert } accept
		udp sport 67 udp dport 68 accept
		iifname "eth*" tcp dport 8080 accept
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		iifname "eth*" ct status dnat tcp dport 8080 accept
		iifname "eth*" oifname "podman*" ct state new drop
	}
}
table ip nat {
	chain NETAVARK-HOSTPORT-DNAT {
		tcp dport 8080 jump NETAVARK-DN-1D8721804F16F
	}
	chain PREROUTING {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump NETAVARK-HOSTPORT-DNAT
	}
}
table ip filter {
	chain FORWARD {
		type filter hook forward priority filter; policy accept;
		ip daddr 10.89.0.0/24 ct state related,established counter packets 12 bytes 3456 accept
		ip saddr 10.89.0.0/24 counter packets 7 bytes 588 accept
	}
}
`

func says(stdout string) guestAnswer { return guestAnswer{out: Output{Stdout: stdout}} }

func exit(code int, stderr string) guestAnswer {
	return guestAnswer{out: Output{Code: code, Stderr: stderr}}
}

func healthyWorld() *world {
	w := &world{
		pings: map[netip.Addr]error{},
		dials: map[netip.AddrPort]error{},
		gets: map[string]httpAnswer{
			"http://198.51.100.23:8080/": {status: 200, body: apiJSON},
			"http://192.0.2.10:8080/":    {status: 200, body: apiJSON},
		},
		links: map[string]Link{
			"br0":        {Name: "br0", Exists: true, Up: true, OperState: "up", Addrs: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}},
			"vmnet-nat0": {Name: "vmnet-nat0", Exists: true, Up: true, OperState: "up", Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24")}},
			"vnet0":      {Name: "vnet0", Exists: true, Up: true, OperState: "unknown", Master: "vmnet-nat0"},
			"vnet1":      {Name: "vnet1", Exists: true, Up: true, OperState: "unknown", Master: "br0"},
		},
		guest: map[string]guestAnswer{
			"ping -c 1 -W 2 -I eth0 198.51.100.1":        says(""),
			"ping -c 1 -W 2 -I eth1 192.0.2.1":           says(""),
			"ping -c 1 -W 2 10.89.0.2":                   says(""),
			"ping -c 1 -W 2 10.89.0.3":                   says(""),
			"ping -c 1 -W 2 10.89.0.4":                   says(""),
			"podman exec api getent hosts db":            says("10.89.0.2       db.dns.podman db\n"),
			"podman exec proxy getent hosts api":         says("10.89.0.3       api.dns.podman api\n"),
			"sh -c " + guestLinksScript:                  says(guestIP),
			"nft list ruleset":                           says(guestRuleset),
			"pidof aardvark-dns":                         says("412\n"),
			"podman container inspect db api proxy":      says("[]"),
			"podman exec db ping -c 1 -W 2 10.89.0.1":    says(""),
			"podman exec api ping -c 1 -W 2 10.89.0.1":   says(""),
			"podman exec proxy ping -c 1 -W 2 10.89.0.1": says(""),
			"podman exec db ping -c 1 -W 2 192.0.2.1":    says(""),
			"podman exec api ping -c 1 -W 2 192.0.2.1":   says(""),
			"podman exec proxy ping -c 1 -W 2 192.0.2.1": says(""),
		},
	}
	for _, ip := range []string{"198.51.100.23", "192.0.2.10"} {
		for _, p := range []uint16{DBPort, APIPort} {
			w.dials[netip.AddrPortFrom(a(ip), p)] = fmt.Errorf("%w (silently dropped)", ErrNoAnswer)
		}
	}
	return w
}

// cutNIC makes all traffic over the capstone's NIC i go unanswered, as a
// broken hop on it would.
func (w *world) cutNIC(t Target, i int) {
	n := t.NICs[i]
	w.pings[n.Address] = fmt.Errorf("ping %s: %w", n.Address, ErrNoAnswer)
	w.gets["http://"+netip.AddrPortFrom(n.Address, ProxyPort).String()+"/"] = httpAnswer{err: fmt.Errorf("%w (dial timeout)", ErrNoAnswer)}
	for _, p := range []uint16{DBPort, APIPort} {
		w.dials[netip.AddrPortFrom(n.Address, p)] = fmt.Errorf("%w (dial timeout)", ErrNoAnswer)
	}
	w.guest[fmt.Sprintf("ping -c 1 -W 2 -I %s %s", n.Guest, n.Host)] = exit(1, "")
	if n.Network == "" {
		for _, c := range AppContainers {
			w.guest[fmt.Sprintf("podman exec %s ping -c 1 -W 2 %s", c, n.Host)] = exit(1, "")
		}
	}
}

// stop makes container name stopped, for the checks and for podman.
func (w *world) stop(t *Target, name string) {
	for i := range t.Containers {
		if t.Containers[i].Name == name {
			t.Containers[i].State, t.Containers[i].IP = "exited (code 137)", netip.Addr{}
		}
	}
	for k := range w.guest {
		if strings.HasPrefix(k, "podman exec "+name+" ") {
			w.guest[k] = exit(125, "Error: can only create exec sessions on running containers: container state improper")
		}
	}
}

func (w *world) Ping(ctx context.Context, to netip.Addr, timeout time.Duration) error {
	w.record("host ping " + to.String())
	return w.pings[to]
}

func (w *world) Dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) error {
	w.record("host dial " + to.String())
	if err, ok := w.dials[to]; ok {
		return err
	}
	return fmt.Errorf("%w (RST)", ErrRefused)
}

func (w *world) Get(ctx context.Context, url string, timeout time.Duration) (int, []byte, error) {
	w.record("host get " + url)
	g, ok := w.gets[url]
	if !ok {
		return 0, nil, fmt.Errorf("%w (no such URL in the fake)", ErrRefused)
	}
	return g.status, []byte(g.body), g.err
}

func (w *world) Link(name string) (Link, error) {
	w.record("host link " + name)
	if l, ok := w.links[name]; ok {
		return l, nil
	}
	return Link{Name: name}, nil
}

func (w *world) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	cmd := strings.Join(argv, " ")
	w.mu.Lock()
	w.calls = append(w.calls, "guest "+cmd)
	w.inFlight++
	w.maxGuest = max(w.maxGuest, w.inFlight)
	w.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // long enough for overlapping commands to be seen
	w.mu.Lock()
	w.inFlight--
	w.mu.Unlock()
	if w.guestDown {
		return Output{}, fmt.Errorf("guest agent: Guest agent is not responding: QEMU guest agent is not connected")
	}
	g, ok := w.guest[cmd]
	if !ok {
		return Output{}, fmt.Errorf("the fake guest does not know %q", cmd)
	}
	return g.out, g.err
}

func (w *world) record(s string) {
	w.mu.Lock()
	w.calls = append(w.calls, s)
	w.mu.Unlock()
}
