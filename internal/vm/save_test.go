package vm

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
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
	// One guest command writes it whole beside the secret file, from its
	// standard input (never an argument), then copies it over in place.
	copyIn := slices.IndexFunc(d.agent, func(s string) bool {
		return strings.Contains(s, rotateScript) && strings.HasSuffix(s, "/etc/vmnet/secrets/db-password.vmnet-next /etc/vmnet/secrets/db-password")
	})
	if len(d.inputs) != 1 || !bytes.Equal(d.inputs[0], after) {
		t.Errorf("guest commands' standard input %q, want the host's new secret once", d.inputs)
	}
	if slices.ContainsFunc(d.agent, func(s string) bool { return strings.Contains(s, string(after)) }) {
		t.Errorf("the new secret is in a guest command line: %q", d.agent)
	}
	if fi, err := os.Stat(secretFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host secret file: %v, %v; want mode 0600", fi, err)
	}
	clock := slices.Index(d.agent, "guest-set-time")
	cmd := slices.IndexFunc(d.agent, func(s string) bool { return strings.Contains(s, "take-new-password") })
	if clock < 0 || copyIn < clock || cmd < copyIn {
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

// TestRotateScript runs the guest's half of a secret's rotation with a real
// shell: the new text replaces the file's in place (same inode, same mode),
// the copy beside it is gone, and a failed copy leaves no copy behind.
func TestRotateScript(t *testing.T) {
	dir := t.TempDir()
	file, next := filepath.Join(dir, "db-password"), filepath.Join(dir, "db-password.vmnet-next")
	if err := os.WriteFile(file, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(file)
	run := func(target string) error {
		cmd := exec.Command("/bin/sh", "-c", rotateScript, "sh", next, target)
		cmd.Stdin = strings.NewReader("new-secret")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run(file); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(file)
	if got, _ := os.ReadFile(file); string(got) != "new-secret" || !os.SameFile(before, after) || after.Mode().Perm() != 0o640 {
		t.Errorf("after the rotation: %q, same file %v, mode %v; want the new text in the same 0640 file", got, os.SameFile(before, after), after.Mode().Perm())
	}
	if _, err := os.Stat(next); !os.IsNotExist(err) {
		t.Errorf("the copy beside it is left: %v", err)
	}
	if err := run(filepath.Join(dir, "no-such-dir", "f")); err == nil {
		t.Error("a copy into a missing directory succeeded")
	}
	if _, err := os.Stat(next); !os.IsNotExist(err) {
		t.Errorf("a failed rotation left the copy: %v", err)
	}
	if got, _ := os.ReadFile(file); string(got) != "new-secret" {
		t.Errorf("a failed rotation elsewhere changed the file: %q", got)
	}
}
