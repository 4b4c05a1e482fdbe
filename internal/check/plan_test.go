package check

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vmnet/internal/network"
	"vmnet/internal/vm"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// renderPlan shows everything a check carries, one line each, for golden files.
func renderPlan(checks []Check) string {
	var b strings.Builder
	for _, c := range checks {
		from := string(c.From.Kind)
		if c.From.Container != "" {
			from += ":" + c.From.Container
		}
		fmt.Fprintf(&b, "%s\n  %s → %s  %s %s  expect %q  from=%s want=%s nic=%d", c.ID, c.Source, c.Target, c.Method, c.Address, c.Expect, from, c.Want, c.NIC)
		if c.To.IsValid() {
			fmt.Fprintf(&b, " to=%s", c.To)
		}
		if c.Port != 0 {
			fmt.Fprintf(&b, " port=%d", c.Port)
		}
		if c.Name != "" {
			fmt.Fprintf(&b, " name=%s", c.Name)
		}
		if c.Container != "" {
			fmt.Fprintf(&b, " container=%s", c.Container)
		}
		if len(c.Requires) > 0 {
			fmt.Fprintf(&b, " requires=%s", strings.Join(c.Requires, ","))
		}
		if c.Unknown != "" {
			fmt.Fprintf(&b, "\n  unknown: %s", c.Unknown)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestMatrixGolden(t *testing.T) {
	capstone := capstoneTarget()
	// A lab half up: no lease on nat0, db stopped, proxy never created.
	broken := capstoneTarget()
	broken.NICs[0].Address = netip.Addr{}
	broken.Containers = []Container{
		{Name: "db", State: "exited (code 1)"},
		{Name: "api", State: "running", IP: a("10.89.0.3"), Gateway: a("10.89.0.1")},
	}
	tiny := Target{Name: "tiny", NICs: capstoneTarget().NICs}
	for _, tc := range []struct {
		file   string
		checks []Check
	}{
		{"plan-capstone.txt", CapstoneMatrix(capstone)},
		{"plan-capstone-broken.txt", CapstoneMatrix(broken)},
		{"plan-basic.txt", BasicMatrix(tiny)},
	} {
		t.Run(tc.file, func(t *testing.T) { golden(t, tc.file, renderPlan(tc.checks)) })
	}
}

// IDs are unique and stable: CI systems track test history by them.
func TestMatrixIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range CapstoneMatrix(capstoneTarget()) {
		if seen[c.ID] {
			t.Errorf("duplicate ID %s", c.ID)
		}
		seen[c.ID] = true
		for _, r := range c.Requires {
			if !seen[r] {
				t.Errorf("%s requires %s, which is not planned before it", c.ID, r)
			}
		}
	}
}

func TestChooseMatrix(t *testing.T) {
	for _, tc := range []struct {
		flag, spec, want string
	}{
		{"auto", "capstone", MatrixCapstone},
		{"auto", "tiny", MatrixBasic},
		{"", "web", MatrixBasic},
		{"basic", "capstone", MatrixBasic},
		{"capstone", "tiny", MatrixCapstone},
	} {
		got, err := ChooseMatrix(tc.flag, Target{Spec: tc.spec}, apps())
		if err != nil || got != tc.want {
			t.Errorf("ChooseMatrix(%q, spec %q) = %q, %v; want %q", tc.flag, tc.spec, got, err, tc.want)
		}
	}
	var me *MatrixError
	if _, err := ChooseMatrix("full", Target{}, apps()); !errors.As(err, &me) || me.Hint() == "" {
		t.Errorf("ChooseMatrix(full) = %v, want a MatrixError with a hint", err)
	}
	if _, err := Matrix("auto", Target{}, apps()); !errors.As(err, &me) {
		t.Errorf("Matrix(auto) = %v, want a MatrixError (auto is resolved first)", err)
	}
}

const liveXML = `<domain type='qemu' id='1'>
  <name>capstone</name>
  <metadata>
    <vmnet:vm xmlns:vmnet="https://vmnet.dev/xmlns/1" owner="vmnet" spec="capstone" hash="abc"><vmnet:dir>/var/lib/vmnet/vms/capstone</vmnet:dir></vmnet:vm>
  </metadata>
  <devices>
    <interface type='network'>
      <mac address='52:54:00:AA:00:01'/>
      <source network='nat0' bridge='vmnet-nat0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:aa:00:02'/>
      <source bridge='br0'/>
      <target dev='vnet1'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`

func TestDescribeFrom(t *testing.T) {
	info := vm.Info{Name: "capstone", State: "running", Owner: "vmnet", NICs: []vm.NICInfo{
		{Index: 0, Network: "nat0", MAC: "52:54:00:aa:00:01", Address: "198.51.100.23", Source: "reservation"},
		{Index: 1, Bridge: "br0", MAC: "52:54:00:aa:00:02", Address: "192.0.2.10", Source: "static"},
	}}
	nets := []network.Info{
		{Name: "other", Bridge: "virbr9", CIDR: "203.0.113.0/24", Gateway: "203.0.113.1"},
		{Name: "nat0", Bridge: "vmnet-nat0", CIDR: "198.51.100.0/24", Gateway: "198.51.100.1"},
	}
	addrs := func(link string) []netip.Prefix {
		if link == "br0" {
			// The VM's subnet's address wins over one listed before it.
			return pfx("203.0.113.7/24", "192.0.2.1/24")
		}
		return nil
	}
	got := describeFrom(info, liveXML, nets, addrs, true)
	want := capstoneTarget()
	want.Containers, want.Accel = nil, "qemu" // <domain type='qemu'>: the accelerator for the reports
	want.App = nil                            // the app's description is the caller's, not libvirt's
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// A bridge without addresses, a NIC without a lease, XML without taps.
	info.NICs[0].Address, info.NICs[0].Source = "", ""
	got = describeFrom(info, "<domain><name>capstone</name></domain>", nets, func(string) []netip.Prefix { return nil }, false)
	if got.Spec != "" || got.Agent || got.Accel != "" || got.NICs[0].Address.IsValid() || got.NICs[0].Tap != "" || got.NICs[1].Host.IsValid() || got.NICs[0].Host != a("198.51.100.1") {
		t.Errorf("sparse describe = %+v", got)
	}
}
