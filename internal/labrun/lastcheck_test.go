package labrun

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"vmnet/internal/check"
	"vmnet/internal/lab"
	"vmnet/internal/vm"
)

// officeReport is a check run of the office lab with the checks the real
// planner makes (so their IDs, labels and NICs are check's own): every one
// passed but the host's ping of web's eth1, which found the tap detached.
func officeReport(t *testing.T, l lab.Lab) *check.Report {
	return reportFailing(t, l, "ping:host->web:eth1")
}

// reportFailing is a run of l's planned checks where the ones named failed
// (with cause tap not attached) and every other passed.
func reportFailing(t *testing.T, l lab.Lab, failed ...string) *check.Report {
	t.Helper()
	r := &check.Report{VM: l.Name, Matrix: check.MatrixLab, Started: time.Date(2026, 12, 1, 17, 5, 0, 0, time.UTC)}
	runs := check.LabMatrix(l, nil)
	planned := map[string]bool{}
	t.Cleanup(func() {
		for _, id := range failed {
			if !planned[id] {
				t.Errorf("check %s is not planned for lab %s: the test's IDs are out of date", id, l.Name)
			}
		}
	})
	for _, run := range append(slices.Clone(l.NodeOrder), check.HostRun) {
		for _, c := range runs[run] {
			res := check.Result{Check: c, Pass: true}
			planned[c.ID] = true
			if slices.Contains(failed, c.ID) {
				res.Pass, res.Cause, res.Actual = false, check.CauseTapNotAttached, "no reply"
			}
			r.Results = append(r.Results, res)
		}
	}
	return r
}

// SaveLastReport writes beside the lab file up saved (mode 0644), and
// LoadLastReport reads back every check with its NIC; a lab that is not up
// gets no file and no directory.
func TestLastReportRoundTrip(t *testing.T) {
	dir, l := t.TempDir(), office(t)
	rep := officeReport(t, l)
	if err := SaveLastReport(dir, "office", rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "labs", "office")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("save of a lab that is not up made its directory: %v", err)
	}
	if _, err := LoadLastReport(dir, "office"); !errors.Is(err, ErrNoLastReport) {
		t.Fatalf("load with none saved: %v, want ErrNoLastReport", err)
	}
	if _, err := saveRecord(dir, l); err != nil {
		t.Fatal(err)
	}
	if err := SaveLastReport(dir, "office", rep); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "labs", "office", "last-check.json"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("last-check.json: %v, %v; want mode 0644", fi, err)
	}
	last, err := LoadLastReport(dir, "office")
	if err != nil {
		t.Fatal(err)
	}
	if last.Lab != "office" || !last.Started.Equal(rep.Started) || len(last.Checks) != len(rep.Results) {
		t.Fatalf("loaded %s at %s with %d checks, want office at %s with %d", last.Lab, last.Started, len(last.Checks), rep.Started, len(rep.Results))
	}
	for i, c := range last.Checks {
		if r := rep.Results[i]; c.ID != r.ID || c.NIC != r.NIC || c.Pass != r.Pass || c.Cause != string(r.Cause) {
			t.Errorf("check %d loaded as %+v, saved %s nic %d pass %v", i, c, r.ID, r.NIC, r.Pass)
		}
	}
}

// Overlay colours each of office's NIC links from the report: web's eth1,
// which the failed check crossed, fails with its cause; every other link
// had checks cross it and passes; the DHCP address and states come from
// the inspection.
func TestOverlay(t *testing.T) {
	dir, l := t.TempDir(), office(t)
	if _, err := saveRecord(dir, l); err != nil {
		t.Fatal(err)
	}
	if err := SaveLastReport(dir, "office", officeReport(t, l)); err != nil {
		t.Fatal(err)
	}
	last, err := LoadLastReport(dir, "office")
	if err != nil {
		t.Fatal(err)
	}
	in := &Inspection{Lab: "office", Nodes: []NodeInfo{
		{Node: "web", State: "running", NICs: nicInfos("198.51.100.57", "192.0.2.10")},
		{Node: "client", State: "running", NICs: nicInfos("192.0.2.20", "")},
	}}
	live := Overlay(l, in, last)
	if live.States["web"] != "running" || live.Addresses[lab.NICRef{Node: "web", NIC: 0}] != "198.51.100.57" || !live.Checked.Equal(last.Started) {
		t.Errorf("overlay states %v, addresses %v, checked %s", live.States, live.Addresses, live.Checked)
	}
	if _, ok := live.Addresses[lab.NICRef{Node: "client", NIC: 1}]; ok {
		t.Error("a NIC without an address got one in the overlay")
	}
	for _, name := range l.NodeOrder {
		for i := range l.Nodes[name].NICs {
			k := live.Links[lab.NICRef{Node: name, NIC: i}]
			want := lab.LinkPass
			if name == "web" && i == 1 {
				want = lab.LinkFail
			}
			if k.State() != want {
				t.Errorf("%s eth%d: %s (%+v), want %s", name, i, k.State(), k, want)
			}
		}
	}
	k := live.Links[lab.NICRef{Node: "web", NIC: 1}]
	if len(k.Failed) != 1 || k.Failed[0] != (lab.FailedCheck{ID: "ping:host->web:eth1", Cause: "tap not attached"}) {
		t.Errorf("web eth1 failed checks %+v, want the host's ping with its cause", k.Failed)
	}
	if empty := Overlay(l, nil, nil); len(empty.Links) != 0 || !empty.Checked.IsZero() {
		t.Errorf("overlay without inspection or report: %+v", empty)
	}
}

func nicInfos(addrs ...string) []vm.NICInfo {
	var out []vm.NICInfo
	for i, a := range addrs {
		out = append(out, vm.NICInfo{Index: i, Address: a})
	}
	return out
}

// Crossed finds the links of each kind of check label: host to a node's
// NIC, a node to the host, node to node on a network (both ends), a
// declared check to a node's address, and a check inside one node (none).
func TestCrossed(t *testing.T) {
	l := office(t)
	live := &lab.Live{Addresses: map[lab.NICRef]string{{Node: "client", NIC: 1}: "203.0.113.140"}}
	ref := func(n string, i int) lab.NICRef { return lab.NICRef{Node: n, NIC: i} }
	for _, tc := range []struct {
		c    LastCheck
		want []lab.NICRef
	}{
		{LastCheck{ID: "ping:host->web:eth1", Source: "host", Target: "web:eth1", NIC: 1}, []lab.NICRef{ref("web", 1)}},
		{LastCheck{ID: "ping:client->host:back", Source: "client", Target: "host:back", NIC: 1}, []lab.NICRef{ref("client", 1)}},
		{LastCheck{ID: "ping:client->web:lan", Source: "client", Target: "web:lan", NIC: 0}, []lab.NICRef{ref("client", 0), ref("web", 1)}},
		{LastCheck{ID: "checks[0]:ping:client->web", Source: "client", Target: "web", NIC: 0}, []lab.NICRef{ref("client", 0), ref("web", 1)}},
		{LastCheck{ID: "checks[1]:tcp:host->203.0.113.140:22", Source: "host", Target: "203.0.113.140", NIC: 1}, []lab.NICRef{ref("client", 1)}},
		{LastCheck{ID: "ping:web->db", Source: "web", Target: "web/db", NIC: -1}, nil},
		{LastCheck{ID: "ping:web->host:gone", Source: "web", Target: "host:gone", NIC: 7}, nil},
	} {
		if got := Crossed(l, live, tc.c); !slices.Equal(got, tc.want) {
			t.Errorf("%s crosses %v, want %v", tc.c.ID, got, tc.want)
		}
	}
}

// A failed node-to-node ping is blamed on the end whose own checks failed
// (client's detached tap on lan), and only listed on the other (web's
// eth1 stays green); with no such evidence it is blamed on both ends.
func TestOverlayBlame(t *testing.T) {
	l := office(t)
	overlay := func(failed ...string) *lab.Live {
		rep := reportFailing(t, l, failed...)
		dir := t.TempDir()
		if _, err := saveRecord(dir, l); err != nil {
			t.Fatal(err)
		}
		if err := SaveLastReport(dir, l.Name, rep); err != nil {
			t.Fatal(err)
		}
		last, err := LoadLastReport(dir, l.Name)
		if err != nil {
			t.Fatal(err)
		}
		return Overlay(l, nil, last)
	}
	client, web := lab.NICRef{Node: "client", NIC: 0}, lab.NICRef{Node: "web", NIC: 1}
	live := overlay("ping:host->client:eth0", "ping:client->host:lan", "ping:client->web:lan", "ping:web->client:lan")
	if c, w := live.Links[client], live.Links[web]; c.State() != lab.LinkFail || len(c.Failed) != 4 || w.State() != lab.LinkPass || len(w.Elsewhere) != 2 {
		t.Errorf("tap of client detached: client eth0 %s %+v, web eth1 %s %+v; want fail with 4, pass with 2 elsewhere", c.State(), c, w.State(), w)
	}
	live = overlay("ping:web->client:lan")
	if c, w := live.Links[client], live.Links[web]; c.State() != lab.LinkFail || w.State() != lab.LinkFail || len(w.Elsewhere) != 0 {
		t.Errorf("only the peer ping failed: client eth0 %s, web eth1 %s %+v; want both fail", c.State(), w.State(), w)
	}
}
