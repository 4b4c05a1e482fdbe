package vmspec

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/bridge"
	"vmnet/internal/errs"
	"vmnet/templates"
)

func TestLoadTiny(t *testing.T) {
	got, err := Load("tiny")
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{
		Name: "tiny", Image: "tiny", VCPUs: 1, Memory: 256 << 20,
		NICs: []NIC{
			{Network: "nat0"},
			{Bridge: "br0", Address: netip.MustParsePrefix("192.0.2.10/24")},
		},
		Ready: Ready{Console: "VMNET-READY"},
		Requires: Requires{
			Networks: []NetworkReq{{Name: "nat0", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")}},
			Bridges:  []BridgeReq{{Name: "br0", Address: netip.MustParsePrefix("192.0.2.1/24")}},
		},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("Load(tiny) (-want +got):\n%s", d)
	}
	if n := got.Networks(); len(n) != 1 || n[0] != "nat0" {
		t.Errorf("Networks() = %v, want [nat0]", n)
	}
	if b := got.Bridges(); len(b) != 1 || b[0] != "br0" {
		t.Errorf("Bridges() = %v, want [br0]", b)
	}
}

func TestEveryProfileLoads(t *testing.T) {
	for _, name := range templates.ProfileNames() {
		if _, err := Load(name); err != nil {
			t.Errorf("built-in profile %s: %v", name, err)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	spec := `name: web1
image: disks/base.qcow2
vcpus: 2
memory: 2GiB
disks: [{size: 1GiB}]
nics:
  - network: nat0
  - bridge: br0
    address: 192.0.2.20/24
    gateway: 192.0.2.1
kernel:
  cmdline: quiet loglevel=3
ready: agent
timeout: 5m
provision:
  files:
    - path: /etc/motd
      content: hello
    - path: /usr/local/bin/app
      source: app.sh
      mode: 0755
  commands: [systemctl restart app]
`
	p := filepath.Join(dir, "web1.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "disks/base.qcow2"); s.Image != want {
		t.Errorf("image = %q, want %q (relative to the spec file)", s.Image, want)
	}
	if want := filepath.Join(dir, "app.sh"); s.Provision.Files[1].Source != want {
		t.Errorf("provision.files[1].source = %q, want %q", s.Provision.Files[1].Source, want)
	}
	if s.Provision.Files[0].Mode != 0o644 || s.Provision.Files[1].Mode != 0o755 {
		t.Errorf("file modes = %v, %v; want 0644 (default), 0755", s.Provision.Files[0].Mode, s.Provision.Files[1].Mode)
	}
	if s.Memory != 2<<30 || s.VCPUs != 2 || len(s.Disks) != 1 || s.Disks[0].Size != 1<<30 {
		t.Errorf("memory, vcpus, disks = %v, %d, %v", s.Memory, s.VCPUs, s.Disks)
	}
	if !s.Ready.Agent || time.Duration(s.Timeout) != 5*time.Minute || s.Kernel.Cmdline != "quiet loglevel=3" {
		t.Errorf("ready, timeout, cmdline = %v, %v, %q", s.Ready, s.Timeout, s.Kernel.Cmdline)
	}
	if s.NICs[1].Gateway != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("nics[1].gateway = %v", s.NICs[1].Gateway)
	}
}

func TestLoadErrors(t *testing.T) {
	var pe *ProfileError
	if _, err := Load("nosuch"); !errors.As(err, &pe) || !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "tiny") || pe.Hint() == "" {
		t.Errorf("Load(nosuch) = %v, want a ProfileError listing tiny", err)
	}
	var fe *errs.FileError
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	if _, err := Load(missing); !errors.As(err, &fe) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(fe.Hint(), "tiny") ||
		!strings.HasPrefix(err.Error(), "read spec "+missing+": ") {
		t.Errorf("Load(missing file) = %v, want a FileError wrapping ErrNotExist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("name: a\nimage: tiny\nnics:\n  - bridge: br0\n    adress: 192.0.2.2/24\n"), 0o644)
	_, err := Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+": line 5: nics[0].adress is not a known field (did you mean address?)") {
		t.Errorf("Load(typo) = %v", err)
	}
}

func TestIsProfileName(t *testing.T) {
	for s, want := range map[string]bool{"tiny": true, "capstone": true, "./tiny": false, "tiny.yaml": false, "a.yml": false, "/etc/x": false, "": false} {
		if got := IsProfileName(s); got != want {
			t.Errorf("IsProfileName(%q) = %v, want %v", s, got, want)
		}
	}
}

// base is a valid spec for the error cases to break one field at a time.
const base = "name: a\nimage: tiny\nnics:\n  - network: nat0\n"

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string // each error's text, in order
	}{
		{"unknown top-level field", base + "nicss: []\n", []string{"line 5: nicss is not a known field (did you mean nics?)"}},
		{"unknown nested field", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    adress: 192.0.2.2/24\n", []string{"line 5: nics[0].adress is not a known field (did you mean address?)"}},
		{"unknown field far from any", base + "colour: red\n", []string{"line 5: colour is not a known field"}},
		// The lab tag is the lab planner's to set: a spec file cannot claim a lab.
		{"lab in a spec file", base + "lab: office\n", []string{"line 5: lab is not a known field"}},
		{"the key of a field without a YAML name", base + "'-': office\n", []string{"line 5: - is not a known field"}},
		{"bad bridge name", "name: a\nimage: tiny\nnics:\n  - network: nat0\n  - bridge: br 0\n", []string{`line 5: nics[1].bridge: "br 0" contains ' ', which is not allowed in an interface name`}},
		{"bridge name too long", "name: a\nimage: tiny\nnics:\n  - bridge: abcdefghijklmnop\n", []string{`line 4: nics[0].bridge: "abcdefghijklmnop" is 16 bytes long; Linux allows at most 15`}},
		{"network and bridge", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    bridge: br0\n", []string{`line 5: nics[0].bridge: "br0" is set together with network nat0`}},
		{"neither network nor bridge", "name: a\nimage: tiny\nnics:\n  - address: 192.0.2.2/24\n", []string{"line 4: nics[0] has neither network, bridge nor direct"}},
		{"bad network name", "name: a\nimage: tiny\nnics:\n  - network: nat/0\n", []string{`line 4: nics[0].network: "nat/0" contains '/', which is not allowed in a network name`}},
		{"name missing", "image: tiny\n", []string{"name is missing"}},
		{"name uppercase", "name: Web\nimage: tiny\n", []string{`line 1: name: "Web" does not start with a lowercase letter`}},
		{"name with underscore", "name: web_1\nimage: tiny\n", []string{`line 1: name: "web_1" contains '_'; a hostname allows only lowercase letters, digits and '-'`}},
		{"image missing", "name: a\n", []string{"image is missing"}},
		{"image odd", "name: a\nimage: Tiny!\n", []string{`line 2: image: "Tiny!" is neither a built-in image name nor a path`}},
		// an image name is held to image build's rule (valid.ImageName): at most 32 characters
		{"image name too long", "name: a\nimage: " + strings.Repeat("i", 33) + "\n", []string{`line 2: image: "` + strings.Repeat("i", 33) + `" is neither a built-in image name nor a path`}},
		{"long network name", "name: a\nimage: tiny\nnics:\n  - network: " + strings.Repeat("n", 65) + "\n", []string{`line 4: nics[0].network: "` + strings.Repeat("n", 65) + `" is 65 bytes long; vmnet allows at most 64`}},
		{"vcpus word", base + "vcpus: two\n", []string{`line 5: vcpus: "two" is not a whole number`}},
		{"vcpus too many", base + "vcpus: 65\n", []string{`line 5: vcpus: "65" is outside 1-64`}},
		{"vcpus negative", base + "vcpus: -1\n", []string{`line 5: vcpus: "-1" is outside 1-64`}},
		{"memory without unit", base + "memory: 256\n", []string{`line 5: memory: "256" has no unit`}},
		{"memory decimal unit", base + "memory: 2GB\n", []string{`line 5: memory: "2GB" has a decimal unit; vmnet sizes are binary`}},
		{"memory too small", base + "memory: 1MiB\n", []string{`line 5: memory: "1MiB" is outside 32MiB-1TiB`}},
		{"memory fraction", base + "memory: 1.5GiB\n", []string{`line 5: memory: "1.5GiB" has a fraction; sizes are whole numbers`}},
		{"disk too small", base + "disks:\n  - size: 1KiB\n", []string{`line 6: disks[0].size: "1KiB" is outside 1MiB-16TiB`}},
		{"disk without size", base + "disks:\n  - {}\n", []string{`line 6: disks[0].size: "0B" is outside 1MiB-16TiB`}},
		{"nics not a list", "name: a\nimage: tiny\nnics: nat0\n", []string{`line 3: nics is "nat0"; it must be a list (lines starting with '- ')`}},
		{"address without prefix", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.10\n", []string{`line 5: nics[0].address: "192.0.2.10" has no prefix length`}},
		{"address garbage", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: near\n", []string{`line 5: nics[0].address: "near" is not an address in CIDR form`}},
		{"address is subnet", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.0/24\n", []string{`line 5: nics[0].address: "192.0.2.0/24" is the network address of its subnet`}},
		{"address twice", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.5/24\n  - bridge: br1\n    address: 192.0.2.5/24\n", []string{`line 7: nics[1].address: "192.0.2.5/24" is also nics[0].address`}},
		{"gateway without address", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    gateway: 198.51.100.1\n", []string{`line 5: nics[0].gateway: "198.51.100.1" is set but address is not`}},
		{"gateway outside", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.5/24\n    gateway: 10.0.0.1\n", []string{`line 6: nics[0].gateway: "10.0.0.1" is not inside 192.0.2.0/24`}},
		{"two gateways", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.5/24\n    gateway: 192.0.2.1\n  - bridge: br1\n    address: 203.0.113.5/24\n    gateway: 203.0.113.1\n", []string{`line 9: nics[1].gateway: "203.0.113.1" is a second default gateway (nics[0] has one)`}},
		{"bad mac", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    mac: 01:00:5e:00:00:01\n", []string{`line 5: nics[0].mac: "01:00:5e:00:00:01" is a multicast address`}},
		{"address outside required network", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    address: 192.0.2.5/24\nrequires:\n  networks:\n    - name: nat0\n      cidr: 198.51.100.0/24\n", []string{`line 5: nics[0].address: "192.0.2.5/24" is not in network nat0's subnet 198.51.100.0/24`}},
		{"address is the bridge's", "name: a\nimage: tiny\nnics:\n  - bridge: br0\n    address: 192.0.2.1/24\nrequires:\n  bridges:\n    - name: br0\n      address: 192.0.2.1/24\n", []string{`line 5: nics[0].address: "192.0.2.1/24" is already in use: the host's address on br0`}},
		{"address is the network's host", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    address: 198.51.100.1/24\nrequires:\n  networks:\n    - name: nat0\n      cidr: 198.51.100.0/24\n", []string{`line 5: nics[0].address: "198.51.100.1/24" is already in use: the host's address on network nat0`}},
		{"address in the required network's pool", "name: a\nimage: tiny\nnics:\n  - network: nat0\n    address: 198.51.100.130/24\nrequires:\n  networks:\n    - name: nat0\n      cidr: 198.51.100.0/24\n", []string{`line 5: nics[0].address: "198.51.100.130/24" is inside network nat0's DHCP pool 198.51.100.128-198.51.100.254, where dnsmasq may lease it to another guest`}},
		{"cidr with host bits", base + "requires:\n  networks:\n    - name: nat0\n      cidr: 198.51.100.1/24\n", []string{`line 8: requires.networks[0].cidr: "198.51.100.1/24" has host bits set`}},
		{"network mode", base + "requires:\n  networks:\n    - name: nat0\n      mode: routed\n      cidr: 198.51.100.0/24\n", []string{`line 8: requires.networks[0].mode: "routed" is not a network mode`}},
		{"required bridge without address", base + "requires:\n  bridges:\n    - name: br0\n", []string{"line 7: requires.bridges[0].address is missing"}},
		{"kernel cmdline reserved", base + "kernel:\n  cmdline: quiet vmnet.hostname=x\n", []string{`line 6: kernel.cmdline: "vmnet.hostname=x" is set by vmnet itself`}},
		{"ready word", base + "ready: up\n", []string{`line 5: ready: "up" is not a readiness check`}},
		{"ready two", base + "ready: {console: X, agent: true}\n", []string{"line 5: ready sets more than one of console, agent and lease"}},
		{"ready unknown key", base + "ready: {consol: X}\n", []string{"line 5: ready.consol is not a known field (did you mean console?)"}},
		{"ready lease without network", "name: a\nimage: tiny\nnics:\n  - bridge: br0\nready: lease\n", []string{`line 5: ready: "lease" needs a NIC on a libvirt network (only libvirt's DHCP gives leases vmnet can see)`}},
		{"timeout without unit", base + "timeout: 90\n", []string{`line 5: timeout: "90" has no unit`}},
		{"timeout negative", base + "timeout: -5s\n", []string{`line 5: timeout: "-5s" is outside 0-1h`}},
		{"direct without parent", "name: a\nimage: tiny\nnics:\n  - direct: {mode: bridge}\n", []string{"line 4: nics[0].direct.parent is missing"}},
		{"direct bad parent", "name: a\nimage: tiny\nnics:\n  - direct: {parent: eth 0}\n", []string{`line 4: nics[0].direct.parent: "eth 0" contains ' ', which is not allowed in an interface name`}},
		{"direct bad mode", "name: a\nimage: tiny\nnics:\n  - direct: {parent: eth0, mode: brigde}\n", []string{`line 4: nics[0].direct.mode: "brigde" is not a macvtap mode (did you mean bridge?)`}},
		{"direct and bridge", "name: a\nimage: tiny\nnics:\n  - direct: {parent: eth0}\n    bridge: br0\n", []string{`line 4: nics[0].direct: "eth0" is set together with network or bridge`}},
		{"passthrough twice", "name: a\nimage: tiny\nnics:\n  - direct: {parent: eth0, mode: passthrough}\n  - direct: {parent: eth0}\n", []string{`line 5: nics[1].direct.parent: "eth0" is also nics[0]'s parent, and passthrough gives a parent to one NIC only`}},
		{"file path relative", base + "provision:\n  files:\n    - path: etc/motd\n      content: x\n", []string{`line 7: provision.files[0].path: "etc/motd" is not a clean absolute path`}},
		{"file mode", base + "provision:\n  files:\n    - path: /etc/motd\n      mode: rw\n", []string{`line 8: provision.files[0].mode: "rw" is not an octal file mode`}},
		{"empty command", base + "provision:\n  commands: [' ']\n", []string{"line 6: provision.commands[0] is empty"}},
		{"list for a name", "name: [a]\nimage: tiny\n", []string{"line 1: name is a list; it must be a single value"}},
		{"top level list", "- a\n", []string{"line 1: spec is a list; it must be a mapping (key: value lines)"}},
		{"empty", "", []string{"spec is empty"}},
		{"several problems", "name: a\nimage: tiny\nnics:\n  - bridge: br 0\nvcpus: 0\nmemory: 8MiB\n", []string{
			`line 6: memory: "8MiB" is outside 32MiB-1TiB`,
			`line 4: nics[0].bridge: "br 0" contains ' ', which is not allowed in an interface name`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), "/specs")
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("Parse error = %v, want Errors", err)
			}
			if !errors.Is(err, bridge.ErrInvalid) {
				t.Errorf("errors.Is(err, bridge.ErrInvalid) = false")
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Error())
				if e.Fix == "" && !strings.HasPrefix(e.Problem, "is a list;") && !strings.HasPrefix(e.Problem, "is \"") {
					t.Errorf("%s: no fix", e)
				}
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("errors (-want +got):\n%s", d)
			}
			if err.Error() != strings.Join(got, "; ") {
				t.Errorf("Error() = %q, want the problems joined with '; '", err.Error())
			}
		})
	}
}

func TestParseYAMLSyntaxError(t *testing.T) {
	_, err := Parse([]byte("name: a\n  image: [\n"), "")
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, bridge.ErrInvalid) || !strings.Contains(err.Error(), "not valid YAML") || fe.Line != 2 || fe.Fix == "" {
		t.Errorf("Parse(broken YAML) = %#v; want a FieldError at line 2 with a fix, matching bridge.ErrInvalid", err)
	}
}

func TestParseAliasesAndMerge(t *testing.T) {
	doc := `name: a
image: tiny
nics:
  - &lan {bridge: br0, address: 192.0.2.5/24}
  - <<: *lan
    address: 192.0.2.6/24
`
	s, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	if s.NICs[1].Bridge != "br0" || s.NICs[1].Address.String() != "192.0.2.6/24" {
		t.Errorf("merged NIC = %+v", s.NICs[1])
	}
	if _, err := Parse([]byte("name: a\nimage: tiny\nnics:\n  - &n {bridgee: br0}\n  - *n\n"), ""); err == nil || !strings.Contains(err.Error(), "nics[0].bridgee is not a known field") {
		t.Errorf("unknown field behind an alias: %v", err)
	}
}

func TestValidateProgrammatic(t *testing.T) {
	s := Spec{Name: "vm1", Image: "rel/disk.qcow2", NICs: []NIC{{Bridge: "br0"}}}
	s.Defaults()
	err := s.Validate()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "image" || fe.Line != 0 || !strings.Contains(fe.Problem, "relative path") {
		t.Errorf("Validate(relative image) = %v", err)
	}
	s.Image = "/var/lib/images/disk.qcow2"
	if err := s.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
	if s.VCPUs != DefaultVCPUs || s.Memory != DefaultMemory {
		t.Errorf("Defaults: vcpus %d memory %v", s.VCPUs, s.Memory)
	}
}

func TestHash(t *testing.T) {
	a, _ := Load("tiny")
	b, _ := Load("tiny")
	if a.Hash() != b.Hash() || len(a.Hash()) != 16 {
		t.Fatalf("Hash not stable: %s, %s", a.Hash(), b.Hash())
	}
	b.NICs[1].Address = netip.MustParsePrefix("192.0.2.11/24")
	if a.Hash() == b.Hash() {
		t.Error("Hash did not change with a NIC address")
	}
}

// The lab tag is part of the hash (the same spec with another tag is
// another VM's), but no tag leaves the hash as it was before labs.
func TestHashLab(t *testing.T) {
	a, _ := Load("tiny")
	before := a.Hash()
	b, _ := json.Marshal(a)
	if strings.Contains(string(b), "lab") {
		t.Errorf("a spec without a lab marshals as %s: the hash of every existing VM would change", b)
	}
	a.Lab = "office"
	if a.Hash() == before {
		t.Error("Hash did not change with the lab")
	}
}

// Validate refuses a lab tag that cannot be one (the lab planner passes
// lab names, but a tag goes into a bridge's alias, split at spaces and '=').
func TestValidateLab(t *testing.T) {
	s, _ := Load("tiny")
	for lab, ok := range map[string]bool{"": true, "office": true, "lab-2": true, "Office": false, "my lab": false, "a=b": false} {
		s.Lab = lab
		err := s.Validate()
		var fe *FieldError
		if ok != (err == nil) || !ok && (!errors.As(err, &fe) || fe.Field != "lab") {
			t.Errorf("Validate(lab %q) = %v, want ok %v (an error naming lab)", lab, err, ok)
		}
	}
}

func TestNetworksBridges(t *testing.T) {
	s := Spec{NICs: []NIC{{Network: "b"}, {Bridge: "br1"}, {Network: "a"}, {Network: "b"}, {Bridge: "br0"}, {Bridge: "br1"}}}
	if d := cmp.Diff([]string{"b", "a"}, s.Networks()); d != "" {
		t.Errorf("Networks: %s", d)
	}
	if d := cmp.Diff([]string{"br1", "br0"}, s.Bridges()); d != "" {
		t.Errorf("Bridges: %s", d)
	}
	if (Spec{}).Networks() != nil {
		t.Error("Networks of no NICs is not nil")
	}
}

func TestErrorsHint(t *testing.T) {
	one := Errors{{Field: "a", Problem: "is bad", Fix: "fix a"}}
	two := append(one, &FieldError{Field: "b", Problem: "is bad", Fix: "fix b"})
	if one.Hint() != "fix a" || two.Hint() != "a: fix a; b: fix b" {
		t.Errorf("hints %q, %q", one.Hint(), two.Hint())
	}
}

func TestParseAliasBomb(t *testing.T) {
	doc := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
		"provision:\n  commands: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
	start := time.Now()
	_, err := Parse([]byte(doc), "")
	if err == nil {
		t.Fatal("alias bomb accepted")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Parse took %s on an alias bomb", d)
	}
}

// Defaults writes into copies: a spec that shares its slices with another
// (a lab's VMs, made from one template, given defaults by Ups running at
// once) leaves the other as it was.
func TestDefaultsDoesNotWriteThroughSharedSlices(t *testing.T) {
	a := Spec{Name: "a", Requires: Requires{Networks: []NetworkReq{{Name: "nat0"}}}, Provision: Provision{Files: []File{{Path: "/x"}}}}
	b := a
	a.Defaults()
	if b.Requires.Networks[0].Mode != "" || b.Provision.Files[0].Mode != 0 {
		t.Errorf("Defaults of a copy changed the original: %+v, %+v", b.Requires.Networks[0], b.Provision.Files[0])
	}
	if a.Requires.Networks[0].Mode != ModeNAT || a.Provision.Files[0].Mode != 0o644 {
		t.Errorf("Defaults: %+v, %+v", a.Requires.Networks[0], a.Provision.Files[0])
	}
}

// TestParseDirect: a direct NIC parses with its parent and mode, is in
// Parents, and is neither a network nor a bridge.
func TestParseDirect(t *testing.T) {
	s, err := Parse([]byte("name: a\nimage: tiny\nnics:\n  - direct: {parent: eth0}\n    address: 192.0.2.30/24\n  - direct: {parent: eth1, mode: vepa}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Direct{{Parent: "eth0"}, {Parent: "eth1", Mode: DirectVEPA}}
	for i, w := range want {
		if s.NICs[i].Direct != w {
			t.Errorf("nics[%d].direct = %+v, want %+v", i, s.NICs[i].Direct, w)
		}
	}
	if got := s.NICs[0].Direct.ModeOrDefault(); got != DirectBridge {
		t.Errorf("default mode = %q, want bridge", got)
	}
	if d := cmp.Diff([]string{"eth0", "eth1"}, s.Parents()); d != "" {
		t.Errorf("Parents (-want +got):\n%s", d)
	}
	if len(s.Networks()) != 0 || len(s.Bridges()) != 0 {
		t.Errorf("Networks %v Bridges %v, want none", s.Networks(), s.Bridges())
	}
}
