package domain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/sandbox"
	"vmnet/internal/testutil"
	"vmnet/internal/virt"
)

// TestLibvirtAcceptsDomains defines every generated domain in a real
// libvirtd (a sandbox's) — a stricter check than the schema: libvirt's own
// parser and the QEMU driver's capabilities — and reads vmnet's metadata
// back from what libvirt stores, both from the XML and through
// virDomainGetMetadata.
func TestLibvirtAcceptsDomains(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts a sandbox with its own libvirtd")
	}
	if testing.Short() {
		t.Skip("starts libvirtd: skipped with -short")
	}
	for _, tool := range []string{"libvirtd", "virtlogd", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (packages libvirt-daemon-system qemu-system-x86)", tool)
		}
	}
	ctx := context.Background()
	name := fmt.Sprintf("t%d-dom", os.Getpid()%100000)
	t.Cleanup(func() {
		if err := sandbox.Down(ctx, name); err != nil {
			t.Errorf("cleanup: sandbox down %s: %v", name, err)
		}
	})
	if _, err := sandbox.Up(ctx, name); err != nil {
		t.Fatalf("sandbox up: %v", err)
	}
	uri, err := testutil.SandboxURI(name)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := virt.Connect(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			dom, err := conn.DomainDefineXML(render(t, c))
			if err != nil {
				t.Fatalf("libvirt refused the domain: %v", err)
			}
			defer dom.Free()
			defer func() {
				if err := dom.Undefine(); err != nil {
					t.Errorf("undefine: %v", err)
				}
			}()
			stored, err := dom.GetXMLDesc(libvirt.DOMAIN_XML_INACTIVE)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ParseMetadata(render(t, c))
			got, ok := ParseMetadata(stored)
			if !ok || got.Hash != want.Hash || got.Dir != want.Dir || len(got.Files) != len(want.Files) {
				t.Errorf("metadata from libvirt's XML = %+v, %v; want %+v", got, ok, want)
			}
			elem, err := dom.GetMetadata(libvirt.DOMAIN_METADATA_ELEMENT, Namespace, libvirt.DOMAIN_AFFECT_CONFIG)
			if err != nil {
				t.Fatalf("virDomainGetMetadata: %v", err)
			}
			if got, ok := ParseMetadata(elem); !ok || got.Spec != want.Spec {
				t.Errorf("metadata through virDomainGetMetadata = %+v, %v (element %s)", got, ok, elem)
			}
			var d libvirtxml.Domain
			if err := d.Unmarshal(stored); err != nil {
				t.Fatal(err)
			}
			if d.Type != c.accel.Type || d.CPU == nil || d.CPU.Mode != cpuFor(c.accel.Type).Mode || len(d.Devices.Interfaces) != 2 {
				t.Errorf("libvirt stored type %q, cpu %+v, %d interfaces", d.Type, d.CPU, len(d.Devices.Interfaces))
			}
		})
	}
}
