package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// renderLinks writes links as guestLinksScript's iproute2 output would
// show them.
func renderLinks(links []GuestLink) string {
	var b strings.Builder
	for i, l := range links {
		fmt.Fprintf(&b, "%d: %s: <%s> mtu 1500", i+1, l.Name, strings.Join(l.Flags, ","))
		if l.State != "" {
			b.WriteString(" state " + l.State)
		}
		if l.Master != "" {
			b.WriteString(" master " + l.Master)
		}
		b.WriteString(" qlen 1000\\    link/ether 52:54:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n")
	}
	b.WriteString("@@vmnet@@\n")
	for i, l := range links {
		for _, a := range l.Addrs {
			fmt.Fprintf(&b, "%d: %s    inet %s scope global %s\\       valid_lft forever preferred_lft forever\n", i+1, l.Name, a, l.Name)
		}
	}
	return b.String()
}

// FuzzParseGuestLinks: the guest's ip output comes over the agent or the
// serial console, so it may be anything. Accepted output gives links with a
// name and flags that agree with LinkUp and Carrier, and those links,
// written out again as ip prints them, parse to the same links.
func FuzzParseGuestLinks(f *testing.F) {
	f.Add(busyboxIP)
	f.Add(guestIP)
	f.Add("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n2: veth0@if3: <UP> mtu 1500 master podman1 state UP\n@@vmnet@@\n2: veth0@if3    inet 10.89.0.9/24 scope global veth0\n")
	f.Add("@@vmnet@@\n")
	f.Fuzz(func(t *testing.T, out string) {
		links, err := ParseGuestLinks(out)
		if err != nil {
			return
		}
		if len(links) == 0 {
			t.Fatalf("ParseGuestLinks(%q): no links and no error", out)
		}
		names := map[string]bool{}
		roundTrip := true
		for _, l := range links {
			if l.Name == "" || strings.ContainsAny(l.Name, ":@ \t\n") {
				t.Fatalf("link name %q from %q", l.Name, out)
			}
			if l.LinkUp != contains(l.Flags, "UP") || l.Carrier != contains(l.Flags, "LOWER_UP") {
				t.Fatalf("link %+v: LinkUp or Carrier disagree with its flags", l)
			}
			// ip never prints these; with them, or a name twice, the text
			// is ambiguous and a round trip cannot be asked for.
			roundTrip = roundTrip && !names[l.Name] && !ipKeyword[l.State] && !ipKeyword[l.Master]
			names[l.Name] = true
		}
		if !roundTrip {
			return
		}
		again, err := ParseGuestLinks(renderLinks(links))
		if err != nil || !reflect.DeepEqual(again, links) {
			t.Fatalf("links %+v, written as\n%s\nparse as %+v, %v", links, renderLinks(links), again, err)
		}
	})
}

// ipKeyword is a word ip prints before a value on a link line: a master or
// state with such a name (ip never prints one) makes the line ambiguous.
var ipKeyword = map[string]bool{"state": true, "master": true, "mtu": true, "qlen": true}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// renderRuleset writes rs as nft list ruleset would.
func renderRuleset(rs Ruleset) string {
	var b strings.Builder
	for _, c := range rs.Chains {
		if c.Table != "" {
			b.WriteString("table " + c.Table + " {\n")
		}
		b.WriteString("\tchain " + c.Name + " {\n")
		if c.Hook != "" || c.Policy != "" {
			// Policy first, and no word after the hook's name: a hook
			// named "policy" must not be read as a policy.
			b.WriteString("\t\ttype filter priority filter;")
			if c.Policy != "" {
				b.WriteString(" policy " + c.Policy + ";")
			}
			if c.Hook != "" {
				b.WriteString(" hook " + c.Hook + ";")
			}
			b.WriteString("\n")
		}
		for _, r := range c.Rules {
			b.WriteString("\t\t" + r + "\n")
		}
		b.WriteString("\t}\n")
		if c.Table != "" {
			b.WriteString("}\n")
		}
	}
	return b.String()
}

// FuzzParseRuleset: nft list ruleset from the guest. The parser must not
// panic, keeps only trimmed, non-empty rules, and what it read, written out
// again as nft prints it, reads the same; Verdict on it must not panic and
// gives evidence for every drop. Seeded with the capstone's own ruleset.
func FuzzParseRuleset(f *testing.F) {
	f.Add(guestRuleset)
	if b, err := os.ReadFile(filepath.Join("..", "..", "templates", "capstone", "guest", "etc", "nftables.conf")); err == nil {
		f.Add(string(b))
	}
	f.Add("chain x {\n type filter hook input priority 0; policy drop;\n tcp dport 22 accept\n}\n")
	f.Add("table ip nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmasquerade\n\t}\n}\n")
	f.Fuzz(func(t *testing.T, out string) {
		rs := ParseRuleset(out)
		for _, c := range rs.Chains {
			if c.Name == "" || strings.ContainsAny(c.Name, " \t\n") {
				t.Fatalf("chain name %q from %q", c.Name, out)
			}
			for _, r := range c.Rules {
				if r == "" || r != strings.TrimSpace(r) || r == "}" || strings.Contains(r, "\n") {
					t.Fatalf("rule %q in chain %s", r, c.Name)
				}
			}
		}
		if again := ParseRuleset(renderRuleset(rs)); !reflect.DeepEqual(again, rs) {
			t.Fatalf("ruleset %+v, written as\n%s\nreads %+v", rs, renderRuleset(rs), again)
		}
		for _, hook := range []string{"input", "forward"} {
			if drops, ev := rs.Verdict(hook, matchPort(8080)); drops && len(ev) == 0 {
				t.Fatalf("Verdict(%s) drops without evidence", hook)
			}
		}
	})
}

// FuzzParseContainers: podman's JSON from the guest. Accepted output gives
// one container per name asked for, in that order; a name podman did not
// list is "missing", with no address.
func FuzzParseContainers(f *testing.F) {
	f.Add(podman43, "db,api,proxy")
	f.Add(`[{"Name":"/db","State":{"Running":true},"NetworkSettings":{"Networks":{"app-net":{"IPAddress":"10.89.0.2"}}}}]`, "db")
	f.Add(`[{"Name":"api","State":{"Status":"exited","ExitCode":1,"Health":{"Status":"unhealthy"}}}]`, "api,db")
	f.Add(`{"Name":"db"}`, "db")
	f.Add(`[]`, "")
	f.Fuzz(func(t *testing.T, out, names string) {
		asked := strings.Split(names, ",")
		got, err := ParseContainers(out, asked, AppNetwork)
		if err != nil {
			return
		}
		listed := map[string]bool{}
		var raw []struct{ Name string }
		if json.Unmarshal([]byte(out), &raw) == nil {
			for _, r := range raw {
				listed[strings.TrimPrefix(r.Name, "/")] = true
			}
		}
		if len(got) != len(asked) {
			t.Fatalf("%d containers for %d names", len(got), len(asked))
		}
		for i, c := range got {
			if c.Name != asked[i] {
				t.Fatalf("container %d is %q, asked for %q", i, c.Name, asked[i])
			}
			if !listed[c.Name] && (c.State != "missing" || c.IP.IsValid() || c.Gateway.IsValid()) {
				t.Fatalf("%q is not in podman's list but is %+v", c.Name, c)
			}
		}
	})
}
