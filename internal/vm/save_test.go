package vm

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vmnet/internal/vmspec"
)

// savedLab is a stepLab whose VM has a secret file and a restore command,
// is up, and was saved.
func savedLab(t *testing.T) *stepLab {
	t.Helper()
	l := newStepLab(t)
	l.spec.Provision.Files = []vmspec.File{{Path: "/etc/vmnet/secrets/db-password", Secret: "db-password", Mode: 0o600}}
	l.spec.Provision.Restore = []string{"take-new-password"}
	if _, err := l.up(t); err != nil {
		t.Fatalf("up: %v", err)
	}
	res, err := Save(context.Background(), l.e, "web")
	if err != nil || res.Outcome != "saved" {
		t.Fatalf("save: %+v, %v", res, err)
	}
	return l
}

// TestSaveRestore: save stops the VM with a save image (a second save
// changes nothing); restore starts it from that image, sets its clock,
// gives its secret a new value on the host and in the guest, and runs the
// restore commands after that.
func TestSaveRestore(t *testing.T) {
	l := savedLab(t)
	d := l.f.doms["web"]
	if d.active || !d.saved {
		t.Fatalf("after save: active %v, saved %v; want stopped with a save image", d.active, d.saved)
	}
	if res, err := Save(context.Background(), l.e, "web"); err != nil || res.Outcome != "unchanged" {
		t.Errorf("second save: %+v, %v; want unchanged", res, err)
	}
	secretFile := filepath.Join(l.e.StateDir, "vms", "web", "secrets", "db-password")
	before, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	d.agent = nil
	res, err := Restore(context.Background(), l.e, l.spec)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Outcome != "restored" || d.restored != 1 || !d.active {
		t.Errorf("restore: outcome %q, restored %d times, active %v", res.Outcome, d.restored, d.active)
	}
	after, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) || len(after) < 32 {
		t.Errorf("secret after restore %q, before %q: want a new one", after, before)
	}
	// Written whole beside the secret file, then copied over it in place.
	if got := d.files["/etc/vmnet/secrets/.vmnet-db-password.vmnet-next.tmp"]; !bytes.Equal(got, after) {
		t.Errorf("guest's new secret file %q, want the host's new secret (files written: %q)", got, d.files)
	}
	copyIn := slices.IndexFunc(d.agent, func(s string) bool {
		return strings.Contains(s, `cat "$1" >"$2"`) && strings.HasSuffix(s, "/etc/vmnet/secrets/db-password.vmnet-next /etc/vmnet/secrets/db-password")
	})
	if fi, err := os.Stat(secretFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host secret file: %v, %v; want mode 0600", fi, err)
	}
	clock := slices.Index(d.agent, "guest-set-time")
	write := slices.Index(d.agent, "guest-file-open")
	cmd := slices.IndexFunc(d.agent, func(s string) bool { return strings.Contains(s, "take-new-password") })
	if clock < 0 || write < clock || copyIn < write || cmd < copyIn {
		t.Errorf("agent commands %q: want the clock set, then the secret written and copied in place, then the restore command", d.agent)
	}
}

// TestRestoreRefuses: a VM that is running, missing, or was saved from
// another spec is refused, and nothing changes.
func TestRestoreRefuses(t *testing.T) {
	l := savedLab(t)
	d := l.f.doms["web"]
	changed := l.spec
	changed.NICs = []vmspec.NIC{{Network: "nat0"}, {Network: "nat0", Address: netip.MustParsePrefix("198.51.100.6/24")}}
	if _, err := Restore(context.Background(), l.e, changed); err == nil || !strings.Contains(err.Error(), "saved from another spec") {
		t.Errorf("restore with another address: %v; want refused as saved from another spec", err)
	}
	if d.active || !d.saved || d.restored != 0 {
		t.Errorf("after the refusal: active %v, saved %v, restored %d; want it as saved", d.active, d.saved, d.restored)
	}
	if _, err := Restore(context.Background(), l.e, l.spec); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(context.Background(), l.e, l.spec); err == nil || !strings.Contains(err.Error(), "is running") {
		t.Errorf("restore of a running VM: %v; want refused", err)
	}
	other := l.spec
	other.Name = "nobody"
	if _, err := Restore(context.Background(), l.e, other); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("restore of a missing VM: %v; want refused", err)
	}
	if _, err := Save(context.Background(), l.e, "nobody"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("save of a missing VM: %v; want refused", err)
	}
}

// TestUpOfSavedVMRefreshes: a plain up of a saved VM restores it (libvirt
// starts it from the save image) and refreshes it as --from-save does: a
// new secret, the restore commands run.
func TestUpOfSavedVMRefreshes(t *testing.T) {
	l := savedLab(t)
	d := l.f.doms["web"]
	secretFile := filepath.Join(l.e.StateDir, "vms", "web", "secrets", "db-password")
	before, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.up(t)
	if err != nil {
		t.Fatalf("up of a saved VM: %v", err)
	}
	after, _ := os.ReadFile(secretFile)
	if res.Outcome != "restored" || d.restored != 1 || bytes.Equal(before, after) {
		t.Errorf("up of a saved VM: outcome %q, restored %d, secret changed %v; want restored with a new secret",
			res.Outcome, d.restored, !bytes.Equal(before, after))
	}
	if !slices.ContainsFunc(d.agent, func(s string) bool { return strings.Contains(s, "take-new-password") }) {
		t.Errorf("agent commands %q: the restore command did not run", d.agent)
	}
}
