package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"vmnet/internal/app"
	"vmnet/internal/safe"
)

// Host is the namespace vmnet runs in, as checks and diagnosis use it.
// KernelHost is the real one.
type Host interface {
	// Ping sends ICMP echo requests until one is answered (nil), or returns
	// ErrNoAnswer after timeout.
	Ping(ctx context.Context, to netip.Addr, timeout time.Duration) error
	// Dial opens and closes a TCP connection: nil when it connected,
	// ErrRefused on a reset, ErrNoAnswer when nothing came back in time.
	Dial(ctx context.Context, to netip.AddrPort, timeout time.Duration) error
	// Get does an HTTP GET and returns the status and the start of the body;
	// connection failures are ErrRefused or ErrNoAnswer like Dial's.
	Get(ctx context.Context, url string, timeout time.Duration) (status int, body []byte, err error)
	// Link reads a network interface's state; a missing one is not an
	// error (Exists is false).
	Link(name string) (Link, error)
}

// Link is a host network interface as diagnosis sees it.
type Link struct {
	Name      string
	Exists    bool
	Up        bool   // administratively up (IFF_UP)
	OperState string // up, down, lower-layer-down, unknown, ...
	Master    string // the bridge it is a port of, or ""
	Addrs     []netip.Prefix
}

// Guest runs commands in the VM. VMGuest is the real one (vm.Exec).
type Guest interface {
	// Exec runs argv and returns its output and exit code; err means the
	// command could not be run or did not finish in time.
	Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error)
}

// Output is what a guest command printed and how it exited.
type Output struct {
	Stdout, Stderr string
	Code           int
}

// Errors the Host executor returns, matched with errors.Is.
var (
	ErrNoAnswer = errors.New("no answer")
	ErrRefused  = errors.New("connection refused")
)

// Options tune a run. The zero value is fine.
type Options struct {
	// Parallel is how many guest commands run at once (default 8; always 1
	// without a guest agent, the serial console being a single line).
	Parallel int
	// PingTimeout bounds one ping (default 3s from the host; guests use
	// `ping -c 1 -W 2`).
	PingTimeout time.Duration
	// ConnectTimeout bounds a TCP connect (default 2s): a port that must be
	// closed and drops silently costs this long from the host, unless a
	// positive check on the same address answered first (then 5 of its
	// round trips, at least 500 ms: see controls.go).
	ConnectTimeout time.Duration
	// HTTPTimeout bounds an HTTP GET (default 10s: the first request wakes
	// nginx, Flask and PostgreSQL under TCG).
	HTTPTimeout time.Duration
	// ExecTimeout bounds one guest command (default 60s). A podman exec
	// under TCG takes a few seconds, but on a loaded 2-core host four at
	// once took over 30s, and the first timeout latches the guest: every
	// later in-guest check then fails as "could not run".
	ExecTimeout time.Duration
	// Converge, for a lab's checks, runs the matrix again while checks fail
	// until this long after the start (0: once).
	Converge time.Duration
	// Apps are the applications a single VM's --matrix may name (the
	// caller's registry, internal/app/builtin); a lab's nodes name theirs
	// with app: in the lab file.
	Apps app.Registry
	// Nodes, for a lab's checks after part of it came up (lab up --node),
	// keeps only the checks that need none of the other nodes (those from
	// and to these nodes, and the host's own); empty keeps every check.
	Nodes []string

	peers map[string]LabNode // a lab's running nodes, for diagnosing a check's far end (Check.peer)
}

func (o Options) withDefaults(t Target) Options {
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if !t.Agent {
		o.Parallel = 1
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 3 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.HTTPTimeout <= 0 {
		o.HTTPTimeout = 10 * time.Second
	}
	if o.ExecTimeout <= 0 {
		o.ExecTimeout = 60 * time.Second
	}
	return o
}

// hostParallel bounds host-side checks: they only wait on the network.
const hostParallel = 16

// Run runs checks against t: host-side checks all at once, guest-side ones
// (VM and containers) at most opt.Parallel at a time, then diagnoses every
// failure. Results come in the order of checks.
func Run(ctx context.Context, host Host, guest Guest, t Target, checks []Check, opt Options) []Result {
	opt = opt.withDefaults(t)
	guest = latch(guest)
	r := &runner{host: host, guest: guest, t: t, opt: opt, controls: newControls()}
	results := make([]Result, len(checks))
	hostSem := make(chan struct{}, hostParallel)
	guestSem := make(chan struct{}, opt.Parallel)
	var wg sync.WaitGroup
	crashed := make([]bool, len(checks))
	for i, c := range checks {
		sem := guestSem
		if c.From.Kind == OnHost {
			sem = hostSem
		}
		// A bug in a check fails that check, and only it.
		safe.Go(&wg, "check "+c.ID, func() error {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i] = Result{Check: c, Actual: "interrupted"}
				return nil
			}
			defer func() { <-sem }()
			results[i] = r.run(ctx, c)
			return nil
		}, func(err error) {
			if err != nil {
				results[i] = Result{Check: c, Actual: err.Error(), Cause: CauseUnknown}
				crashed[i] = true
			}
		})
	}
	wg.Wait()
	d := newDiagnoser(host, guest, t, results, opt)
	for i := range results {
		// A check that already has its cause (it crashed, or was judged
		// without probing, as for a target the source itself holds) keeps it.
		if results[i].Pass || crashed[i] || results[i].Cause != "" {
			continue
		}
		if err := safe.Call("diagnosing "+results[i].ID, func() error { d.diagnose(ctx, &results[i]); return nil }); err != nil {
			results[i].Hop, results[i].Cause, results[i].Evidence = "", CauseUnknown, []string{err.Error()}
		}
	}
	requireOthers(results)
	return results
}

// latchGuest stops asking a guest that failed to run a command: when the
// agent or the console does not answer, every further command would fail
// the same way, each after its own timeout.
type latchGuest struct {
	g   Guest
	mu  sync.Mutex
	err error
}

func latch(g Guest) Guest {
	if _, ok := g.(*latchGuest); ok {
		return g
	}
	return &latchGuest{g: g}
}

func (l *latchGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return Output{}, fmt.Errorf("not tried, an earlier command failed: %w", err)
	}
	out, err := l.g.Exec(ctx, argv, timeout)
	if err != nil && ctx.Err() == nil {
		l.mu.Lock()
		if l.err == nil {
			l.err = err
		}
		l.mu.Unlock()
	}
	return out, err
}

// requireOthers fails a passing check whose prerequisite failed: "closed"
// means nothing when the VM itself did not answer.
func requireOthers(results []Result) {
	byID := map[string]*Result{}
	for i := range results {
		byID[results[i].ID] = &results[i]
	}
	for i := range results {
		r := &results[i]
		for _, id := range r.Requires {
			if p, ok := byID[id]; ok && !p.Pass && r.Pass {
				r.Pass = false
				r.Actual += " (proves nothing: " + id + " failed)"
				r.Cause, r.Hop = CauseInconclusive, p.Hop
				r.Evidence = []string{fmt.Sprintf("%s must pass first: %s (%s)", id, p.Actual, p.Cause)}
			}
		}
	}
}

type runner struct {
	host  Host
	guest Guest
	t     Target
	opt   Options
	// noNsenter is set once a check finds the guest has no nsenter: the
	// others go straight to podman exec.
	noNsenter atomic.Bool
	controls  *controls // the answers of the run's positive host checks, by address
}

func (r *runner) run(ctx context.Context, c Check) (res Result) {
	res.Check = c
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if c.Unknown != "" {
		res.Actual = c.Unknown
		return res
	}
	if who := ownAddress(r.t, c); who != "" {
		// The answer would come from the source itself: not tried, failed.
		res.Actual = fmt.Sprintf("target address %s belongs to the source itself: the check proves nothing", c.To)
		res.Hop, res.Cause = c.Source+" → "+c.Target, CauseOwnAddress
		res.Evidence = []string{fmt.Sprintf("%s is %s", c.To, who)}
		if also := alsoHeldBy(r.t, c.To, who); also != "" {
			res.Evidence = append(res.Evidence, fmt.Sprintf("%s is also %s: give one of them another address", c.To, also))
		}
		return res
	}
	switch c.Method {
	case MethodPing:
		if r.ping(ctx, &res); c.Want == WantNoReply {
			judgeNoReply(&res)
		}
	case MethodTCP:
		r.tcp(ctx, &res)
	case MethodHTTP:
		r.http(ctx, &res)
	case MethodDNS:
		r.dns(ctx, &res)
	case MethodNeigh:
		r.neigh(ctx, &res)
	default:
		res.Actual = fmt.Sprintf("unknown method %q", c.Method)
	}
	r.noteControl(&res, time.Since(start))
	return res
}

// ownAddress says whose address c's target is when that is c's source
// itself ("the host's address on br0"), or "" when it is not. A ping, a
// connect or a GET to an address the source holds is answered by the
// source, whatever the path: the check would pass and prove nothing.
func ownAddress(t Target, c Check) string {
	if !c.To.IsValid() || c.Method == MethodDNS { // a DNS check's To is the expected answer, not where it goes
		return ""
	}
	for _, h := range holders(t) {
		if h.addr == c.To && h.kind == c.From.Kind && h.container == c.From.Container {
			return h.who
		}
	}
	return ""
}

// alsoHeldBy names another holder of a than who, if any (the VM NIC that
// has the host's address, or the other way round).
func alsoHeldBy(t Target, a netip.Addr, who string) string {
	for _, h := range holders(t) {
		if h.addr == a && h.who != who {
			return h.who
		}
	}
	return ""
}

type holder struct {
	addr      netip.Addr
	kind      PlaceKind
	container string
	who       string
}

// holders lists the addresses each place of the lab holds, as the target
// describes them.
func holders(t Target) []holder {
	var out []holder
	for _, n := range t.NICs {
		out = append(out, holder{n.Host, OnHost, "", "the host's address on " + strings.TrimPrefix(n.HostLabel(), "host:")},
			holder{n.Address, OnVM, "", fmt.Sprintf("%s's address on %s", t.Name, n.Guest)})
	}
	for _, c := range t.Containers {
		out = append(out, holder{c.IP, OnContainer, c.Name, "container " + c.Name + "'s address"},
			holder{c.Gateway, OnVM, "", fmt.Sprintf("%s's address on %s", t.Name, t.appNetwork())})
	}
	return slices.DeleteFunc(out, func(h holder) bool { return !h.addr.IsValid() })
}

// exec runs argv in the guest, or in a container (containerExec).
func (r *runner) exec(ctx context.Context, from Place, argv []string, res *Result) bool {
	var (
		out Output
		err error
	)
	if from.Kind == OnContainer {
		out, res.obs.via, argv, err = r.containerExec(ctx, from.Container, argv)
	} else {
		out, err = r.guest.Exec(ctx, argv, r.opt.ExecTimeout)
	}
	res.obs.stdout, res.obs.stderr, res.obs.code = out.Stdout, out.Stderr, out.Code
	if err != nil {
		res.obs.err, res.obs.execErr = err, true
		what := argv[0]
		if res.obs.via != "" {
			what = res.obs.via
		}
		res.Actual = "could not run " + what + " in the guest: " + firstLine(err.Error())
		return false
	}
	return true
}

func (r *runner) ping(ctx context.Context, res *Result) {
	c := res.Check
	if c.From.Kind == OnHost {
		err := r.host.Ping(ctx, c.To, r.opt.PingTimeout)
		res.obs.err = err
		switch {
		case err == nil:
			res.Pass, res.Actual = true, "reply"
		case errors.Is(err, ErrNoAnswer):
			res.Actual = fmt.Sprintf("no reply within %s", r.opt.PingTimeout)
		default:
			res.Actual = firstLine(err.Error())
		}
		return
	}
	argv := []string{"ping", "-c", "1", "-W", "2"}
	if c.From.Kind == OnVM && c.NIC >= 0 && c.NIC < len(r.t.NICs) {
		// Out of that NIC only: the host owns the addresses of every
		// network, and a reply over another NIC proves nothing about this one.
		argv = append(argv, "-I", r.t.NICs[c.NIC].Guest)
	}
	if !r.exec(ctx, c.From, append(argv, c.To.String()), res) {
		return
	}
	switch o := res.obs; {
	case o.code == 0:
		res.Pass, res.Actual = true, "reply"
	case c.From.Kind == OnContainer && o.code >= 125:
		res.Actual = execFailed(o)
	default:
		if msg := pingError(o.stderr + "\n" + o.stdout); msg != "" {
			res.Actual = "ping: " + msg
		} else {
			res.Actual = "no reply within 2s"
		}
	}
}

// pingError finds ping's complaint in its output (both streams come mixed
// over the serial console): the line that is not the banner or statistics.
func pingError(out string) string {
	for _, line := range strings.Split(out, "\n") {
		l := strings.TrimSpace(line)
		switch {
		case l == "", strings.HasPrefix(l, "PING "), strings.HasPrefix(l, "---"),
			strings.Contains(l, "packets transmitted"), strings.HasPrefix(l, "round-trip"), strings.HasPrefix(l, "rtt "):
			continue
		}
		return snippet(strings.TrimPrefix(l, "ping: "), 100)
	}
	return ""
}

func (r *runner) tcp(ctx context.Context, res *Result) {
	c := res.Check
	var err error
	res.obs.waited = r.opt.ConnectTimeout
	switch {
	case c.From.Kind == OnHost && c.Want == WantClosed:
		var ctl *control
		if res.obs.waited, ctl, err = r.dialClosed(ctx, netip.AddrPortFrom(c.To, c.Port)); ctl != nil {
			res.obs.control = ctl.method
		}
	case c.From.Kind == OnHost:
		err = r.host.Dial(ctx, netip.AddrPortFrom(c.To, c.Port), r.opt.ConnectTimeout)
	default:
		var ran bool
		if ran, err = r.guestDial(ctx, res); !ran {
			return
		}
	}
	res.obs.err = err
	r.judgeTCP(res, err)
}

// judgeTCP sets the result of a TCP connect that ended with err.
func (r *runner) judgeTCP(res *Result, err error) {
	c := res.Check
	switch {
	case err == nil:
		res.Actual = "open"
	case errors.Is(err, ErrRefused):
		res.Actual = "closed (refused)"
	case errors.Is(err, ErrNoAnswer) && res.obs.control != "":
		res.Actual = fmt.Sprintf("closed (no answer within %s; its %s answered)", res.obs.waited.Round(time.Millisecond), res.obs.control)
	case errors.Is(err, ErrNoAnswer):
		res.Actual = fmt.Sprintf("closed (no answer within %s)", res.obs.waited.Round(time.Millisecond))
	default:
		res.Actual = firstLine(err.Error())
	}
	switch c.Want {
	case WantClosed:
		res.Pass = err != nil && (errors.Is(err, ErrRefused) || errors.Is(err, ErrNoAnswer))
	default:
		res.Pass = err == nil
	}
}

func (r *runner) http(ctx context.Context, res *Result) {
	c := res.Check
	var (
		status int
		body   []byte
		err    error
	)
	if c.From.Kind == OnHost {
		status, body, err = r.host.Get(ctx, c.Address, r.opt.HTTPTimeout)
	} else {
		var ran bool
		if ran, status, body, err = r.guestGet(ctx, res); !ran {
			return
		}
	}
	r.judgeHTTP(res, status, body, err)
}

// judgeHTTP sets the result of an HTTP GET by the check's Want.
func (r *runner) judgeHTTP(res *Result, status int, body []byte, err error) {
	c := res.Check
	res.obs.err, res.obs.status, res.obs.body = err, status, string(body)
	switch {
	case errors.Is(err, ErrRefused):
		res.Actual = "connection refused"
	case errors.Is(err, ErrNoAnswer):
		res.Actual = fmt.Sprintf("no answer within %s", r.opt.HTTPTimeout)
	case err != nil:
		res.Actual = firstLine(err.Error())
		return
	}
	if err != nil {
		res.Pass = c.Want == WantNoHTTP
		return
	}
	switch c.Want {
	case WantNoHTTP:
		res.Actual = fmt.Sprintf("HTTP %d, but the path must be blocked", status)
	case WantBody:
		res.Pass, res.Actual = judgeBody(status, body, c.Body)
	default:
		res.Pass, res.Actual = judgeAPI(status, body)
	}
}

// apiAnswer is the part of the API's GET / answer the check looks at.
type apiAnswer struct {
	Service string `json:"service"`
	DB      *struct {
		Version string          `json:"version"`
		Visits  json.RawMessage `json:"visits"`
	} `json:"db"`
}

// judgeAPI decides whether an HTTP answer is the API's JSON with the
// database's answer in it.
func judgeAPI(status int, body []byte) (bool, string) {
	if status != 200 {
		return false, fmt.Sprintf("HTTP %d: %s", status, snippet(string(body), 80))
	}
	var a apiAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return false, "200 but not JSON: " + snippet(string(body), 60)
	}
	if a.DB == nil || a.DB.Version == "" {
		return false, "200 but no db.version in the JSON: " + snippet(string(body), 60)
	}
	if !strings.HasPrefix(a.DB.Version, "PostgreSQL") {
		return false, "200 but db.version is " + strconv.Quote(snippet(a.DB.Version, 40))
	}
	actual := "200, " + versionWords(a.DB.Version)
	if len(a.DB.Visits) > 0 {
		actual += ", visits " + string(a.DB.Visits)
	}
	return true, actual
}

// versionWords keeps "PostgreSQL 15.x" of SELECT version()'s long answer.
func versionWords(v string) string {
	f := strings.Fields(v)
	if len(f) > 2 {
		f = f[:2]
	}
	return strings.TrimSuffix(strings.Join(f, " "), ",")
}

func (r *runner) dns(ctx context.Context, res *Result) {
	c := res.Check
	argv := []string{"getent", "hosts", c.Name}
	if c.From.Kind == OnVM {
		argv = []string{"sh", "-c", dnsScript, "vmnet-dns", c.Name} // tiny has no getent
	}
	if !r.exec(ctx, c.From, argv, res) {
		return
	}
	o := res.obs
	switch {
	case o.code >= 125:
		res.Actual = execFailed(o)
		return
	case o.code == 2:
		res.Actual, res.Pass = "not found", c.Want == WantUnresolved
		return
	case o.code != 0:
		res.Actual = fmt.Sprintf("getent exit %d: %s", o.code, firstLine(o.stderr+o.stdout))
		return
	}
	got := resolved(o.stdout)
	switch {
	case c.Want == WantUnresolved:
		res.Actual = "resolves, but the name must not: " + firstLine(o.stdout)
	case !got.IsValid() && c.From.Kind == OnVM && !c.To.IsValid():
		res.Pass, res.Actual = true, "resolves" // busybox's nslookup printed no address line
	case !got.IsValid():
		res.Actual = "no address in: " + firstLine(o.stdout)
	case c.To.IsValid() && got != c.To:
		res.Actual = fmt.Sprintf("resolves to %s, but podman gives %s %s", got, c.Name, c.To)
	default:
		res.Pass, res.Actual = true, "resolves to "+got.String()
	}
}

// resolved is the first IPv4 address getent hosts printed (or the first
// address when there is none).
func resolved(out string) netip.Addr {
	var first netip.Addr
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		if a.Is4() {
			return a
		}
		if !first.IsValid() {
			first = a
		}
	}
	return first
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return snippet(strings.TrimSpace(s), 120)
}

// snippet shortens s to at most n runes on one line, without control
// characters (a serial console's escape sequences would reach the terminal).
func snippet(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
