package labrun

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/doctor"
	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

// TestCheckHostModes: a host container in a mode the host kernel lacks is
// refused with exit 2, the reason and the in-guest alternative; veth needs
// no probe; a kernel that has the mode passes.
func TestCheckHostModes(t *testing.T) {
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	probed := 0
	probe := func(links ...doctor.LinkSupport) LinkProbe {
		return func() ([]doctor.LinkSupport, error) { probed++; return links, nil }
	}
	if err := checkHostModes(l, probe()); err != nil || probed != 0 {
		t.Errorf("veth: %v, probed %d times; want nil without a probe", err, probed)
	}
	c := l.HostContainers["web"]
	c.Mode = lab.HostIPvlan
	l.HostContainers["web"] = c
	err = checkHostModes(l, probe(doctor.LinkSupport{Kind: "ipvlan", Error: "Unknown device type"}, doctor.LinkSupport{Kind: "macvlan", OK: true}))
	if !errors.Is(err, errs.ErrInvalid) {
		t.Fatalf("ipvlan on a kernel without it: %v, want ErrInvalid (exit 2)", err)
	}
	msg := err.Error() + " | " + err.(interface{ Hint() string }).Hint()
	for _, want := range []string{"nodes.web.mode", "this host's kernel does not have", "inside a guest", "network: ipvlan"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q has no %q", msg, want)
		}
	}
	if err := checkHostModes(l, probe(doctor.LinkSupport{Kind: "ipvlan", OK: true})); err != nil {
		t.Errorf("a kernel with ipvlan: %v", err)
	}
}

// TestNodeSelectsHostContainers: --node may name a container node; up then
// makes only the named ones, and an unknown name lists both kinds.
func TestNodeSelectsHostContainers(t *testing.T) {
	l, err := lab.LoadRef("vm-container")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := selectSpecs(l, []string{"web"})
	if err != nil || len(specs) != 0 {
		t.Errorf("--node web: specs %v, %v; want no VM and no error", specs, err)
	}
	if got := withHostContainers(l, []string{"vm"}).HostOrder; len(got) != 0 {
		t.Errorf("--node vm keeps host containers %v", got)
	}
	if got := withHostContainers(l, nil).HostOrder; len(got) != 1 {
		t.Errorf("no --node: host containers %v, want web", got)
	}
	if _, err := selectSpecs(l, []string{"wbe"}); err == nil || !strings.Contains(err.Error()+err.(interface{ Hint() string }).Hint(), "vm, web") {
		t.Errorf("--node wbe: %v", err)
	}
}

// The refusal of a host mode the kernel lacks names the lab file and the
// line of the container's mode, as every other lab file error does.
func TestCheckHostModesNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipv.lab.yaml")
	src := "name: ipv\nnetworks:\n  lab0: {kind: bridge, address: 192.0.2.1/24}\nnodes:\n  web:\n    kind: container\n    network: lab0\n    mode: ipvlan\n    address: 192.0.2.20/24\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := lab.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	err = checkHostModes(l, func() ([]doctor.LinkSupport, error) {
		return []doctor.LinkSupport{{Kind: "ipvlan", Error: "Unknown device type"}}, nil
	})
	if want := path + ":8: nodes.web.mode"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ipvlan on a kernel without it: %v, want it to name %q", err, want)
	}
}
