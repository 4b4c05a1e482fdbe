package bridge

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// aliasOf is the link's alias as the kernel has it.
func aliasOf(t *testing.T, k Kernel, name string) string {
	t.Helper()
	l, err := k.LinkByName(name)
	must(t, err)
	return l.Attrs().Alias
}

// A bridge a lab creates carries the lab in its alias, and Inspect and
// List say so. Ensure of a bridge that exists never changes its tag: not
// to another lab, not from none to a lab, not from a lab to none.
func TestEnsureLabTag(t *testing.T) {
	k := newNetns(t)
	ctx := context.Background()
	opt := Options{HostID: "t", StateDir: t.TempDir()}
	_, err := Ensure(ctx, k, Spec{Name: "br0", Lab: "office"}, opt)
	must(t, err)
	if a := aliasOf(t, k, "br0"); a != "vmnet-managed lab=office" {
		t.Fatalf("alias = %q, want the lab in it", a)
	}
	st, err := Inspect(k, "br0")
	must(t, err)
	if !st.Managed || st.Lab != "office" {
		t.Fatalf("Inspect: %+v, want managed, lab office", st)
	}
	for _, lab := range []string{"office", "other", ""} {
		res, err := Ensure(ctx, k, Spec{Name: "br0", Lab: lab}, opt)
		must(t, err)
		if !res.Unchanged() || aliasOf(t, k, "br0") != "vmnet-managed lab=office" {
			t.Errorf("Ensure with lab %q: changes %q, alias %q; want lab office kept", lab, res.Changes, aliasOf(t, k, "br0"))
		}
		if noted := strings.Contains(strings.Join(res.Notes, "\n"), "belongs to lab office and stays so"); noted != (lab != "office") {
			t.Errorf("Ensure with lab %q: notes %q", lab, res.Notes)
		}
	}
	_, err = Ensure(ctx, k, Spec{Name: "br1"}, opt)
	must(t, err)
	res, err := Ensure(ctx, k, Spec{Name: "br1", Lab: "office"}, opt)
	must(t, err)
	if !res.Unchanged() || aliasOf(t, k, "br1") != aliasPrefix || len(res.Notes) != 1 {
		t.Errorf("Ensure of an untagged bridge with a lab: changes %q, notes %q, alias %q; want it untouched", res.Changes, res.Notes, aliasOf(t, k, "br1"))
	}
	list, err := List(k)
	must(t, err)
	if len(list) != 2 || list[0].Lab != "office" || list[1].Lab != "" {
		t.Errorf("List: %+v, want br0 of lab office and br1 of none", list)
	}
}

// A bridge an older vmnet made (alias without tags, or the uplink alone)
// is still vmnet's, of no lab, and Ensure leaves its alias alone.
func TestOldAliasStillOwned(t *testing.T) {
	k := newNetns(t)
	must(t, k.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}))
	l, err := k.LinkByName("br0")
	must(t, err)
	must(t, k.LinkSetAlias(l, aliasPrefix))
	st, err := Inspect(k, "br0")
	must(t, err)
	if !st.Managed || st.Lab != "" || st.Uplink != "" {
		t.Fatalf("Inspect: %+v, want managed, no lab, no uplink", st)
	}
	_, err = Ensure(context.Background(), k, Spec{Name: "br0", Lab: "office"}, Options{HostID: "t", StateDir: t.TempDir()})
	must(t, err)
	if a := aliasOf(t, k, "br0"); a != aliasPrefix {
		t.Errorf("alias = %q after Ensure with a lab, want %q", a, aliasPrefix)
	}
}

// A lab's uplink bridge records both tags, and a second Ensure (which
// rewrites no alias) and the release keep to them.
func TestUplinkTakeoverWithLab(t *testing.T) {
	l := newLab(t, false)
	ctx := context.Background()
	before := snap(t, l.host)
	_, err := Ensure(ctx, l.host, Spec{Name: "br0", Uplink: "eth0", Lab: "office", ConfirmTimeout: 10 * time.Second}, l.opt())
	must(t, err)
	st, err := Inspect(l.host, "br0")
	must(t, err)
	if st.Uplink != "eth0" || st.Lab != "office" || aliasOf(t, l.host, "br0") != "vmnet-managed uplink=eth0 lab=office" {
		t.Fatalf("after takeover: %+v, alias %q", st, aliasOf(t, l.host, "br0"))
	}
	res, err := Ensure(ctx, l.host, Spec{Name: "br0", Uplink: "eth0", Lab: "office"}, l.opt())
	must(t, err)
	if !res.Unchanged() {
		t.Fatalf("second Ensure changed %q", res.Changes)
	}
	_, err = Delete(ctx, l.host, "br0", l.opt())
	must(t, err)
	equalSnap(t, before, snap(t, l.host))
}
