package check

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// busyboxIP is what the tiny guest's busybox printed for guestLinksScript
// (over the serial console: no trailing newline).
const busyboxIP = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel qlen 1000\    link/ether 52:54:00:58:6e:9a brd ff:ff:ff:ff:ff:ff
3: eth1: <BROADCAST,MULTICAST> mtu 1500 qdisc fq_codel qlen 1000\    link/ether 52:54:00:cc:38:b9 brd ff:ff:ff:ff:ff:ff
@@vmnet@@
1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: eth0    inet 198.51.100.77/24 brd 198.51.100.255 scope global eth0\       valid_lft forever preferred_lft forever
3: eth1    inet 192.0.2.10/24 brd 192.0.2.255 scope global eth1\       valid_lft forever preferred_lft forever`

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func TestParseGuestLinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  string
		want []GuestLink
	}{
		{"busybox", busyboxIP, []GuestLink{
			{Name: "lo", Flags: []string{"LOOPBACK", "UP", "LOWER_UP"}, LinkUp: true, Carrier: true, Addrs: pfx("127.0.0.1/8")},
			{Name: "eth0", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}, LinkUp: true, Carrier: true, Addrs: pfx("198.51.100.77/24")},
			{Name: "eth1", Flags: []string{"BROADCAST", "MULTICAST"}, Addrs: pfx("192.0.2.10/24")},
		}},
		{"iproute2 with a veth and a bridge", guestIP, []GuestLink{
			{Name: "lo", Flags: []string{"LOOPBACK", "UP", "LOWER_UP"}, State: "UNKNOWN", LinkUp: true, Carrier: true, Addrs: pfx("127.0.0.1/8")},
			{Name: "eth0", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}, State: "UP", LinkUp: true, Carrier: true, Addrs: pfx("198.51.100.23/24")},
			{Name: "eth1", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}, State: "UP", LinkUp: true, Carrier: true, Addrs: pfx("192.0.2.10/24")},
			{Name: "podman1", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}, State: "UP", LinkUp: true, Carrier: true, Addrs: pfx("10.89.0.1/24")},
			{Name: "veth0", Flags: []string{"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}, State: "UP", Master: "podman1", LinkUp: true, Carrier: true},
		}},
	} {
		got, err := ParseGuestLinks(tc.out)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{"", "sh: ip: not found", "@@vmnet@@\n"} {
		if _, err := ParseGuestLinks(bad); err == nil {
			t.Errorf("ParseGuestLinks(%q) did not fail", bad)
		}
	}
}

// The guest's own ip, when this machine has one: its format is the one
// parsed (links in a throwaway namespace would need root; lo is enough).
func TestParseGuestLinksRealIP(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	out, err := exec.Command("sh", "-c", guestLinksScript).Output()
	if err != nil {
		t.Skipf("ip: %v", err)
	}
	links, err := ParseGuestLinks(string(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if l.Name == "lo" && l.LinkUp && hasAddr(l.Addrs, netip.MustParseAddr("127.0.0.1")) {
			return
		}
	}
	t.Errorf("lo with 127.0.0.1 not among %+v", links)
}

func TestRulesetVerdict(t *testing.T) {
	rs := ParseRuleset(guestRuleset)
	if len(rs.Chains) != 5 {
		t.Fatalf("%d chains, want 5: %+v", len(rs.Chains), rs.Chains)
	}
	in := rs.Chains[0]
	if in.Table != "inet vmnet" || in.Name != "input" || in.Hook != "input" || in.Policy != "drop" || len(in.Rules) != 7 {
		t.Errorf("input chain = %+v", in)
	}
	for _, tc := range []struct {
		name    string
		ruleset string
		hook    string
		match   func(string) bool
		drops   bool
		line    string
	}{
		{"echo accepted", guestRuleset, "input", matchEcho, false, "accepts it"},
		{"8080 accepted", guestRuleset, "input", matchPort(8080), false, "accepts it"},
		{"5432 dropped by policy", guestRuleset, "input", matchPort(5432), true, "has no rule accepting it"},
		{"5000 dropped by policy", guestRuleset, "input", matchPort(5000), true, "has no rule accepting it"},
		{"echo without its rule", strings.Replace(guestRuleset, "icmp type echo-request accept", "", 1), "input", matchEcho, true, "no rule accepting it"},
		{"explicit drop first", strings.Replace(guestRuleset, "ct state invalid drop", "icmp type echo-request drop", 1), "input", matchEcho, true, "has: icmp type echo-request drop"},
		{"accept before drop", strings.Replace(guestRuleset, "udp sport 67 udp dport 68 accept", "icmp type echo-request drop", 1), "input", matchEcho, false, "accepts it"},
		{"forward accepts 8080", guestRuleset, "forward", matchPort(8080), false, ""},
		{"forward drops 8080", strings.Replace(guestRuleset, `iifname "eth*" ct status dnat tcp dport 8080 accept`, "tcp dport { 80, 8080 } reject", 1), "forward", matchPort(8080), true, "reject"},
		{"catch-all drop", guestRuleset + "table inet x {\n chain f {\n type filter hook forward priority 10; policy accept;\n counter packets 3 bytes 180 drop comment \"x\"\n }\n}\n", "forward", matchPort(5432), true, "counter packets 3 bytes 180 drop"},
		{"policy accept", strings.ReplaceAll(guestRuleset, "policy drop", "policy accept"), "input", matchPort(5432), false, ""},
		{"empty", "", "input", matchEcho, false, ""},
	} {
		drops, ev := ParseRuleset(tc.ruleset).Verdict(tc.hook, tc.match)
		if drops != tc.drops || tc.line != "" && !strings.Contains(strings.Join(ev, "\n"), tc.line) {
			t.Errorf("%s: drops %v, evidence %q; want %v with %q", tc.name, drops, ev, tc.drops, tc.line)
		}
	}
}

func TestMatchers(t *testing.T) {
	for _, tc := range []struct {
		rule string
		echo bool
		p80  bool
	}{
		{"icmp type echo-request accept", true, false},
		{"icmp type { echo-request, destination-unreachable } accept", true, false},
		{"icmpv6 type echo-request accept", false, false},
		{"meta l4proto icmp accept", true, false},
		{"ip protocol icmp accept", true, false},
		{"icmp type destination-unreachable accept", false, false},
		{"tcp dport 80 accept", false, true},
		{"tcp dport { 22, 80, 443 } accept", false, true},
		{"tcp dport 70-90 accept", false, true},
		{"tcp dport 8080 accept", false, false},
		{"udp dport 80 accept", false, false},
		{"tcp sport 80 accept", false, false},
		{"ct status dnat meta l4proto tcp ct original proto-dst 80 accept", false, true},
	} {
		if got := matchEcho(tc.rule); got != tc.echo {
			t.Errorf("matchEcho(%q) = %v", tc.rule, got)
		}
		if got := matchPort(80)(tc.rule); got != tc.p80 {
			t.Errorf("matchPort(80)(%q) = %v", tc.rule, got)
		}
	}
}

// The capstone's own ruleset: the parser must read its chains and the
// Verdict heuristics must agree with what the contract says it allows.
// The file is part of the tree, so a missing file or a ruleset without
// chains is a failure, never a skip.
func TestCapstoneRulesetFile(t *testing.T) {
	path := filepath.Join("..", "..", "templates", "capstone", "guest", "etc", "nftables.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the capstone ruleset: %v", err)
	}
	// The file is nft syntax much like list ruleset's, with variables
	// that nft expands when it lists the loaded ruleset.
	text := string(b)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "define" && f[2] == "=" {
			text = strings.ReplaceAll(text, "$"+f[1], strings.Join(f[3:], " "))
		}
	}
	rs := ParseRuleset(text)
	if len(rs.Chains) == 0 {
		// The file is in the tree and has chains: finding none is a parser
		// regression (or a ruleset the checks can no longer judge), not a reason to skip.
		t.Fatalf("ParseRuleset found no chains in %s", path)
	}
	for _, tc := range []struct {
		what  string
		hook  string
		match func(string) bool
		drops bool
	}{
		{"ICMP echo", "input", matchEcho, false},
		{"tcp 8080", "input", matchPort(8080), false},
		{"tcp 5432", "input", matchPort(5432), true},
		{"tcp 5000", "input", matchPort(5000), true},
		{"DNATed tcp 8080", "forward", matchPort(8080), false},
		{"forwarded tcp 5432", "forward", matchPort(5432), true},
		{"a container's ping out", "forward", func(r string) bool { return matchEcho(r) || matchFromContainers(r) }, false},
	} {
		if drops, ev := rs.Verdict(tc.hook, tc.match); drops != tc.drops {
			t.Errorf("%s at %s: drops %v, want %v (%q)", tc.what, tc.hook, drops, tc.drops, ev)
		}
	}
}

// podman43 is podman container inspect output (podman 4.3.1, trimmed to
// the fields read, plus neighbours to show the parser ignores them).
const podman43 = `[
     {
          "Id": "5d3c1f",
          "Created": "2026-11-26T05:00:00.1Z",
          "State": {
               "OciVersion": "1.0.2-dev",
               "Status": "running",
               "Running": true,
               "Paused": false,
               "Pid": 490,
               "ConmonPid": 478,
               "ExitCode": 0,
               "Healthcheck": {"Status": "healthy", "FailingStreak": 0, "Log": null}
          },
          "Name": "db",
          "NetworkSettings": {
               "Networks": {
                    "app-net": {"EndpointID": "", "Gateway": "10.89.0.1", "IPAddress": "10.89.0.2", "IPPrefixLen": 24, "MacAddress": "3e:1a:00:00:00:02"}
               }
          }
     },
     {
          "Id": "77aa01",
          "State": {"Status": "exited", "Running": false, "Pid": 0, "ExitCode": 137},
          "Name": "api",
          "NetworkSettings": {"Networks": {"app-net": {"Gateway": "", "IPAddress": ""}}}
     }
]`

func TestParseContainers(t *testing.T) {
	got, err := ParseContainers(podman43, []string{"db", "api", "proxy"}, AppNetwork)
	if err != nil {
		t.Fatal(err)
	}
	want := []Container{
		{Name: "db", State: "running", Health: "healthy", IP: a("10.89.0.2"), Gateway: a("10.89.0.1"), ID: "5d3c1f", PID: 490},
		{Name: "api", State: "exited (code 137)", ID: "77aa01"},
		{Name: "proxy", State: "missing"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// podman 5 calls it Health.
	got, err = ParseContainers(`[{"Name":"db","State":{"Status":"running","Health":{"Status":"starting"}}}]`, []string{"db"}, AppNetwork)
	if err != nil || got[0].Health != "starting" {
		t.Errorf("podman 5 health: %+v, %v", got, err)
	}
	if _, err := ParseContainers("Error: no such container db", []string{"db"}, AppNetwork); err == nil {
		t.Error("garbage parsed")
	}
}

type scriptedGuest map[string]guestAnswer

func (g scriptedGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	if a, ok := g[strings.Join(argv, " ")]; ok {
		return a.out, a.err
	}
	return Output{}, fmt.Errorf("unexpected %q", strings.Join(argv, " "))
}

func TestDiscover(t *testing.T) {
	one := func(name, ip string) string {
		return fmt.Sprintf(`[{"Name":%q,"State":{"Status":"running","Running":true},"NetworkSettings":{"Networks":{"app-net":{"IPAddress":%q,"Gateway":"10.89.0.1"}}}}]`, name, ip)
	}
	for _, tc := range []struct {
		name  string
		guest scriptedGuest
		want  []string // name=state ip
	}{
		{"all at once", scriptedGuest{"podman container inspect db api": says(strings.TrimSuffix(one("db", "10.89.0.2"), "]") + "," + strings.TrimPrefix(one("api", "10.89.0.3"), "["))},
			[]string{"db=running 10.89.0.2", "api=running 10.89.0.3"}},
		{"one missing: asked one by one", scriptedGuest{
			"podman container inspect db api": {out: Output{Code: 125, Stdout: one("db", "10.89.0.2"), Stderr: "Error: no such container api"}},
			"podman container inspect db":     says(one("db", "10.89.0.2")),
			"podman container inspect api":    exit(125, "Error: no such container api"),
			"podman container exists api":     exit(1, ""),
		}, []string{"db=running 10.89.0.2", "api=missing invalid IP"}},
		{"inspect fails, the container exists", scriptedGuest{
			"podman container inspect db api": exit(125, "Error: no such container api"),
			"podman container inspect db":     says(one("db", "10.89.0.2")),
			"podman container inspect api":    exit(125, "Error: no such container api"),
			"podman container exists api":     says(""),
		}, []string{"db=running 10.89.0.2", "api=unknown invalid IP"}},
		{"no podman", scriptedGuest{"podman container inspect db api": {err: fmt.Errorf("guest agent: Failed to execute child process “podman” (No such file or directory)")}},
			[]string{"db=unknown invalid IP", "api=unknown invalid IP"}},
	} {
		got := Discover(context.Background(), tc.guest, []string{"db", "api"}, AppNetwork, time.Second)
		var s []string
		for _, c := range got {
			s = append(s, c.Name+"="+c.State+" "+c.IP.String())
		}
		if !reflect.DeepEqual(s, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, s, tc.want)
		}
	}
}
