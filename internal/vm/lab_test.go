package vm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"vmnet/internal/safe"
	"vmnet/internal/vmspec"
)

// upTo runs Up's steps for spec up to and including step last, without a
// rollback: the state an up killed right after last leaves, or the run
// whose rollback the test runs itself.
func (l *stepLab) upTo(t *testing.T, spec vmspec.Spec, last string) *upRun {
	t.Helper()
	r := &upRun{ctx: context.Background(), e: l.e, spec: spec, res: &UpResult{Name: spec.Name}}
	for _, s := range upSteps {
		if err := s.run(r); err != nil {
			t.Fatalf("step %s of %s: %v", s.name, spec.Name, err)
		}
		if s.name == last {
			return r
		}
	}
	t.Fatalf("no step %q", last)
	return nil
}

// labVM is the lab's spec for VM name: l.spec renamed, its static
// address moved to .(index+5), tagged with lab.
func (l *stepLab) labVM(name, lab string, index int) vmspec.Spec {
	s := l.spec
	s.Name, s.Lab = name, lab
	s.NICs = slices.Clone(s.NICs)
	s.NICs[1].Address = netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/24", index+5))
	return s
}

// OfLab finds a lab's VMs by their domains' metadata and, for an up killed
// before the define, by their records; not another lab's, not one without
// a lab, and not a directory whose record says lab when a domain of the
// name says otherwise. Down removes both kinds, and OfLab then finds none.
func TestOfLab(t *testing.T) {
	l := newStepLab(t)
	ctx := context.Background()
	for i, vm := range []struct{ name, lab string }{{"web", "office"}, {"plain", ""}, {"home1", "home"}, {"shadow", ""}} {
		if _, err := Up(ctx, l.e, l.labVM(vm.name, vm.lab, i)); err != nil {
			t.Fatalf("up %s: %v", vm.name, err)
		}
	}
	l.upTo(t, l.labVM("db", "office", 4), "prepare") // killed before define
	// A record that says office beside a domain that says no lab: the domain decides.
	dir := filepath.Join(l.e.StateDir, "vms", "shadow")
	rec, ok, err := readRecord(dir)
	if err != nil || !ok {
		t.Fatalf("record of shadow: %v, %v", ok, err)
	}
	rec.Lab = "office"
	if err := writeRecord(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err := OfLab(l.e, "office")
	if err != nil || !slices.Equal(got, []string{"db", "web"}) {
		t.Fatalf("OfLab(office) = %q, %v; want db (its record) and web (its domain)", got, err)
	}
	if got, err := OfLab(l.e, "home"); err != nil || !slices.Equal(got, []string{"home1"}) {
		t.Errorf("OfLab(home) = %q, %v", got, err)
	}
	if _, ok := l.f.doms["db"]; ok {
		t.Fatal("db has a domain: the test means an up killed before define")
	}
	for _, name := range []string{"db", "web"} {
		if _, err := Down(ctx, l.e, name); err != nil {
			t.Fatalf("down %s: %v", name, err)
		}
	}
	if got, err := OfLab(l.e, "office"); err != nil || len(got) != 0 {
		t.Errorf("after down: OfLab(office) = %q, %v; want none", got, err)
	}
	for _, left := range l.residue(false) {
		if strings.Contains(left, "/web/") || strings.Contains(left, "/db/") || strings.HasSuffix(left, " web") || strings.HasSuffix(left, " db") {
			t.Errorf("down of the lab's VMs left %s", left)
		}
	}
	if n := len(l.f.nets["nat0"].hosts); n != 3 {
		t.Errorf("%d reservations on nat0, want the 3 of plain, home1 and shadow: %+v", n, l.f.nets["nat0"].hosts)
	}
	for _, lab := range []string{"", "Office", "a b"} {
		if _, err := OfLab(l.e, lab); err == nil || !strings.Contains(err.Error(), "lab") {
			t.Errorf("OfLab(%q) = %v, want an error naming the lab", lab, err)
		}
	}
}

// The lab's tag reaches everything its up makes: the domain's metadata
// (List shows it), the record, and the network the spec requires.
func TestUpTagsWithLab(t *testing.T) {
	l := newStepLab(t)
	if _, err := Up(context.Background(), l.e, l.labVM("web", "office", 0)); err != nil {
		t.Fatal(err)
	}
	infos, err := List(l.e)
	if err != nil || len(infos) != 1 || infos[0].Lab != "office" {
		t.Errorf("List = %+v, %v; want web of lab office", infos, err)
	}
	rec, ok, err := readRecord(filepath.Join(l.e.StateDir, "vms", "web"))
	if err != nil || !ok || rec.Lab != "office" {
		t.Errorf("record %+v, %v, %v; want lab office", rec, ok, err)
	}
	b, _ := os.ReadFile(recordPath(filepath.Join(l.e.StateDir, "vms", "web")))
	if !strings.Contains(string(b), `"lab": "office"`) {
		t.Errorf("record file %s has no lab", b)
	}
	if lab := l.f.nets["nat0"].info.Lab; lab != "office" {
		t.Errorf("network nat0 has lab %q, want office", lab)
	}
}

// concurrentUps runs Up for every spec at once and returns each one's error.
func concurrentUps(l *stepLab, specs []vmspec.Spec) []error {
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range specs {
		safe.Go(&wg, "up "+s.Name, func() error {
			<-start
			_, err := Up(context.Background(), l.e, s)
			return err
		}, func(err error) { errs[i] = err })
	}
	close(start)
	wg.Wait()
	return errs
}

// Six Ups at once on one Env, every call to libvirt slow enough for them
// to interleave: the shared network is made once, and no two VMs get the
// same reservation, though the subnet is a /28, whose six addresses for
// reservations the six VMs need all of: their first choices (from their
// MACs) collide, and each must see the others' choices.
func TestConcurrentUps(t *testing.T) {
	l := newStepLab(t)
	l.f.delay = 2e6 // 2 ms
	var specs []vmspec.Spec
	const n = 6
	for i := range n {
		s := l.spec
		s.Name, s.Lab = fmt.Sprintf("web%d", i), "office"
		s.NICs = []vmspec.NIC{{Network: "nat0"}}
		s.Requires.Networks = []vmspec.NetworkReq{{Name: "nat0", CIDR: netip.MustParsePrefix("198.51.100.0/28")}}
		specs = append(specs, s)
	}
	for i, err := range concurrentUps(l, specs) {
		if err != nil {
			t.Errorf("up %s: %v", specs[i].Name, err)
		}
	}
	if l.f.ensured != 1 || l.f.calls["EnsureNetwork"] != 1 {
		t.Errorf("EnsureNetwork called %d times, created %d networks; want one call that creates nat0", l.f.calls["EnsureNetwork"], l.f.ensured)
	}
	seen := map[netip.Addr]string{}
	for _, h := range l.f.nets["nat0"].hosts {
		if other, ok := seen[h.IP]; ok {
			t.Errorf("%s and %s both have reservation %s", other, h.Hostname, h.IP)
		}
		seen[h.IP] = h.Hostname
	}
	if len(seen) != n || len(l.f.doms) != n {
		t.Errorf("%d distinct reservations, %d domains; want %d of each: %+v", len(seen), len(l.f.doms), n, l.f.nets["nat0"].hosts)
	}
}

// Two Ups at once asking for the same static address: one gets it, the
// other is refused naming the address and the VM that holds it, and
// leaves nothing behind.
func TestConcurrentUpsSameStatic(t *testing.T) {
	l := newStepLab(t)
	l.f.delay = 2e6
	a, b := l.labVM("web", "office", 0), l.labVM("db", "office", 0)
	errs := concurrentUps(l, []vmspec.Spec{a, b})
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("errors %v; want exactly one up refused", errs)
	}
	loser, winner := "db", "web"
	err := errs[1]
	if errs[0] != nil {
		loser, winner, err = "web", "db", errs[0]
	}
	if !strings.Contains(err.Error(), "198.51.100.5") || !strings.Contains(err.Error(), "VM "+winner) {
		t.Errorf("refusal %v does not name the address and VM %s", err, winner)
	}
	if _, ok := l.f.doms[loser]; ok {
		t.Errorf("the refused VM %s has a domain", loser)
	}
	if _, err := os.Stat(filepath.Join(l.e.StateDir, "vms", loser)); !os.IsNotExist(err) {
		t.Errorf("the refused VM %s left its directory: %v", loser, err)
	}
}

// An up that made nat0 and then failed keeps nat0 when another VM was put
// on it meanwhile (an Up beside it found nat0 made): the rollback says so,
// and the other VM's reservation stays.
func TestRollbackKeepsNetworkAnotherVMUses(t *testing.T) {
	l := newStepLab(t)
	ctx := context.Background()
	r := l.upTo(t, l.labVM("web", "office", 0), "define")
	if l.f.ensured != 1 {
		t.Fatalf("web's up made %d networks, want nat0", l.f.ensured)
	}
	if _, err := Up(ctx, l.e, l.labVM("db", "office", 1)); err != nil {
		t.Fatal(err)
	}
	err := r.undo.run(ctx, r.spec, errInjected)
	var uf *UpFailedError
	if !errors.As(err, &uf) || !strings.Contains(strings.Join(uf.Left, "; "), "network nat0, which VM db uses now") {
		t.Fatalf("rollback: %v; want nat0 left, naming VM db", err)
	}
	if _, ok := l.f.nets["nat0"]; !ok {
		t.Fatal("the rollback deleted nat0, which db is on")
	}
	if _, ok := l.f.doms["web"]; ok {
		t.Error("the rollback kept web's domain")
	}
	if hosts := l.f.nets["nat0"].hosts; len(hosts) != 1 || hosts[0].Hostname != "db" {
		t.Errorf("reservations on nat0 after the rollback: %+v, want db's alone", hosts)
	}
}
