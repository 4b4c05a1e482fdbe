package network

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// infoOf is network name as List reports it on f.
func infoOf(t *testing.T, f *fakeLibvirt, name string) Info {
	t.Helper()
	infos, err := List(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Name == name {
			return in
		}
	}
	t.Fatalf("List has no network %s: %+v", name, infos)
	return Info{}
}

// A lab's network carries the lab in its mark, and List says so; a mark
// without the attribute (every network before labs) is still vmnet's,
// with no lab.
func TestLabMark(t *testing.T) {
	s := natSpec
	s.Lab = "office"
	n := mustBuild(t, s)
	if !Owned(n) || labOf(n) != "office" || !strings.Contains(n.Metadata.XML, ` lab="office"`) {
		t.Errorf("Build(lab office): owned %v, lab %q, metadata %s", Owned(n), labOf(n), n.Metadata.XML)
	}
	if n := mustBuild(t, natSpec); strings.Contains(n.Metadata.XML, "lab") || labOf(n) != "" {
		t.Errorf("Build(no lab): metadata %s, want no lab attribute", n.Metadata.XML)
	}
	for _, old := range []string{
		`<network xmlns="https://vmnet.dev/xmlns/1" owner="vmnet"></network>`,
		`<vmnet:owner xmlns:vmnet="https://vmnet.dev/xmlns/1">vmnet</vmnet:owner>`,
	} {
		n := &libvirtxml.Network{Name: "x", Metadata: &libvirtxml.NetworkMetadata{XML: old}}
		if !Owned(n) || labOf(n) != "" {
			t.Errorf("%s: owned %v, lab %q; want owned, no lab", old, Owned(n), labOf(n))
		}
	}
	f := newFake()
	fakeEnsure(t, f, s)
	if in := infoOf(t, f, "n"); in.Owner != "vmnet" || in.Lab != "office" {
		t.Errorf("List: %+v, want vmnet's, lab office", in)
	}
}

// A network that existed before the lab is not the lab's: Ensure with a
// lab tag neither retags it when it matches, nor when it converges it
// (redefinition), and says so in a note. A lab's network keeps its lab.
func TestEnsureDoesNotRetag(t *testing.T) {
	for _, tc := range []struct{ before, lab string }{{"", "office"}, {"office", "other"}, {"office", ""}} {
		f := newFake()
		first := natSpec
		first.Lab = tc.before
		fakeEnsure(t, f, first)
		again := natSpec
		again.Lab = tc.lab
		res, err := Ensure(context.Background(), f, again, noRoutes{})
		if err != nil || res.Outcome != Unchanged {
			t.Fatalf("%+v: Ensure again: %+v, %v; want unchanged", tc, res, err)
		}
		if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "stays so") {
			t.Errorf("%+v: notes %q, want one that says the network keeps its tag", tc, res.Notes)
		}
		if in := infoOf(t, f, "n"); in.Lab != tc.before {
			t.Errorf("%+v: after Ensure with the same definition, lab %q", tc, in.Lab)
		}
		moved := again
		moved.CIDR = netip.MustParsePrefix("203.0.113.0/24")
		if res, err := Ensure(context.Background(), f, moved, noRoutes{}); err != nil || res.Outcome != Changed {
			t.Fatalf("%+v: Ensure with another subnet: %+v, %v; want changed", tc, res, err)
		}
		if in := infoOf(t, f, "n"); in.Lab != tc.before || in.CIDR != "203.0.113.0/24" {
			t.Errorf("%+v: after a redefinition: %+v, want lab %q kept", tc, in, tc.before)
		}
	}
}

func TestValidateLab(t *testing.T) {
	s := natSpec
	s.Lab = "Office Lab"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "lab") {
		t.Errorf("Validate(lab %q) = %v, want an error naming lab", s.Lab, err)
	}
}
