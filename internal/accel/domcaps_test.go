package accel

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"libvirt.org/go/libvirt"
)

// fakeCaps answers GetDomainCapabilities with xml or err, and records the
// domain type it was asked for.
type fakeCaps struct {
	xml   string
	err   error
	asked []string
}

func (f *fakeCaps) GetDomainCapabilities(emulatorbin, arch, machine, virttype string, flags uint32) (string, error) {
	f.asked = append(f.asked, virttype)
	return f.xml, f.err
}

var _ DomainCaps = (*libvirt.Connect)(nil) // the real libvirt connection is a DomainCaps

const kvmCaps = `<domainCapabilities><path>/usr/bin/qemu-system-x86_64</path><domain>kvm</domain>
<machine>pc-i440fx-7.2</machine><arch>x86_64</arch></domainCapabilities>`

// libvirtNoKVM is what libvirtd says for type='kvm' when its QEMU probe found
// no usable KVM (libvirt 9: VIR_ERR_CONFIG_UNSUPPORTED from the QEMU driver).
var libvirtNoKVM = libvirt.Error{Code: libvirt.ERR_CONFIG_UNSUPPORTED, Domain: libvirt.FROM_QEMU,
	Message: "unsupported configuration: KVM is not supported by '/usr/bin/qemu-system-x86_64' on this host"}

// TestDomainCaps: libvirt refusing type='kvm' is a named TCG reason with its
// fix (and --accel kvm refused), the test guest never runs; libvirt
// offering KVM lets the guest decide; a libvirtd that cannot answer is no
// reason either way. The device check comes first: a device that fails
// never reaches libvirt.
func TestDomainCaps(t *testing.T) {
	gone := libvirt.Error{Code: libvirt.ERR_SYSTEM_ERROR, Domain: libvirt.FROM_RPC, Message: "Cannot recv data: Connection reset by peer"}
	for _, tc := range []struct {
		name  string
		dev   DeviceCheck
		caps  fakeCaps
		want  string
		cause Cause
		runs  int
		asked int
	}{
		{"libvirt offers KVM", devOK, fakeCaps{xml: kvmCaps}, KVM, CauseWorks, 1, 1},
		{"libvirt refuses KVM", devOK, fakeCaps{err: libvirtNoKVM}, QEMU, CauseLibvirtNoKVM, 0, 1},
		{"libvirt answers for qemu", devOK, fakeCaps{xml: strings.Replace(kvmCaps, ">kvm<", ">qemu<", 1)}, QEMU, CauseLibvirtNoKVM, 0, 1},
		{"libvirtd gone", devOK, fakeCaps{err: gone}, KVM, CauseWorks, 1, 1},
		{"device first", DeviceCheck{CauseNoPermission, "/dev/kvm: permission denied"}, fakeCaps{xml: kvmCaps}, QEMU, CauseNoPermission, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			p := newFakeHost(t, "vmx").prober(t, tc.dev, runs, &n)
			p.Libvirt = &tc.caps
			got, err := p.Probe(context.Background(), WantAuto)
			if err != nil || got.Type != tc.want || got.Cause != tc.cause || n != tc.runs || len(tc.caps.asked) != tc.asked {
				t.Fatalf("Probe(auto) = %+v, %v, %d guest runs, libvirt asked %v; want %s, %s, %d runs, %d asks",
					got, err, n, tc.caps.asked, tc.want, tc.cause, tc.runs, tc.asked)
			}
			if tc.asked > 0 && (tc.caps.asked[0] != "kvm" || len(got.Steps) < 2 || got.Steps[0] != tc.dev.Detail) {
				t.Errorf("libvirt asked for %v, steps %q: want type kvm, after the device check", tc.caps.asked, got.Steps)
			}
			if tc.cause != CauseLibvirtNoKVM {
				return
			}
			if got.Fix != FixFor(CauseLibvirtNoKVM) || !strings.Contains(got.Fix, "restart libvirtd") ||
				!strings.Contains(got.Reason, "libvirt") || !strings.HasSuffix(got.Reason, "using TCG (software emulation, slower)") {
				t.Errorf("TCG choice %+v: want libvirt's answer as the reason and the fix for %s", got, tc.cause)
			}
			_, err = p.Probe(context.Background(), WantKVM)
			var ue *UnusableError
			if !errors.As(err, &ue) || ue.Cause != CauseLibvirtNoKVM || !strings.Contains(ue.Error(), "libvirt ") {
				t.Errorf("Probe(kvm) = %v, want an UnusableError with libvirt's message", err)
			}
		})
	}
}

// TestCachedStepsAreThisRuns: a cached answer shows the checks this run
// made (device, libvirt) and the test guest's steps from the cache, the same
// steps as the answer it was cached from; the cache holds only the guest's.
func TestCachedStepsAreThisRuns(t *testing.T) {
	n := 0
	p := newFakeHost(t, "").prober(t, devOK, hangs, &n)
	p.Libvirt = &fakeCaps{xml: kvmCaps}
	first, err1 := p.Probe(context.Background(), WantAuto)
	again, err2 := p.Probe(context.Background(), WantAuto)
	if err1 != nil || err2 != nil || n != 1 || !again.Cached {
		t.Fatalf("probes: %v, %v, %d guest runs, cached=%v; want one run, then the cache", err1, err2, n, again.Cached)
	}
	if len(first.Steps) != 4 || !slices.Equal(first.Steps, again.Steps) || !strings.HasPrefix(first.Steps[1], "libvirt offers domain type 'kvm'") {
		t.Errorf("steps %q, cached %q: want device, libvirt, CPU flags, guest, and the same from the cache", first.Steps, again.Steps)
	}
	b, err := os.ReadFile(p.Cache)
	if err != nil || strings.Contains(string(b), devOK.Detail) || strings.Contains(string(b), "libvirt offers") {
		t.Errorf("cache (%v) keeps this run's checks:\n%s", err, b)
	}
	// An answer cached before the libvirt check has the device's step too: shown once.
	if got := withSteps(first.Steps[:2], append([]string{devOK.Detail}, first.Steps[2:]...)); !slices.Equal(got, first.Steps) {
		t.Errorf("steps with an older cache's answer = %q, want %q", got, first.Steps)
	}
}
