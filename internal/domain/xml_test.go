package domain

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/accel"
	"vmnet/internal/testutil"
	"vmnet/internal/vmspec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var (
	tcg = accel.Choice{Type: accel.QEMU, Reason: "test"}
	kvm = accel.Choice{Type: accel.KVM, Reason: "test"}
)

// tinyImage is what the image package reports for the built-in tiny image.
var tinyImage = ImageInfo{
	Name:   "tiny",
	Kernel: "/var/cache/vmnet/images/tiny/vmlinuz",
	Initrd: "/var/cache/vmnet/images/tiny/initrd.img",
	Ready:  vmspec.Ready{Console: vmspec.DefaultReadyMarker},
}

// diskImage is a Debian image booted directly with its root on the overlay.
var diskImage = ImageInfo{
	Name:       "debian",
	Kernel:     "/var/cache/vmnet/images/debian/vmlinuz",
	Initrd:     "/var/cache/vmnet/images/debian/initrd.img",
	Cmdline:    "root=/dev/vda rw quiet",
	Disk:       "/var/cache/vmnet/images/debian/rootfs.qcow2",
	DiskFormat: "qcow2",
	Ready:      vmspec.Ready{Agent: true},
	CloudInit:  true, // configured by a NoCloud seed, so the plan has one
}

func loadTiny(t *testing.T) vmspec.Spec {
	t.Helper()
	s, err := vmspec.Load("tiny")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// diskSpec has a data disk, provisioning, a gateway and extra kernel arguments.
func diskSpec(t *testing.T) vmspec.Spec {
	t.Helper()
	s, err := vmspec.Parse([]byte(`name: app1
image: debian
vcpus: 2
memory: 2GiB
disks: [{size: 4GiB}]
nics:
  - network: nat0
  - bridge: br0
    address: 192.0.2.20/24
    gateway: 192.0.2.1
kernel:
  cmdline: systemd.unit=multi-user.target
provision:
  commands: [systemctl start app]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type goldenCase struct {
	name  string
	spec  func(*testing.T) vmspec.Spec
	img   ImageInfo
	accel accel.Choice
}

func goldenCases() []goldenCase {
	boot := diskImage
	boot.Name, boot.Kernel, boot.Initrd, boot.Cmdline = "/srv/images/appliance.qcow2", "", "", ""
	boot.CloudInit = false // an appliance that needs no seed
	boot.Disk = "/srv/images/appliance.qcow2"
	return []goldenCase{
		{"tiny-tcg", loadTiny, tinyImage, tcg},
		{"tiny-kvm", loadTiny, tinyImage, kvm},
		{"disk-tcg", diskSpec, diskImage, tcg},
		{"bootdisk-kvm", func(t *testing.T) vmspec.Spec {
			s := loadTiny(t)
			s.Name, s.Image = "appliance", boot.Disk
			return s
		}, boot, kvm},
		// A lab's VM: its metadata carries the lab's name.
		{"tiny-lab-tcg", func(t *testing.T) vmspec.Spec {
			s := loadTiny(t)
			s.Name, s.Lab = "office-web", "office"
			return s
		}, tinyImage, tcg},
		// NICs on a host interface through macvtap, in two modes.
		{"macvtap-tcg", func(t *testing.T) vmspec.Spec {
			s := loadTiny(t)
			s.Name, s.Requires = "mv1", vmspec.Requires{}
			s.NICs = []vmspec.NIC{
				{Direct: vmspec.Direct{Parent: "eth0"}, Address: netip.MustParsePrefix("192.0.2.30/24")},
				{Direct: vmspec.Direct{Parent: "eth1", Mode: vmspec.DirectVEPA}},
			}
			return s
		}, tinyImage, tcg},
	}
}

func render(t *testing.T, c goldenCase) string {
	t.Helper()
	p, err := NewPlan(c.spec(t), c.img, c.accel, DefaultStateDir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out + "\n"
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, c)
			testutil.Golden(t, filepath.Join("testdata", c.name+".xml"), []byte(got), *update)
		})
	}
}

// TestValidateWithLibvirt runs libvirt's own schema check on every
// generated document and golden file, and on a broken one to prove the
// check can fail.
func TestValidateWithLibvirt(t *testing.T) {
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Skip("virt-xml-validate not installed (package libvirt-clients)")
	}
	dir := t.TempDir()
	validate := func(name, doc string) error {
		f := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("virt-xml-validate", f, "domain").CombinedOutput()
		if err != nil {
			return fmt.Errorf("virt-xml-validate %s: %w\n%s", name, err, out)
		}
		return nil
	}
	for _, c := range goldenCases() {
		doc := render(t, c)
		if err := validate(c.name, doc); err != nil {
			t.Error(err)
		}
		golden, err := os.ReadFile(filepath.Join("testdata", c.name+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(c.name+"-golden", string(golden)); err != nil {
			t.Error(err)
		}
		if c.name == "tiny-tcg" {
			broken := strings.Replace(doc, `mode="maximum"`, `mode="fastest"`, 1)
			if err := validate("broken", broken); err == nil {
				t.Error("virt-xml-validate accepted <cpu mode=\"fastest\">: the check does not check")
			}
		}
	}
}

// TestBuildDomain checks the decisions the golden files encode, one by one,
// so a careless -update cannot lose them.
func TestBuildDomain(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			var d libvirtxml.Domain
			if err := d.Unmarshal(render(t, c)); err != nil {
				t.Fatal(err)
			}
			if d.Type != c.accel.Type {
				t.Errorf("domain type %q, want %q", d.Type, c.accel.Type)
			}
			wantCPU := map[string]string{accel.KVM: "host-passthrough", accel.QEMU: "maximum"}[c.accel.Type]
			if d.CPU == nil || d.CPU.Mode != wantCPU {
				t.Errorf("cpu = %+v, want mode %s", d.CPU, wantCPU)
			}
			dev := d.Devices
			for i, n := range dev.Interfaces {
				if n.Model == nil || n.Model.Type != "virtio" || n.MAC == nil || !strings.HasPrefix(n.MAC.Address, "52:54:00:") {
					t.Errorf("interface %d: model %+v mac %+v, want virtio and 52:54:00:...", i, n.Model, n.MAC)
				}
			}
			if len(dev.Serials) != 1 || dev.Serials[0].Log == nil || !strings.HasSuffix(dev.Serials[0].Log.File, "/console.log") || dev.Serials[0].Source.Pty == nil {
				t.Errorf("serial = %+v, want a pty logged to console.log", dev.Serials)
			}
			if len(dev.Channels) != 1 || dev.Channels[0].Target.VirtIO == nil || dev.Channels[0].Target.VirtIO.Name != GuestAgentChannel {
				t.Errorf("channels = %+v, want the guest agent's", dev.Channels)
			}
			if dev.MemBalloon == nil || dev.MemBalloon.Model != "none" || len(dev.Graphics) != 0 || len(dev.RNGs) != 1 {
				t.Errorf("memballoon %+v, graphics %d, rngs %d", dev.MemBalloon, len(dev.Graphics), len(dev.RNGs))
			}
			if d.OnPoweroff != "destroy" {
				t.Errorf("on_poweroff = %q", d.OnPoweroff)
			}
			m, ok := ParseMetadata(render(t, c))
			if !ok || m.Owner != Owner || m.Hash == "" || m.Spec != d.Name || m.Dir != "/var/lib/vmnet/vms/"+d.Name {
				t.Errorf("metadata = %+v, %v", m, ok)
			}
		})
	}
}

func TestPlanTiny(t *testing.T) {
	p, err := NewPlan(loadTiny(t), tinyImage, tcg, "/state")
	if err != nil {
		t.Fatal(err)
	}
	want := "console=ttyS0 vmnet.hostname=tiny vmnet.ip.1=192.0.2.10/24"
	if p.Cmdline != want {
		t.Errorf("cmdline = %q, want %q", p.Cmdline, want)
	}
	if p.Overlay != nil || p.Seed != "" || len(p.DataDisks) != 0 {
		t.Errorf("tiny has overlay %v, seed %q, disks %v; want none", p.Overlay, p.Seed, p.DataDisks)
	}
	if p.Dir != "/state/vms/tiny" || p.ConsoleLog != "/state/vms/tiny/console.log" {
		t.Errorf("dir %q, console log %q", p.Dir, p.ConsoleLog)
	}
	if p.Timeout != 10*accel.BootKVM || p.Ready.Console != "VMNET-READY" {
		t.Errorf("timeout %v, ready %v", p.Timeout, p.Ready)
	}
	if p.NICs[0].Network != "nat0" || p.NICs[1].Bridge != "br0" || p.NICs[0].MAC.String() != MAC("tiny", 0).String() || p.NICs[1].MAC.String() != MAC("tiny", 1).String() {
		t.Errorf("NICs = %+v", p.NICs)
	}
	if d := cmp.Diff([]File{{KindConsoleLog, "/state/vms/tiny/console.log"}}, p.Files()); d != "" {
		t.Errorf("Files: %s", d)
	}
	kp, _ := NewPlan(loadTiny(t), tinyImage, kvm, "/state")
	if kp.Timeout != accel.BootKVM {
		t.Errorf("KVM timeout %v", kp.Timeout)
	}
	if p.UUID != kp.UUID || p.UUID != uuidFor("tiny") || len(p.UUID) != 36 || p.UUID[14] != '8' {
		t.Errorf("UUID %q (kvm %q), want a stable version-8 UUID", p.UUID, kp.UUID)
	}
}

func TestPlanDisk(t *testing.T) {
	p, err := NewPlan(diskSpec(t), diskImage, tcg, DefaultStateDir)
	if err != nil {
		t.Fatal(err)
	}
	want := "root=/dev/vda rw quiet console=ttyS0 vmnet.hostname=app1 vmnet.ip.1=192.0.2.20/24,gw=192.0.2.1 systemd.unit=multi-user.target"
	if p.Cmdline != want {
		t.Errorf("cmdline = %q, want %q", p.Cmdline, want)
	}
	wantFiles := []File{
		{KindOverlay, "/var/lib/vmnet/vms/app1/overlay.qcow2"},
		{KindDisk, "/var/lib/vmnet/vms/app1/disk1.qcow2"},
		{KindSeed, "/var/lib/vmnet/vms/app1/seed.iso"},
		{KindConsoleLog, "/var/lib/vmnet/vms/app1/console.log"},
	}
	if d := cmp.Diff(wantFiles, p.Files()); d != "" {
		t.Errorf("Files (-want +got):\n%s", d)
	}
	if p.Overlay.Backing != diskImage.Disk || p.Overlay.Target != "vda" || p.DataDisks[0].Target != "vdb" || p.DataDisks[0].Size != 4<<30 {
		t.Errorf("overlay %+v, data disks %+v", p.Overlay, p.DataDisks)
	}
}

func TestPlanErrors(t *testing.T) {
	tiny := loadTiny
	cases := []struct {
		name  string
		spec  func(*testing.T) vmspec.Spec
		img   ImageInfo
		accel accel.Choice
		dir   string
		want  string
	}{
		{"no accel", tiny, tinyImage, accel.Choice{}, "/s", `accelerator "" is neither kvm nor qemu`},
		{"relative state dir", tiny, tinyImage, tcg, "state", `state directory "state" is not a clean absolute path`},
		{"empty image", tiny, ImageInfo{Name: "x"}, tcg, "/s", "image x has neither a kernel nor a disk"},
		{"initrd without kernel", tiny, ImageInfo{Name: "x", Initrd: "/i", Disk: "/d", DiskFormat: "qcow2"}, tcg, "/s", "image x has an initrd but no kernel"},
		{"disk format", tiny, ImageInfo{Name: "x", Disk: "/d", DiskFormat: "vmdk"}, tcg, "/s", `image x has disk format "vmdk"`},
		{"relative kernel", tiny, ImageInfo{Name: "x", Kernel: "vmlinuz"}, tcg, "/s", `image x path "vmlinuz" is not absolute`},
		{"cmdline without kernel", func(t *testing.T) vmspec.Spec {
			s := tiny(t)
			s.Kernel.Cmdline = "quiet"
			return s
		}, ImageInfo{Name: "x", Disk: "/d", DiskFormat: "raw"}, tcg, "/s", "sets kernel.cmdline, but image x boots from its disk"},
		{"lease without network", func(t *testing.T) vmspec.Spec {
			s := tiny(t)
			s.Ready, s.NICs = vmspec.Ready{}, s.NICs[1:]
			return s
		}, ImageInfo{Name: "x", Disk: "/d", DiskFormat: "raw", Ready: vmspec.Ready{Lease: true}}, tcg, "/s", "waits for a DHCP lease"},
		{"cmdline too long", func(t *testing.T) vmspec.Spec {
			s := tiny(t)
			s.Kernel.Cmdline = strings.Repeat("x", 1000)
			return s
		}, ImageInfo{Name: "x", Kernel: "/k", Cmdline: strings.Repeat("y ", 600)}, tcg, "/s", "kernel command line is"},
		{"invalid spec", func(t *testing.T) vmspec.Spec {
			s := tiny(t)
			s.NICs[0].Network = "bad name"
			return s
		}, tinyImage, tcg, "/s", `nics[0].network: "bad name"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewPlan(c.spec(t), c.img, c.accel, c.dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("NewPlan error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestPlanReadyDefault(t *testing.T) {
	s := loadTiny(t)
	s.Ready = vmspec.Ready{}
	img := tinyImage
	img.Ready = vmspec.Ready{}
	p, _ := NewPlan(s, img, tcg, "/s")
	if !p.Ready.Lease {
		t.Errorf("image without a default, spec with a network NIC: ready %v, want lease", p.Ready)
	}
	s.NICs = s.NICs[1:]
	p, _ = NewPlan(s, img, tcg, "/s")
	if !p.Ready.Agent {
		t.Errorf("image without a default, no network NIC: ready %v, want agent", p.Ready)
	}
	s.NICs[0].MAC = "02:00:00:00:00:07"
	p, _ = NewPlan(s, img, tcg, "/s")
	if p.NICs[0].MAC.String() != "02:00:00:00:00:07" {
		t.Errorf("MAC override ignored: %v", p.NICs[0].MAC)
	}
	if addr := p.NICs[0].Address; addr != netip.MustParsePrefix("192.0.2.10/24") {
		t.Errorf("address %v", addr)
	}
}

// A lab's VM carries lab="NAME" in its record and reads it back; a VM
// without a lab has no attribute, and a record written before labs (the
// golden files of VMs without a lab stand for one) reads as lab "".
func TestMetadataLab(t *testing.T) {
	for _, tc := range []struct{ lab, attr string }{{"office", ` lab="office"`}, {"", ""}} {
		s := loadTiny(t)
		s.Lab = tc.lab
		p, err := NewPlan(s, tinyImage, tcg, DefaultStateDir)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Build(p)
		if err != nil {
			t.Fatal(err)
		}
		x := d.Metadata.XML
		if !strings.Contains(x, `owner="vmnet" spec="tiny" hash="`+p.SpecHash+`"`+tc.attr+`>`) {
			t.Errorf("lab %q: metadata %s, want the attribute %q after the hash", tc.lab, x, tc.attr)
		}
		if got, ok := ParseMetadata(x); !ok || got.Lab != tc.lab {
			t.Errorf("lab %q: ParseMetadata(%s) = %+v, %v", tc.lab, x, got, ok)
		}
	}
	old, err := os.ReadFile(filepath.Join("testdata", "tiny-tcg.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(old), "lab=") {
		t.Fatal("testdata/tiny-tcg.xml has a lab attribute; it stands for a record from before labs")
	}
	if got, ok := ParseMetadata(string(old)); !ok || got.Lab != "" || got.Spec != "tiny" {
		t.Errorf("a record without a lab attribute reads as %+v, %v; want vmnet's, lab \"\"", got, ok)
	}
	bare := `<vm owner="vmnet" spec="web" hash="abc" lab="office"><dir>/d</dir></vm>` // as virDomainGetMetadata returns it
	if got, ok := ParseMetadata(bare); !ok || got.Lab != "office" {
		t.Errorf("ParseMetadata(%s) = %+v, %v; want lab office", bare, got, ok)
	}
}

func TestParseMetadata(t *testing.T) {
	m := Meta{Owner: Owner, Spec: "tiny", Hash: "abc", Dir: "/d", Files: []File{{KindConsoleLog, "/d/console.log"}}}
	x, err := m.marshal()
	if err != nil {
		t.Fatal(err)
	}
	// libvirt hands the element back with its own prefix; namespaces, not prefixes, must match.
	prefixed := `<vmnet:vm xmlns:vmnet="https://vmnet.dev/xmlns/1" owner="vmnet" spec="tiny" hash="abc"><vmnet:dir>/d</vmnet:dir><vmnet:file kind="console-log" path="/d/console.log"/></vmnet:vm>`
	for name, doc := range map[string]string{
		"element": x,
		"getmetadata": `<vm owner="vmnet" spec="tiny" hash="abc">
  <dir>/d</dir>
  <file kind="console-log" path="/d/console.log"/>
</vm>`,
		"prefixed": prefixed,
		"domain":   "<domain type='qemu'><name>tiny</name><metadata>" + prefixed + "<other xmlns='urn:x'/></metadata></domain>",
	} {
		got, ok := ParseMetadata(doc)
		if !ok {
			t.Errorf("%s: no metadata found in %s", name, doc)
			continue
		}
		if d := cmp.Diff(m, got, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "XMLName" }, cmp.Ignore())); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	for name, doc := range map[string]string{
		"none":         "<domain type='qemu'><name>x</name></domain>",
		"other owner":  `<domain><metadata><vm xmlns="https://vmnet.dev/xmlns/1" owner="alice"/></metadata></domain>`,
		"other ns":     `<domain><metadata><vm xmlns="https://example.com/1" owner="vmnet"/></metadata></domain>`,
		"broken xml":   `<domain><metadata><vm xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"`,
		"empty":        "",
		"not xml":      "vmnet",
		"no namespace": `<domain><metadata><vm owner="vmnet"/></metadata></domain>`,
		"no owner":     `<vm xmlns="https://vmnet.dev/xmlns/1" spec="tiny"/>`,
	} {
		if got, ok := ParseMetadata(doc); ok {
			t.Errorf("%s: ParseMetadata = %+v, true; want false", name, got)
		}
	}
}

// TestDirectInterface: a direct NIC is <interface type='direct'> with its
// parent as source dev and its mode (bridge when the spec leaves it out),
// so a careless -update cannot lose it.
func TestDirectInterface(t *testing.T) {
	for _, c := range goldenCases() {
		if c.name != "macvtap-tcg" {
			continue
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(render(t, c)); err != nil {
			t.Fatal(err)
		}
		want := [][2]string{{"eth0", "bridge"}, {"eth1", "vepa"}}
		if len(d.Devices.Interfaces) != len(want) {
			t.Fatalf("%d interfaces, want %d", len(d.Devices.Interfaces), len(want))
		}
		for i, ifc := range d.Devices.Interfaces {
			src := ifc.Source
			if src == nil || src.Direct == nil || src.Direct.Dev != want[i][0] || src.Direct.Mode != want[i][1] {
				t.Errorf("interface %d source = %+v, want direct dev %s mode %s", i, src, want[i][0], want[i][1])
			}
		}
		return
	}
	t.Fatal("no macvtap-tcg golden case")
}
