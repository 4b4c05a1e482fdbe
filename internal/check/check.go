// Package check proves that a lab works: a matrix of ping, TCP, HTTP and DNS
// checks between the host, a VM and the VM's containers, positive (this path
// works) and negative (this port is closed). Checks run concurrently, each
// with a timeout; a failed check is then diagnosed with cheap probes (link
// state over netlink on the host, `ip`, `nft` and `podman` in the guest) that
// name the hop that failed and its most likely cause, from a fixed list.
//
// The matrix is planned by pure functions (BasicMatrix, AppMatrix) from a
// Target, a description of the VM that Describe reads from libvirt and the
// kernel, and the description of the app it runs (internal/app), which the
// caller hands in: check holds no app's constants, and diagnoses every
// check, an app's or not, along the same hops. The side effects sit behind
// two small interfaces, Host and Guest.
//
// Lab checks a whole lab (internal/lab) the same way: LabMatrix plans each
// node's matrix, VM ↔ VM pings on every shared network and the lab's
// declared checks (each negative one with its positive control), and every
// node's run goes at once, with that node's Target and Guest.
package check

import (
	"fmt"
	"net/netip"
	"time"

	"vmnet/internal/app"
)

// Method is how a check reaches its target.
type Method string

// The methods.
const (
	MethodPing Method = "ping" // ICMP echo
	MethodTCP  Method = "tcp"  // a TCP connect
	MethodHTTP Method = "http" // an HTTP GET
	MethodDNS  Method = "dns"  // a name lookup (getent hosts)
	// MethodNeigh pings an address from the host, then reads the MAC the
	// host's neighbour table has for it.
	MethodNeigh Method = "neigh"
)

// Want is the outcome a check expects.
type Want string

// The expectations.
const (
	WantReply    Want = "reply"            // the ping is answered
	WantClosed   Want = "closed"           // the TCP connect is refused or unanswered
	WantAPI      Want = "api"              // HTTP 200 with the API's JSON, db.version from PostgreSQL
	WantResolves Want = "resolves"         // the name resolves (to the expected address, when known)
	WantOpen     Want = "open"             // the TCP connect succeeds
	WantBody     Want = "body"             // HTTP 2xx with a body that matches Check.Body (a regular expression)
	WantSameMAC  Want = "the parent's MAC" // neigh: the address has Check.MAC (ipvlan)
	WantOwnMAC   Want = "a MAC of its own" // neigh: the address has another MAC than Check.MAC (macvlan)
	WantNoNeigh  Want = "no entry"         // neigh: the address has no neighbour entry: routed (ipvlan l3)
	// The negative ones: each counts only when its Requires (a positive
	// control on the same path) pass.
	WantNoReply    Want = "no reply"   // the ping goes unanswered
	WantNoHTTP     Want = "no answer"  // the HTTP GET gets no answer (refused or dropped)
	WantUnresolved Want = "unresolved" // the name does not resolve
)

// Negative reports whether w expects a path to be blocked.
func (w Want) Negative() bool {
	return w == WantClosed || w == WantNoReply || w == WantNoHTTP || w == WantUnresolved
}

// PlaceKind says where a check runs.
type PlaceKind string

// The places.
const (
	OnHost      PlaceKind = "host"      // the namespace vmnet runs in
	OnVM        PlaceKind = "vm"        // the guest, through vm.Exec
	OnContainer PlaceKind = "container" // a container in the guest (podman exec)
)

// Place is where a check runs from.
type Place struct {
	Kind      PlaceKind
	Container string // for OnContainer
}

// Check is one entry of the matrix: what is tried, from where, to where, and
// what is expected.
type Check struct {
	ID      string // stable across runs: method:source->target[:port]
	Source  string // host, capstone, capstone/api
	Target  string // capstone:eth1, host:br0, capstone/db
	Address string // what is reached: an address, ADDR:PORT, a URL or a name
	Method  Method
	Expect  string // for people: reply, closed, 200 + JSON with db.version ~ PostgreSQL

	From Place
	Want Want
	To   netip.Addr // ping, tcp and http: the address reached
	Port uint16     // tcp and http
	Path string     // http: the URL path
	Body string     // http with WantBody: a regular expression the body must match
	Name string     // dns: the name looked up
	MAC  string     // neigh: the parent NIC's MAC
	// NIC is the index (in Target.NICs) of the VM NIC the path crosses, or
	// -1; diagnosis walks that NIC's hops.
	NIC int
	// Container is the container the check reaches or asks about, for
	// diagnosis ("" for none).
	Container string
	// Unknown, when set, says why the plan has no address for the target:
	// the check fails at once with this as its actual result.
	Unknown string
	// Requires lists checks that must pass for this one to mean anything: a
	// port that looks closed proves nothing when the VM does not answer at all.
	Requires []string
	// BlockedBy is, for a negative check that a network mode blocks (a
	// macvtap guest and its parent's host), the cause a failure reports:
	// the path got through where the mode says it cannot.
	BlockedBy Cause
	// Mode is the container network mode (lab.ModeMacvlan, lab.ModeNone,
	// lab.ModePod) the check's outcome rests on, or "": a failure then
	// names the mode's own cause.
	Mode string

	down string // the lab node this check needs, which is not running
	// peer is the other lab node a check from a node (or its container)
	// reaches, and peerNIC the index of its NIC reached: diagnosis walks
	// that NIC's hops after the source's ("" for none).
	peer    string
	peerNIC int
}

// Cause is the most likely reason a check failed. The set is fixed, so that
// programs reading the JSON or JUnit output can match on it.
type Cause string

// The causes a failed check can report.
const (
	// CauseBridgeDown: the host bridge the NIC hangs off is missing or
	// administratively down.
	CauseBridgeDown Cause = "bridge down"
	// CauseTapNotAttached: the VM's tap device is missing or not a port of
	// the bridge it belongs to.
	CauseTapNotAttached Cause = "tap not attached"
	// CauseTapDown: the tap is in the right bridge but administratively down.
	CauseTapDown Cause = "tap down"
	// CauseHostAddressMissing: the host bridge lacks the host's address in
	// the VM's subnet.
	CauseHostAddressMissing Cause = "host address missing"
	// CauseGuestNICDown: the guest NIC is missing, down, without carrier or
	// without its expected address.
	CauseGuestNICDown Cause = "guest NIC down"
	// CauseFirewallDrop: the guest's nftables ruleset drops the traffic
	// (a drop policy without a matching accept, or a drop rule).
	CauseFirewallDrop Cause = "firewall drop"
	// CausePortOpen: a port that must be closed accepted a connection.
	CausePortOpen Cause = "port open"
	// CauseContainerNotRunning: a container on the path is missing or not running.
	CauseContainerNotRunning Cause = "container not running"
	// CauseDNS: a name on the app's network (capstone: app-net) does not resolve (or resolves wrongly)
	// while the container it names runs: aardvark-dns.
	CauseDNS Cause = "DNS (aardvark-dns)"
	// CauseNotListening: the path works but nothing accepts the connection.
	CauseNotListening Cause = "service not listening"
	// CauseServiceError: the service answered, but wrongly (HTTP 5xx, a
	// body without the database's answer).
	CauseServiceError Cause = "service error"
	// CauseGuestUnreachable: vmnet could not run the check's command in the
	// guest (guest agent or serial console not answering).
	CauseGuestUnreachable Cause = "guest unreachable"
	// CauseInconclusive: a negative check cannot be trusted because a check
	// it requires failed.
	CauseInconclusive Cause = "inconclusive"
	// CauseOwnAddress: the check's target address belongs to its source
	// (the host, the VM or the container it runs from): it would only reach
	// itself, which proves nothing. Usually a VM NIC given the host's address.
	CauseOwnAddress Cause = "own address"
	// CauseNotBlocked: a path that must be blocked (a ping, an HTTP GET or
	// a name lookup) got through.
	CauseNotBlocked Cause = "not blocked"
	// CauseNotRunning: the lab node a check runs on or reaches is not
	// running (or does not exist).
	CauseNotRunning Cause = "node not running"
	// CauseMacvtapHost: the host reached a macvtap guest through the
	// guest's parent (or the guest the host), which macvtap never does: the
	// NIC is not on the parent the lab says, or another path exists.
	CauseMacvtapHost Cause = "host cannot reach a macvtap guest through its parent"
	// CauseMacvtapMode: two macvtap guests on one parent reached each other
	// in a mode that keeps them apart (private; vepa without a switch that
	// sends the traffic back).
	CauseMacvtapMode Cause = "macvtap mode keeps guests on one parent apart"
	// CauseMacvlanParent: a check expects a VM to reach its own macvlan
	// container, which macvlan (bridge mode) never allows.
	CauseMacvlanParent Cause = "macvlan parent cannot reach its child"
	// CauseNoneNetwork: a check expects a container with network none (only
	// lo) to reach something, or to be reached.
	CauseNoneNetwork Cause = "network none reaches nothing"
	// CauseModeNotHeld: a path a container's network mode must block (the
	// macvlan or ipvlan parent to its child, a none container out) got
	// through, or a child's MAC is not what its mode gives it.
	CauseModeNotHeld Cause = "network mode not in effect"
	// CauseIPvlanL3Route: the host does not reach an ipvlan l3 container,
	// which answers no ARP: only a route via its parent NIC's address
	// (which lab up adds) gets there.
	CauseIPvlanL3Route Cause = "ipvlan l3 child needs a route via its parent"
	// CauseUnknown: the probes found nothing wrong; the evidence lists what
	// they ruled out.
	CauseUnknown Cause = "unknown"
)

// Causes lists every cause, for documentation and tests.
var Causes = []Cause{
	CauseBridgeDown, CauseTapNotAttached, CauseTapDown, CauseHostAddressMissing, CauseGuestNICDown,
	CauseFirewallDrop, CausePortOpen, CauseContainerNotRunning, CauseDNS, CauseNotListening,
	CauseServiceError, CauseGuestUnreachable, CauseInconclusive, CauseOwnAddress, CauseNotBlocked, CauseNotRunning,
	CauseMacvtapHost, CauseMacvtapMode, CauseMacvlanParent, CauseNoneNetwork, CauseModeNotHeld, CauseIPvlanL3Route, CauseUnknown,
}

// Result is a check after it ran.
type Result struct {
	Check
	Pass     bool
	Actual   string
	Duration time.Duration
	// Hop, Cause and Evidence are set for failed checks only.
	Hop      string
	Cause    Cause
	Evidence []string

	obs observation // what the check saw, for diagnosis
}

// Report is one run of a matrix against a VM.
type Report struct {
	VM       string
	Matrix   string
	Started  time.Time
	Duration time.Duration
	Results  []Result
	// Rounds is how many times the matrix ran (a converging lab check runs
	// it again while checks fail; 1 otherwise, 0 for a single VM's check).
	Rounds int
	// ConvergedAfter is the time from the start until every check passed,
	// zero when they did not.
	ConvergedAfter time.Duration
	// Accel is the libvirt domain type the checked guests run under, from
	// their live XML: kvm, or qemu (TCG); several, comma-separated and
	// sorted, when a lab's nodes differ; "" when no guest said.
	Accel string
}

// Failed counts the failed checks.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if !res.Pass {
			n++
		}
	}
	return n
}

// Err is nil when every check passed, and a *FailedError otherwise.
func (r *Report) Err() error {
	if n := r.Failed(); n > 0 {
		return &FailedError{VM: r.VM, Failed: n, Total: len(r.Results), lab: r.Matrix == MatrixLab}
	}
	return nil
}

// FailedError says that some checks failed; the report has the details.
type FailedError struct {
	VM            string
	Failed, Total int

	lab bool // VM is a lab's name
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d of %d checks failed", e.Failed, e.Total)
}

// Hint points at the details.
func (e *FailedError) Hint() string {
	if e.lab {
		return "each failed check names its hop and cause above; 'vmnet vm console NODE' shows a node's console"
	}
	return fmt.Sprintf("each failed check names its hop and cause above; 'vmnet vm console %s' shows the guest's console", e.VM)
}

// Target describes the VM under test: what the plan needs to know about it
// and what diagnosis compares the live state with.
type Target struct {
	Name string
	Spec string // the spec name from vmnet's domain metadata
	NICs []NIC
	// Agent is true when the QEMU guest agent answers; without it guest
	// commands go over the serial console, one at a time.
	Agent bool
	// App is the description of the application the VM runs, or nil; its
	// matrix (AppMatrix) and the diagnosis of its checks follow from it.
	App *app.App
	// Containers are the app's containers, for matrices that have an app
	// (filled by Discover).
	Containers []Container
	// Accel is the domain's type in its live XML: kvm or qemu (TCG).
	Accel string
}

// NIC is one VM NIC with both of its ends.
type NIC struct {
	Index   int
	Guest   string     // the guest's name for it: eth0, eth1 (net.ifnames=0)
	Address netip.Addr // the VM's address; invalid when unknown
	Prefix  int        // its prefix length, 0 when unknown
	Source  string     // static, reservation, lease
	Network string     // the libvirt network, or "" for a NIC on a plain bridge
	Bridge  string     // the host bridge the tap must be a port of
	Parent  string     // macvtap: the host interface the NIC sits on ("" otherwise)
	Mode    string     // macvtap: bridge, vepa, private or passthrough
	Tap     string     // the host side of the NIC (from the live domain XML)
	MAC     string
	Host    netip.Addr // the host's address on that link: the network's gateway or the bridge's address
	// HostPrefix is the host address's prefix, when known.
	HostPrefix int
}

// HostLabel names the host end of the NIC in check labels: host:br0, host:nat0.
func (n NIC) HostLabel() string {
	if n.Network != "" {
		return "host:" + n.Network
	}
	if n.Parent != "" {
		return "host:" + n.Parent
	}
	return "host:" + n.Bridge
}

// Container is one container of the app as podman reports it.
type Container struct {
	Name    string
	State   string     // running, exited, created, ... or "missing"
	Health  string     // healthy, unhealthy, starting, or ""
	IP      netip.Addr // on the app's network (capstone: app-net); invalid when it has none
	Gateway netip.Addr // that network's gateway: the VM's own address on it
	Error   string     // why the state is unknown, when it is
	// ID and PID are podman's full container ID and the PID of the
	// container's init process in the guest (0 when it does not run): a
	// check from the container enters its namespaces through them.
	ID  string
	PID int
}

// Running reports whether podman says the container runs.
func (c Container) Running() bool { return c.State == "running" }

// observation is what a check saw, kept for diagnosis.
type observation struct {
	err            error // the executor failed (not the same as a failed check)
	execErr        bool  // err came from running a command in the guest
	code           int   // exit code of a guest command
	stdout, stderr string
	status         int    // HTTP status
	body           string // HTTP body (first KiB)
	via            string // for a container's probe: viaNsenter or viaPodman
	// waited is how long a TCP connect waited for an answer that did not
	// come (ConnectTimeout, or less once a control answered).
	waited  time.Duration
	control Method // the method of the control whose answer cut that wait short, or ""
}
