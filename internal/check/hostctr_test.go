package check

import (
	"slices"
	"testing"

	"vmnet/internal/lab"
)

// TestHostContainerMatrix: a host container is pinged by the host and
// every VM on its bridge, and pings them back; a declared check may run
// from it.
func TestHostContainerMatrix(t *testing.T) {
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	l.Checks = append(l.Checks, lab.Check{From: "web", To: "vm", Ping: true, Expect: lab.ExpectReach})
	runs := LabMatrix(l, map[string]Target{})
	ids := map[string][]string{}
	for run, cs := range runs {
		for _, c := range cs {
			ids[run] = append(ids[run], c.ID)
		}
	}
	for run, want := range map[string][]string{
		"web": {"ping:host->web:eth0", "ping:web->host:lab0", "ping:web->vm:lab0", "checks[2]:ping:web->vm"},
		"vm":  {"ping:host->vm:eth0", "ping:vm->host:lab0", "ping:vm->web:lab0", "checks[1]:ping:vm->web"},
	} {
		for _, id := range want {
			if !slices.Contains(ids[run], id) {
				t.Errorf("run %s has no %s: %v", run, id, ids[run])
			}
		}
	}
	for _, c := range runs["web"] {
		if c.ID == "ping:web->vm:lab0" && (c.From.Kind != OnVM || c.To.String() != "192.0.2.10" || c.Unknown == "") {
			t.Errorf("%s: from %v to %s, unknown %q: want from the container's namespace to 192.0.2.10, failing as not running", c.ID, c.From, c.To, c.Unknown)
		}
	}
}

// TestHostMacvlanMatrix: a macvlan child of the bridge and the host never
// reach each other; both pings expect no reply, controlled by the
// container's ping to the VM.
func TestHostMacvlanMatrix(t *testing.T) {
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	c := l.HostContainers["web"]
	c.Mode = lab.HostMacvlan
	l.HostContainers["web"] = c
	got := map[string]Check{}
	for _, c := range LabMatrix(l, map[string]Target{})["web"] {
		got[c.ID] = c
	}
	for _, id := range []string{"ping:host->web:eth0", "ping:web->host:lab0"} {
		c, ok := got[id]
		if !ok || c.Want != WantNoReply || !slices.Equal(c.Requires, []string{"ping:web->vm:lab0"}) {
			t.Errorf("%s: %+v; want no reply, required ping:web->vm:lab0", id, c)
		}
	}
	if got["ping:web->vm:lab0"].Want != WantReply {
		t.Error("the container's ping to the VM must be expected to pass: it is the control")
	}
}

// TestHostMacvlanDeclared: a declared check from the host to a macvlan
// host container carries the mode, so its failure names the mode's cause.
func TestHostMacvlanDeclared(t *testing.T) {
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	c := l.HostContainers["web"]
	c.Mode = lab.HostMacvlan
	l.HostContainers["web"] = c
	for _, ch := range LabMatrix(l, map[string]Target{})["web"] {
		if ch.ID == "checks[0]:http:host->web:8080" && ch.Mode != lab.ModeMacvlan {
			t.Errorf("%s: mode %q, want macvlan", ch.ID, ch.Mode)
		}
	}
	var found bool
	for _, ch := range LabMatrix(l, map[string]Target{})["web"] {
		found = found || ch.ID == "checks[0]:http:host->web:8080"
	}
	if !found {
		t.Error("the declared http check from the host is not in web's run")
	}
}
