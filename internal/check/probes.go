package check

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GuestLink is a guest network interface as `ip -o link` and `ip -o addr`
// show it (iproute2 and busybox print the same one-line format; busybox
// has no -j).
type GuestLink struct {
	Name    string
	Flags   []string // BROADCAST, MULTICAST, UP, LOWER_UP, NO-CARRIER, ...
	State   string   // UP, DOWN, UNKNOWN
	Master  string
	Addrs   []netip.Prefix
	LinkUp  bool // UP in the flags
	Carrier bool // LOWER_UP in the flags
}

// guestLinksScript prints links, a separator, then IPv4 addresses.
const guestLinksScript = "ip -o link show; echo @@vmnet@@; ip -o -4 addr show"

var linkLine = regexp.MustCompile(`^\d+:\s+([^:@\s]+)(?:@[^:\s]*)?:\s+<([^>]*)>(.*)$`)

// ParseGuestLinks reads the output of guestLinksScript.
func ParseGuestLinks(out string) ([]GuestLink, error) {
	links, addrs, ok := strings.Cut(out, "@@vmnet@@")
	if !ok {
		return nil, fmt.Errorf("unexpected output of ip: %s", firstLine(out))
	}
	var res []GuestLink
	idx := map[string]int{}
	for _, line := range strings.Split(links, "\n") {
		m := linkLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		l := GuestLink{Name: m[1], Flags: strings.Split(m[2], ",")}
		l.LinkUp = slices.Contains(l.Flags, "UP")
		l.Carrier = slices.Contains(l.Flags, "LOWER_UP")
		rest := strings.Fields(m[3])
		for i := 0; i+1 < len(rest); i++ {
			switch rest[i] {
			case "state":
				l.State = rest[i+1]
			case "master":
				l.Master = rest[i+1]
			}
		}
		idx[l.Name] = len(res)
		res = append(res, l)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("ip listed no links: %s", firstLine(links))
	}
	for _, line := range strings.Split(addrs, "\n") {
		f := strings.Fields(line)
		// 2: eth0    inet 198.51.100.23/24 brd ... scope global eth0\ ...
		if len(f) < 4 || f[2] != "inet" {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		p, err := netip.ParsePrefix(f[3])
		if err != nil {
			continue
		}
		if i, ok := idx[name]; ok {
			res[i].Addrs = append(res[i].Addrs, p)
		}
	}
	return res, nil
}

// Ruleset is the guest's nftables ruleset, read for diagnosis.
type Ruleset struct {
	Chains []Chain
}

// Chain is one nftables chain with its hook, policy and rules.
type Chain struct {
	Table  string // "inet vmnet"
	Name   string
	Hook   string // input, forward, output, ... ("" for a regular chain)
	Policy string // accept, drop
	Rules  []string
}

var (
	tableLine = regexp.MustCompile(`^table\s+(\S+)\s+(\S+)\s*\{`)
	chainLine = regexp.MustCompile(`^chain\s+(\S+)\s*\{`)
	hookWord  = regexp.MustCompile(`\bhook\s+(\w+)`)
	policy    = regexp.MustCompile(`\bpolicy\s+(\w+)`)
)

// ParseRuleset reads `nft list ruleset` output. It knows only what
// diagnosis needs: base chains, their policies and their rules as text.
func ParseRuleset(out string) Ruleset {
	var rs Ruleset
	table := ""
	var cur *Chain
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
		case tableLine.MatchString(line):
			m := tableLine.FindStringSubmatch(line)
			table = m[1] + " " + m[2]
		case chainLine.MatchString(line):
			m := chainLine.FindStringSubmatch(line)
			rs.Chains = append(rs.Chains, Chain{Table: table, Name: m[1]})
			cur = &rs.Chains[len(rs.Chains)-1]
		case line == "}":
			cur = nil
		case cur != nil && strings.HasPrefix(line, "type "):
			if m := hookWord.FindStringSubmatch(line); m != nil {
				cur.Hook = m[1]
			}
			if m := policy.FindStringSubmatch(line); m != nil {
				cur.Policy = m[1]
			}
		case cur != nil:
			cur.Rules = append(cur.Rules, line)
		}
	}
	return rs
}

// Verdict says whether the ruleset would drop traffic of a kind arriving at
// hook (input or forward), with the lines that show it.
// match tells whether a rule is about that traffic (an ICMP echo, a port).
func (rs Ruleset) Verdict(hook string, match func(rule string) bool) (drops bool, evidence []string) {
	for _, c := range rs.Chains {
		if c.Hook != hook {
			continue
		}
		where := fmt.Sprintf("chain %s in table %s (hook %s, policy %s)", c.Name, c.Table, c.Hook, or(c.Policy, "accept"))
		accepted := false
		for _, r := range c.Rules {
			catchAll := catchAllVerdict(r)
			if catchAll == "" && (!match(r) || ruleLimitedToState(r)) {
				continue
			}
			if catchAll == "drop" || catchAll == "reject" || catchAll == "" && verdictIs(r, "drop", "reject") {
				return true, []string{where + " has: " + r}
			}
			if catchAll == "accept" || catchAll == "" && verdictIs(r, "accept") {
				accepted = true
				break // the first matching verdict decides
			}
		}
		if c.Policy == "drop" && !accepted {
			return true, []string{where + " has no rule accepting it"}
		}
		if c.Policy == "drop" {
			evidence = append(evidence, where+" accepts it")
		}
	}
	return false, evidence
}

// catchAllVerdict returns the verdict of a rule that matches everything
// ("counter drop comment ..."), and "" for any other rule.
func catchAllVerdict(rule string) string {
	if i := strings.Index(rule, "comment "); i >= 0 {
		rule = rule[:i]
	}
	verdict := ""
	f := strings.Fields(rule)
	for i := 0; i < len(f); i++ {
		switch w := f[i]; w {
		case "counter":
		case "packets", "bytes":
			i++ // and its number
		case "accept", "drop", "reject":
			verdict = w
		default:
			return ""
		}
	}
	return verdict
}

// ruleLimitedToState reports rules that only apply to established traffic,
// which a new connection or echo request never is.
func ruleLimitedToState(r string) bool {
	return strings.Contains(r, "ct state established") || strings.Contains(r, "ct state related")
}

func verdictIs(rule string, verdicts ...string) bool {
	f := strings.Fields(rule)
	for _, w := range f {
		if slices.Contains(verdicts, w) {
			return true
		}
	}
	return false
}

// matchEcho matches rules about IPv4 ICMP echo requests: "icmp type
// echo-request", "icmp type { echo-request, ... }", or all of ICMP
// ("meta l4proto icmp", "ip protocol icmp").
func matchEcho(rule string) bool {
	words := strings.Fields(strings.NewReplacer("{", " ", "}", " ", ",", " ").Replace(rule))
	if !slices.Contains(words, "icmp") {
		return false // icmpv6 rules, and rules about other traffic
	}
	return slices.Contains(words, "echo-request") || !slices.Contains(words, "type")
}

// matchFromContainers matches rules about everything from podman's bridges
// (iifname "podman*" accept), which covers a container's ping.
func matchFromContainers(rule string) bool {
	// iifname "podman*", not a rule about traffic to them (oifname "podman*").
	return (strings.Contains(rule, `iifname "podman`) || strings.Contains(rule, "iifname podman")) &&
		!strings.Contains(rule, "dport") && !strings.Contains(rule, "l4proto") && !strings.Contains(rule, "type")
}

// matchPort matches rules about tcp port p (alone, in a set or a range) as
// destination, before DNAT (ct original proto-dst) or after (dport).
func matchPort(p uint16) func(string) bool {
	ps := strconv.Itoa(int(p))
	return func(rule string) bool {
		if !strings.Contains(rule, "tcp") {
			return false
		}
		kw := "dport"
		i := strings.Index(rule, kw)
		if i < 0 {
			kw = "proto-dst"
			if i = strings.Index(rule, kw); i < 0 {
				return false
			}
		}
		rest := strings.NewReplacer("{", " ", "}", " ", ",", " ").Replace(rule[i+len(kw):])
		for _, w := range strings.Fields(rest) {
			if w == ps {
				return true
			}
			if lo, hi, ok := strings.Cut(w, "-"); ok {
				a, err1 := strconv.Atoi(lo)
				b, err2 := strconv.Atoi(hi)
				if err1 == nil && err2 == nil && a <= int(p) && int(p) <= b {
					return true
				}
			}
		}
		return false
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// podmanInspect is the part of `podman container inspect` (podman 4.3)
// Discover reads.
type podmanInspect struct {
	ID    string `json:"Id"`
	Name  string `json:"Name"`
	State struct {
		Pid         int    `json:"Pid"`
		Status      string `json:"Status"`
		Running     bool   `json:"Running"`
		ExitCode    int    `json:"ExitCode"`
		Healthcheck *struct {
			Status string `json:"Status"`
		} `json:"Healthcheck"`
		Health *struct { // the name podman 5 uses
			Status string `json:"Status"`
		} `json:"Health"`
	} `json:"State"`
	NetworkSettings struct {
		Networks map[string]struct {
			IPAddress string `json:"IPAddress"`
			Gateway   string `json:"Gateway"`
		} `json:"Networks"`
	} `json:"NetworkSettings"`
}

// ParseContainers reads `podman container inspect NAME...` JSON and returns
// one Container per name, in the order asked, with its address on podman
// network network (the app's); names podman did not list are "missing".
func ParseContainers(out string, names []string, network string) ([]Container, error) {
	var list []podmanInspect
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("podman container inspect: unexpected output: %s", firstLine(out))
	}
	found := map[string]Container{}
	for _, p := range list {
		c := Container{Name: strings.TrimPrefix(p.Name, "/"), State: p.State.Status, ID: p.ID, PID: p.State.Pid}
		if c.State == "" && p.State.Running {
			c.State = "running"
		}
		if c.State == "exited" {
			c.State = fmt.Sprintf("exited (code %d)", p.State.ExitCode)
		}
		switch {
		case p.State.Health != nil && p.State.Health.Status != "":
			c.Health = p.State.Health.Status
		case p.State.Healthcheck != nil:
			c.Health = p.State.Healthcheck.Status
		}
		if n, ok := p.NetworkSettings.Networks[network]; ok {
			c.IP, _ = netip.ParseAddr(n.IPAddress)
			c.Gateway, _ = netip.ParseAddr(n.Gateway)
		}
		found[c.Name] = c
	}
	out2 := make([]Container, 0, len(names))
	for _, n := range names {
		c, ok := found[n]
		if !ok {
			c = Container{Name: n, State: "missing"}
		}
		out2 = append(out2, c)
	}
	return out2, nil
}

// Discover asks podman in the guest about the named containers, and their
// addresses on podman network network (ParseContainers). One command
// for all of them; if podman fails as a whole (a missing container makes
// podman 4 exit 125), each is asked about alone.
func Discover(ctx context.Context, g Guest, names []string, network string, timeout time.Duration) []Container {
	argv := append([]string{"podman", "container", "inspect"}, names...)
	out, err := g.Exec(ctx, argv, timeout)
	if err == nil {
		if cs, perr := ParseContainers(out.Stdout, names, network); perr == nil && (out.Code == 0 || allFound(cs)) {
			return cs
		}
	}
	if err != nil {
		res := make([]Container, len(names))
		for i, n := range names {
			res[i] = Container{Name: n, State: "unknown", Error: "could not run podman in the guest: " + firstLine(err.Error())}
		}
		return res
	}
	res := make([]Container, 0, len(names))
	for _, n := range names {
		o, err := g.Exec(ctx, []string{"podman", "container", "inspect", n}, timeout)
		switch {
		case err != nil:
			res = append(res, Container{Name: n, State: "unknown", Error: firstLine(err.Error())})
		case o.Code != 0:
			res = append(res, absentOr(ctx, g, n, o, timeout))
		default:
			cs, perr := ParseContainers(o.Stdout, []string{n}, network)
			if perr != nil {
				res = append(res, Container{Name: n, State: "unknown", Error: perr.Error()})
				continue
			}
			res = append(res, cs[0])
		}
	}
	return res
}

// absentOr is container n after 'podman container inspect n' failed with o:
// missing when 'podman container exists n' says so (exit 1), else unknown
// with podman's words. podman's exit code says it, not its message text.
func absentOr(ctx context.Context, g Guest, n string, o Output, timeout time.Duration) Container {
	e, err := g.Exec(ctx, []string{"podman", "container", "exists", n}, timeout)
	if err == nil && e.Code == 1 {
		return Container{Name: n, State: "missing"}
	}
	return Container{Name: n, State: "unknown", Error: fmt.Sprintf("podman exit %d: %s", o.Code, firstLine(o.Stderr+o.Stdout))}
}

func allFound(cs []Container) bool {
	for _, c := range cs {
		if c.State == "missing" {
			return false
		}
	}
	return true
}
