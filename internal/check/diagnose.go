package check

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"vmnet/internal/app"
)

// diagnoser names the hop and the likely cause of failed checks. Its probes
// are cheap (netlink on the host, a few guest commands) and each runs at
// most once per run, however many checks fail for the same reason.
type diagnoser struct {
	host  Host
	guest Guest
	t     Target
	opt   Options
	byID  map[string]*Result

	hostLinks map[string]hostLinkProbe
	glinks    *guestLinksProbe
	rules     *rulesProbe
	aardvark  *string
	now       map[string]finding    // containerNow's answers, by container
	peers     map[string]*diagnoser // the far ends' diagnosers, by node (peerPath)
}

type hostLinkProbe struct {
	link Link
	err  error
}

type guestLinksProbe struct {
	links []GuestLink
	err   error
}

type rulesProbe struct {
	rs      Ruleset
	missing string // why there is no ruleset to read ("" when there is one)
}

func newDiagnoser(host Host, guest Guest, t Target, results []Result, opt Options) *diagnoser {
	d := &diagnoser{host: host, guest: guest, t: t, opt: opt, byID: map[string]*Result{}, hostLinks: map[string]hostLinkProbe{},
		now: map[string]finding{}, peers: map[string]*diagnoser{}}
	for i := range results {
		d.byID[results[i].ID] = &results[i]
	}
	return d
}

// finding is the outcome of a diagnosis step: found is false when the step
// ruled its hop out (its evidence says so).
type finding struct {
	hop      string
	cause    Cause
	evidence []string
	found    bool
}

func (f *finding) add(format string, a ...any) {
	f.evidence = append(f.evidence, fmt.Sprintf(format, a...))
}

func (f *finding) blame(hop string, cause Cause, format string, a ...any) {
	f.hop, f.cause, f.found = hop, cause, true
	f.add(format, a...)
}

func (d *diagnoser) diagnose(ctx context.Context, r *Result) {
	f := &finding{}
	if !d.modeLimit(r, f) && !d.notBlocked(r, f) {
		d.find(ctx, r, f)
	}
	if !f.found {
		f.hop, f.cause = r.Source+" → "+r.Target, CauseUnknown
		if len(f.evidence) == 0 {
			f.add("the probes found nothing wrong on the way")
		}
	}
	r.Hop, r.Cause, r.Evidence = f.hop, f.cause, dedupe(f.evidence)
}

// dedupe drops repeated evidence lines (two probes may say the same thing).
func dedupe(lines []string) []string {
	seen := map[string]bool{}
	out := lines[:0]
	for _, l := range lines {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func (d *diagnoser) find(ctx context.Context, r *Result, f *finding) {
	c := r.Check
	if r.obs.execErr {
		via := "serial console"
		if d.t.Agent {
			via = "guest agent"
		}
		f.blame(fmt.Sprintf("host → %s (%s)", d.t.Name, via), CauseGuestUnreachable, "%s", firstLine(r.obs.err.Error()))
		return
	}
	if c.From.Kind == OnContainer && r.obs.code >= 125 {
		msg := firstLine(r.obs.stderr + r.obs.stdout)
		f.add("%s in %s failed: %s", r.obs.ran(), c.From.Container, msg)
		d.container(c.From.Container, f)
		// Exit 125 is podman's own failure: the container may have gone away
		// or stopped after the inventory was taken, so ask podman again.
		// Anything else (no podman at all, exit 127) is not this cause.
		if !f.found && r.obs.code == 125 {
			d.containerNow(ctx, c.From.Container, f)
		}
		return
	}
	var nic *NIC
	if c.NIC >= 0 && c.NIC < len(d.t.NICs) {
		nic = &d.t.NICs[c.NIC]
	}
	switch {
	case c.Method == MethodTCP && c.Want == WantClosed && r.obs.err == nil && c.Unknown == "":
		d.portOpen(ctx, c, f)
	case c.Method == MethodDNS:
		d.dns(ctx, r, f)
	case c.Method == MethodHTTP:
		d.http(ctx, r, nic, f)
	case c.From.Kind == OnVM && c.Container != "":
		// VM → container on the app's network.
		if d.container(c.Container, f); f.found {
			return
		}
		d.appBridge(ctx, c.Container, f)
	case c.From.Kind == OnContainer && nic == nil:
		// Container → the VM's own address on the app's network.
		if d.appBridge(ctx, c.From.Container, f); f.found || c.Unknown != "" {
			return
		}
		d.firewall(ctx, "input", "ICMP echo", matchEcho, f)
	case nic != nil:
		// Host ↔ VM on one NIC, or container → host through it.
		if d.path(ctx, *nic, c, f); f.found || c.Unknown != "" {
			break
		}
		what, match := "ICMP echo", matchEcho
		if c.Method == MethodTCP {
			what, match = fmt.Sprintf("tcp port %d", c.Port), matchPort(c.Port)
		}
		switch c.From.Kind {
		case OnHost:
			d.firewall(ctx, "input", what, match, f)
		case OnVM:
			d.firewall(ctx, "output", what, match, f)
		case OnContainer:
			d.firewall(ctx, "forward", what, func(r string) bool { return match(r) || matchFromContainers(r) }, f)
		}
	}
	if !f.found && c.Unknown != "" && len(f.evidence) == 0 {
		f.add("%s", c.Unknown)
	}
}

// path walks the hops between the host and guest NIC n, host side first,
// then, for a check that reaches another lab node, that node's (peerPath),
// and blames the first broken one.
func (d *diagnoser) path(ctx context.Context, n NIC, c Check, f *finding) {
	if d.ownPath(ctx, n, c, f); !f.found {
		d.peerPath(ctx, c, f)
	}
}

// ownPath walks the hops of the source's NIC n (path).
func (d *diagnoser) ownPath(ctx context.Context, n NIC, c Check, f *finding) {
	if n.Parent != "" {
		if d.parentHop(n, f) {
			return
		}
	} else if n.Bridge == "" {
		f.add("libvirt names no host bridge for %s", n.Guest)
	} else if d.bridgeHop(n, f) || d.tapHop(n, f) || d.hostAddressHop(n, c, f) {
		return
	}
	d.guestNICHop(ctx, n, f)
}

// peerPath walks the hops of the NIC check c reaches on another running
// lab node (Check.peer): its host bridge (or macvtap parent), its tap, and
// its guest NIC when the node's guest agent can tell (a serial console is
// left to the node's own checks). The host's address is not on this path.
func (d *diagnoser) peerPath(ctx context.Context, c Check, f *finding) {
	p := d.peer(c.peer)
	if p == nil || c.peerNIC < 0 || c.peerNIC >= len(p.t.NICs) {
		return
	}
	n := p.t.NICs[c.peerNIC]
	switch {
	case n.Parent != "":
		if p.parentHop(n, f) {
			return
		}
	case n.Bridge == "":
		f.add("libvirt names no host bridge for %s:%s", p.t.Name, n.Guest)
	case p.bridgeHop(n, f) || p.tapHop(n, f):
		return
	}
	if !p.t.Agent {
		f.add("%s has no guest agent: its %s was not read (its own checks say more)", p.t.Name, n.Guest)
		return
	}
	p.guestNICHop(ctx, n, f)
}

// peer is the diagnoser of running lab node name, made once per run and
// sharing d's host link probes; nil when name is not running (or "").
func (d *diagnoser) peer(name string) *diagnoser {
	if p, ok := d.peers[name]; ok {
		return p
	}
	n, ok := d.opt.peers[name]
	if !ok || name == "" || name == d.t.Name {
		return nil
	}
	p := newDiagnoser(d.host, n.Guest, n.Target, nil, d.opt)
	p.hostLinks = d.hostLinks
	d.peers[name] = p
	return p
}

// bridgeHop blames n's host bridge when it is missing or down, and says
// whether it did.
func (d *diagnoser) bridgeHop(n NIC, f *finding) (blamed bool) {
	br, err := d.hostLink(n.Bridge)
	switch {
	case err != nil:
		f.add("could not read %s on the host: %v", n.Bridge, err)
	case !br.Exists:
		f.blame("host:"+n.Bridge, CauseBridgeDown, "%s does not exist on the host", n.Bridge)
		return true
	case !br.Up:
		f.blame("host:"+n.Bridge, CauseBridgeDown, "%s is administratively down (ip link set %s up)", n.Bridge, n.Bridge)
		return true
	default:
		f.add("%s is administratively up (operational state %s)", n.Bridge, br.OperState)
	}
	return false
}

// tapHop blames n's tap when it is missing, outside n's bridge or down, and
// says whether it did.
func (d *diagnoser) tapHop(n NIC, f *finding) (blamed bool) {
	if n.Tap == "" {
		f.add("libvirt names no tap device for %s", n.Guest)
		return false
	}
	tap, err := d.hostLink(n.Tap)
	if err != nil {
		f.add("could not read %s on the host: %v", n.Tap, err)
		return false
	}
	switch {
	case !tap.Exists:
		f.blame("tap "+n.Tap, CauseTapNotAttached, "%s (the host side of %s:%s) does not exist", n.Tap, d.t.Name, n.Guest)
	case tap.Master == "":
		f.blame("tap "+n.Tap, CauseTapNotAttached, "%s is not a port of any bridge; it belongs in %s (ip link set %s master %s)", n.Tap, n.Bridge, n.Tap, n.Bridge)
	case tap.Master != n.Bridge:
		f.blame("tap "+n.Tap, CauseTapNotAttached, "%s is a port of %s, not of %s", n.Tap, tap.Master, n.Bridge)
	case !tap.Up:
		f.blame("tap "+n.Tap, CauseTapDown, "%s is a port of %s but administratively down (ip link set %s up)", n.Tap, n.Bridge, n.Tap)
	default:
		f.add("%s is a port of %s and up", n.Tap, n.Bridge)
		return false
	}
	return true
}

// hostAddressHop blames n's bridge when the host is an end of check c and
// the bridge lacks the host's address, and says whether it did. The host's
// own address matters only then.
func (d *diagnoser) hostAddressHop(n NIC, c Check, f *finding) (blamed bool) {
	if c.From.Kind != OnHost && c.Target != n.HostLabel() {
		return false
	}
	br, err := d.hostLink(n.Bridge)
	switch {
	case err != nil:
		return false
	case !n.Host.IsValid():
		f.blame("host:"+n.Bridge, CauseHostAddressMissing, "%s has no IPv4 address on the host", n.Bridge)
	case !hasAddr(br.Addrs, n.Host):
		f.blame("host:"+n.Bridge, CauseHostAddressMissing, "%s does not have %s (it has %s)", n.Bridge, n.Host, prefixes(br.Addrs))
	default:
		f.add("%s has %s", n.Bridge, n.Host)
		return false
	}
	return true
}

// guestNICHop blames guest NIC n when the guest lacks it, or it is down,
// without carrier or without its address.
func (d *diagnoser) guestNICHop(ctx context.Context, n NIC, f *finding) {
	links, err := d.guestLinks(ctx)
	if err != nil {
		f.add("could not read the guest's NICs: %v", err)
		return
	}
	hop := d.t.Name + ":" + n.Guest
	var gl *GuestLink
	for i := range links {
		if links[i].Name == n.Guest {
			gl = &links[i]
		}
	}
	switch {
	case gl == nil:
		f.blame(hop, CauseGuestNICDown, "the guest has no %s (it has %s)", n.Guest, linkNames(links))
	case !gl.LinkUp:
		f.blame(hop, CauseGuestNICDown, "%s is administratively down in the guest", n.Guest)
	case !gl.Carrier:
		f.blame(hop, CauseGuestNICDown, "%s has no carrier in the guest (NO-CARRIER: is the link set down on the host side?)", n.Guest)
	case n.Address.IsValid() && !hasAddr(gl.Addrs, n.Address):
		f.blame(hop, CauseGuestNICDown, "%s does not have %s in the guest (it has %s)", n.Guest, n.Address, prefixes(gl.Addrs))
	case !n.Address.IsValid() && len(gl.Addrs) == 0:
		f.blame(hop, CauseGuestNICDown, "%s has no IPv4 address in the guest", n.Guest)
	default:
		f.add("%s is up in the guest with %s", n.Guest, prefixes(gl.Addrs))
	}
}

// firewall blames the guest's nftables ruleset when it drops what at hook.
func (d *diagnoser) firewall(ctx context.Context, hook, what string, match func(string) bool, f *finding) {
	p := d.ruleset(ctx)
	if p.missing != "" {
		f.add("%s", p.missing)
		return
	}
	drops, ev := p.rs.Verdict(hook, match)
	if drops {
		f.blame(fmt.Sprintf("%s firewall (%s)", d.t.Name, hook), CauseFirewallDrop, "%s: %s", what, strings.Join(ev, "; "))
		return
	}
	if len(ev) == 0 {
		f.add("no %s chain of the guest's ruleset drops %s", hook, what)
		return
	}
	for _, e := range ev {
		f.add("%s", e)
	}
}

func (d *diagnoser) portOpen(ctx context.Context, c Check, f *finding) {
	f.blame(fmt.Sprintf("%s firewall (input)", d.t.Name), CausePortOpen, "the host connected to %s, which must be closed", netip.AddrPortFrom(c.To, c.Port))
	p := d.ruleset(ctx)
	switch {
	case p.missing != "":
		f.add("%s", p.missing)
	default:
		if drops, _ := p.rs.Verdict("input", matchPort(c.Port)); !drops {
			f.add("no input chain drops tcp port %d; a published port (podman -p) is DNATed and goes through forward", c.Port)
		}
		if drops, _ := p.rs.Verdict("forward", matchPort(c.Port)); !drops {
			f.add("no forward chain drops tcp port %d", c.Port)
		}
	}
}

func (d *diagnoser) dns(ctx context.Context, r *Result, f *finding) {
	c := r.Check
	if c.Container == "" || c.From.Kind != OnContainer {
		// Not a name on the app's network: the lab's own DNS, which vmnet has no probe for.
		f.add("%s looked %s up: %s (exit %d)", c.Source, c.Name, r.Actual, r.obs.code)
		return
	}
	if d.container(c.Container, f); f.found {
		f.add("aardvark-dns answers only for running containers")
		return
	}
	f.blame(d.t.Name+" "+d.t.appNetwork()+" DNS (aardvark-dns)", CauseDNS, "getent hosts %s in %s: %s (exit %d)", c.Name, c.From.Container, r.Actual, r.obs.code)
	if d.aardvark == nil {
		s := "could not ask the guest whether aardvark-dns runs"
		if out, err := d.guest.Exec(ctx, []string{"pidof", "aardvark-dns"}, d.opt.ExecTimeout); err == nil {
			switch out.Code {
			case 0:
				s = "aardvark-dns runs in the guest (pid " + strings.TrimSpace(out.Stdout) + ")"
			case 1:
				s = "aardvark-dns is not running in the guest"
			}
		}
		d.aardvark = &s
	}
	f.add("%s", *d.aardvark)
}

// http diagnoses an HTTP check: along the app's path when it goes to the
// port the app publishes (appHTTP), as any service otherwise (plainHTTP).
func (d *diagnoser) http(ctx context.Context, r *Result, nic *NIC, f *finding) {
	if d.t.App == nil || r.Container != d.t.App.HTTP.Container {
		d.plainHTTP(ctx, r, nic, f)
		return
	}
	c, o := r.Check, r.obs
	switch {
	case c.Unknown != "":
		if nic != nil {
			d.path(ctx, *nic, c, f)
		}
	case o.err != nil:
		d.appUnanswered(ctx, r, nic, f)
	case o.status == 502 || o.status == 504:
		d.upstreamDown(*d.t.App, f, o)
	case o.status >= 500:
		d.backEndFailed(*d.t.App, f, o)
	default:
		next, _ := d.t.App.Upstream(d.t.App.HTTP.Container)
		f.blame(inside(d.t, next.Name), CauseServiceError, "HTTP %d, body: %s", o.status, snippet(o.body, 160))
	}
}

// appUnanswered diagnoses an app's GET that got no HTTP answer: the NIC's
// hops, the entry container, then nothing publishing its port (refused)
// or the guest's firewall (dropped).
func (d *diagnoser) appUnanswered(ctx context.Context, r *Result, nic *NIC, f *finding) {
	c, entry := r.Check, d.t.App.Entry()
	if nic != nil {
		if d.path(ctx, *nic, c, f); f.found {
			return
		}
	}
	if d.container(entry.Name, f); f.found {
		return
	}
	if errors.Is(r.obs.err, ErrRefused) {
		f.blame(fmt.Sprintf("%s:%d", d.t.Name, c.Port), CauseNotListening,
			"the guest refused port %d: nothing publishes it (the %s's -p %d:%d)", c.Port, entry.Name, c.Port, entry.Port)
		return
	}
	if d.firewall(ctx, "input", fmt.Sprintf("tcp port %d", c.Port), matchPort(c.Port), f); f.found {
		return
	}
	d.firewall(ctx, "forward", fmt.Sprintf("tcp port %d", entry.Port), matchPort(uint16(entry.Port)), f)
}

// upstreamDown diagnoses the entry container's gateway error (nginx's 502
// or 504): it could not reach the container behind it.
func (d *diagnoser) upstreamDown(a app.App, f *finding, o observation) {
	entry := a.Entry()
	next, _ := a.Upstream(entry.Name)
	hop := inside(d.t, entry.Name) + " → " + inside(d.t, next.Name)
	f.add("the %s answered %d: %s", entry.Title, o.status, snippet(o.body, 100))
	if d.container(next.Name, f); f.found {
		f.hop = hop
		return
	}
	f.blame(hop, CauseServiceError, "%s runs, but the %s cannot reach it on %s:%d", next.Name, entry.Title, next.Name, next.Port)
}

// backEndFailed diagnoses a 5xx of the container behind the entry: usually
// the one behind it (the capstone API's database).
func (d *diagnoser) backEndFailed(a app.App, f *finding, o observation) {
	next, _ := a.Upstream(a.HTTP.Container)
	last, _ := a.Upstream(next.Name)
	hop := inside(d.t, next.Name) + " → " + inside(d.t, last.Name)
	f.add("the %s answered %d: %s", next.Title, o.status, snippet(o.body, 160))
	if d.container(last.Name, f); f.found {
		f.hop = hop
		return
	}
	f.blame(hop, CauseServiceError, "%s runs; the %s's error text above says why the query failed", last.Name, next.Title)
}

// container blames a container that does not run, and otherwise adds its
// state as evidence.
func (d *diagnoser) container(name string, f *finding) {
	c, ok := d.containerInfo(name)
	hop := inside(d.t, name)
	switch {
	case !ok:
		f.add("podman was not asked about %s", name)
	case c.State == "unknown":
		f.add("podman's state of %s is unknown: %s", name, c.Error)
	case c.State == "missing":
		f.blame(hop, CauseContainerNotRunning, "podman: container %s does not exist", name)
	case !c.Running():
		f.blame(hop, CauseContainerNotRunning, "podman: container %s is %s", name, c.State)
	default:
		s := "podman: " + name + " is running"
		if c.Health != "" {
			s += " (" + c.Health + ")"
		}
		if c.IP.IsValid() {
			s += ", " + c.IP.String() + " on " + d.t.appNetwork()
		}
		f.add("%s", s)
	}
}

// containerNow asks podman in the guest, once per container and run,
// whether container name exists now ('podman container exists': exit 1 is
// absent) and, when it does, whether it runs ('podman container inspect'),
// and blames it when it is gone or stopped.
func (d *diagnoser) containerNow(ctx context.Context, name string, f *finding) {
	p, ok := d.now[name]
	if !ok {
		p = d.probeContainer(ctx, name)
		d.now[name] = p
	}
	f.evidence = append(f.evidence, p.evidence...)
	if p.found {
		f.hop, f.cause, f.found = p.hop, p.cause, true
	}
}

func (d *diagnoser) probeContainer(ctx context.Context, name string) finding {
	var p finding
	hop := inside(d.t, name)
	out, err := d.guest.Exec(ctx, []string{"podman", "container", "exists", name}, d.opt.ExecTimeout)
	switch {
	case err != nil:
		p.add("could not ask podman whether %s exists: %s", name, firstLine(err.Error()))
		return p
	case out.Code == 1:
		p.blame(hop, CauseContainerNotRunning, "podman: container %s does not exist now", name)
		return p
	case out.Code != 0:
		p.add("podman container exists %s: exit %d: %s", name, out.Code, firstLine(out.Stderr+out.Stdout))
		return p
	}
	out, err = d.guest.Exec(ctx, []string{"podman", "container", "inspect", name}, d.opt.ExecTimeout)
	if err != nil || out.Code != 0 {
		p.add("podman container inspect %s failed", name)
		return p
	}
	cs, err := ParseContainers(out.Stdout, []string{name}, d.t.appNetwork())
	switch {
	case err != nil:
		p.add("podman container inspect %s: %v", name, err)
	case !cs[0].Running():
		p.blame(hop, CauseContainerNotRunning, "podman: container %s is %s now", name, cs[0].State)
	default:
		p.add("podman: container %s exists and runs", name)
	}
	return p
}

func (d *diagnoser) containerInfo(name string) (Container, bool) {
	for _, c := range d.t.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

// appBridge checks the guest's bridge for the app's network (the link that
// holds the gateway address the container sees).
func (d *diagnoser) appBridge(ctx context.Context, container string, f *finding) {
	c, _ := d.containerInfo(container)
	gw, net := gatewayOf(d.t.Containers, c), d.t.appNetwork()
	if !gw.IsValid() {
		f.add("podman reports no %s gateway", net)
		return
	}
	links, err := d.guestLinks(ctx)
	if err != nil {
		f.add("could not read the guest's links: %v", err)
		return
	}
	for _, l := range links {
		if !hasAddr(l.Addrs, gw) {
			continue
		}
		hop := d.t.Name + ":" + l.Name
		if !l.LinkUp {
			f.blame(hop, CauseBridgeDown, "%s (%s's bridge, %s) is administratively down in the guest", l.Name, net, gw)
			return
		}
		f.add("%s (%s's bridge) is up with %s", l.Name, net, gw)
		return
	}
	f.blame(d.t.Name+" "+net, CauseBridgeDown, "no guest link holds %s, %s's gateway", gw, net)
}

func (d *diagnoser) hostLink(name string) (Link, error) {
	if p, ok := d.hostLinks[name]; ok {
		return p.link, p.err
	}
	l, err := d.host.Link(name)
	d.hostLinks[name] = hostLinkProbe{l, err}
	return l, err
}

func (d *diagnoser) guestLinks(ctx context.Context) ([]GuestLink, error) {
	if d.glinks == nil {
		p := &guestLinksProbe{}
		out, err := d.guest.Exec(ctx, []string{"sh", "-c", guestLinksScript}, d.opt.ExecTimeout)
		switch {
		case err != nil:
			p.err = err
		case out.Code != 0:
			p.err = fmt.Errorf("ip exit %d: %s", out.Code, firstLine(out.Stderr+out.Stdout))
		default:
			p.links, p.err = ParseGuestLinks(out.Stdout)
		}
		d.glinks = p
	}
	return d.glinks.links, d.glinks.err
}

func (d *diagnoser) ruleset(ctx context.Context) *rulesProbe {
	if d.rules == nil {
		p := &rulesProbe{}
		out, err := d.guest.Exec(ctx, []string{"nft", "list", "ruleset"}, d.opt.ExecTimeout)
		switch {
		case err != nil:
			p.missing = "could not read the guest's nftables ruleset: " + firstLine(err.Error())
		case out.Code == 127:
			p.missing = "the guest has no nft command, so no nftables firewall"
		case out.Code != 0:
			p.missing = fmt.Sprintf("nft list ruleset exit %d: %s", out.Code, firstLine(out.Stderr+out.Stdout))
		default:
			p.rs = ParseRuleset(out.Stdout)
			if len(p.rs.Chains) == 0 {
				p.missing = "the guest's nftables ruleset is empty"
			}
		}
		d.rules = p
	}
	return d.rules
}

func hasAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no IPv4 address"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func linkNames(ls []GuestLink) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.Name
	}
	return strings.Join(s, ", ")
}
