package lab

import (
	"fmt"
	"strings"
	"time"
)

// Live is what a running lab adds to its picture: each node's state, the
// addresses its NICs have now (DHCP ones included) and, per NIC link (the
// node ↔ network edge), what the last check run said about the checks
// that cross it. The caller builds it (internal/labrun reads libvirt and
// the saved report); Graph and Render only draw it, so they stay pure. A
// nil *Live draws the file alone.
type Live struct {
	// States is node → its state (running, shut off, not up).
	States map[string]string
	// Addresses is a node's NIC → the address it has now, without prefix.
	Addresses map[NICRef]string
	// Links is a node's NIC → the checks of the last run that cross it;
	// a NIC missing here has no known result.
	Links map[NICRef]Link
	// Checked is when the last check run started; zero when there is none.
	Checked time.Time
}

// NICRef names one NIC of a node: its index in the node's nics (eth0 is 0).
type NICRef struct {
	Node string
	NIC  int
}

// Link is what the last check run said about one NIC link.
type Link struct {
	Passed int           // checks that crossed it and passed
	Failed []FailedCheck // checks that crossed it and failed, in report order
	// Elsewhere are checks that crossed it and failed at the other end (a
	// node-to-node ping whose peer's own checks failed): they leave the
	// link's state alone and are listed in its tooltip.
	Elsewhere []FailedCheck
}

// FailedCheck is one failed check on a link.
type FailedCheck struct {
	ID    string // ping:host->web:eth1
	Cause string // tap not attached, or what the check saw when there is no cause
}

// LinkState is how a link is coloured.
type LinkState string

// The link states.
const (
	LinkPass    LinkState = "pass"    // every check crossing it passed
	LinkFail    LinkState = "fail"    // one crossing it failed
	LinkUnknown LinkState = "unknown" // no check result is known
)

// State is fail when a check failed, pass when some passed and none
// failed, unknown otherwise.
func (k Link) State() LinkState {
	switch {
	case len(k.Failed) > 0:
		return LinkFail
	case k.Passed > 0:
		return LinkPass
	}
	return LinkUnknown
}

// linkLook is how one link state is drawn, the same in DOT and Mermaid;
// the line style differs too, so the states differ in black and white.
type linkLook struct {
	color    string
	dotStyle string
	width    string
	mmdDash  string // Mermaid stroke-dasharray, "" for solid
}

var linkLooks = map[LinkState]linkLook{
	LinkPass:    {"#16a34a", "solid", "2.5", ""},
	LinkFail:    {"#dc2626", "bold,dashed", "3", "8 4"},
	LinkUnknown: {"#6b7280", "dotted", "2", "2 4"},
}

// link is the live state of node's NIC i, and whether l has a live overlay.
func (l *Live) link(node string, i int) (Link, bool) {
	if l == nil {
		return Link{}, false
	}
	return l.Links[NICRef{node, i}], true
}

// statusLine says what the last checks found on a link, for its label.
func (k Link) statusLine() string {
	switch k.State() {
	case LinkFail:
		more := ""
		if len(k.Failed) > 1 {
			more = fmt.Sprintf(" (+%d more)", len(k.Failed)-1)
		}
		return "FAILED: " + k.Failed[0].Cause + more
	case LinkPass:
		line := fmt.Sprintf("ok: %d checks", k.Passed)
		if k.Passed == 1 {
			line = "ok: 1 check"
		}
		if len(k.Elsewhere) > 0 {
			line += fmt.Sprintf(" (%d failed at the other end)", len(k.Elsewhere))
		}
		return line
	}
	return "no check result"
}

// tooltip lists a link's checks: every failed one with its cause, and
// those that failed at the other end.
func (k Link) tooltip() string {
	lines := []string{k.statusLine()}
	if k.State() == LinkFail {
		lines = lines[:0]
		for _, f := range k.Failed {
			lines = append(lines, f.ID+": "+f.Cause)
		}
		if k.Passed > 0 {
			lines = append(lines, fmt.Sprintf("%d passed", k.Passed))
		}
	}
	for _, f := range k.Elsewhere {
		lines = append(lines, "failed at the other end: "+f.ID+": "+f.Cause)
	}
	return strings.Join(lines, "\n")
}

// liveAddress is the label text of node's NIC i: the file's address, with
// the one it has now beside it when that differs (a DHCP lease).
func (l *Live) liveAddress(node string, i int, n NIC) string {
	now := ""
	if l != nil {
		now = l.Addresses[NICRef{node, i}]
	}
	switch {
	case !n.Address.IsValid() && now != "":
		return "DHCP " + now
	case !n.Address.IsValid():
		return "DHCP"
	case now != "" && now != n.Address.Addr().String():
		return n.Address.String() + ", now " + now
	}
	return n.Address.String()
}

// title is the picture's title: the lab, and with a live overlay when its
// checks ran and what the colours mean.
func (l *Live) title(name string) string {
	if l == nil {
		return "lab " + name
	}
	when := "no check run saved"
	if !l.Checked.IsZero() {
		when = "last check " + l.Checked.UTC().Format("2006-01-02 15:04 UTC")
	}
	return fmt.Sprintf("lab %s (live, %s)\nlinks: green = checks passed, red dashed = a check failed, grey dotted = no result", name, when)
}

// state is node's live state, "" without an overlay.
func (l *Live) state(node string) string {
	if l == nil {
		return ""
	}
	if s, ok := l.States[node]; ok {
		return s
	}
	return "not up"
}
