package vm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vmDir makes STATEDIR/vms/NAME with the files an up of a cloud-image VM
// leaves, plus extra (name → content), and returns STATEDIR and the directory.
func vmDir(t *testing.T, name string, extra map[string]string) (string, string) {
	t.Helper()
	state := filepath.Join(t.TempDir(), "state")
	dir := filepath.Join(state, "vms", name)
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"overlay.qcow2": "q", "disk1.qcow2": "d", "seed.iso": "s", ".seed.iso.123456": "partial",
		"console.log": "boot", "secrets/db-password": "pw", "secrets/db-password.tmp": "pw", "vmnet.json.tmp": "{",
		".seed.iso5577006791947779410": "partial", ".vmnet.json8674665223082153551": "{",
	}
	for k, v := range extra {
		files[k] = v
	}
	for p, content := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return state, dir
}

func leftIn(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// Without a usable record (none, or torn by a crash), down still removes
// everything vmnet made in STATEDIR/vms/NAME: secrets and directory included.
func TestRemoveVMDirWithoutRecord(t *testing.T) {
	for _, tc := range []struct{ name, record string }{
		{"missing", ""},
		{"torn", `{"owner": "vmn`},
		{"foreign owner", `{"owner": "someone", "name": "web"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]string{}
			if tc.record != "" {
				extra["vmnet.json"] = tc.record
			}
			state, dir := vmDir(t, "web", extra)
			_, ok, err := readRecord(dir)
			if err != nil || ok {
				t.Fatalf("readRecord: ok %v, err %v; want a record that is not usable", ok, err)
			}
			res := &DownResult{Name: "web", Outcome: "absent"}
			if err := removeVMDir(res, state, dir, dir, nil, ok); err != nil {
				t.Fatal(err)
			}
			if left := leftIn(t, filepath.Dir(state)); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			if res.Outcome != "removed" || !slices.Contains(res.Changes, "remove the VM's secrets") || !slices.Contains(res.Changes, "remove "+dir) {
				t.Errorf("result %+v does not say what was removed", res)
			}
		})
	}
}

// A file vmnet does not name stays, and so does the directory, with an
// error that names the file; vmnet's own files are gone all the same.
func TestRemoveVMDirKeepsForeignFiles(t *testing.T) {
	state, dir := vmDir(t, "web", map[string]string{"notes.txt": "mine"})
	res := &DownResult{Name: "web", Outcome: "absent"}
	err := removeVMDir(res, state, dir, dir, nil, false)
	if err == nil || !strings.Contains(err.Error(), "notes.txt") {
		t.Fatalf("err = %v, want one that names notes.txt", err)
	}
	if left := leftIn(t, dir); !slices.Equal(left, []string{"notes.txt"}) {
		t.Errorf("left in %s: %v, want only notes.txt", dir, left)
	}
}

// A directory elsewhere (the domain's metadata names it) without a record
// is not known to be vmnet's: only the files the metadata lists go.
func TestRemoveVMDirElsewhereWithoutRecord(t *testing.T) {
	_, dir := vmDir(t, "web", nil)
	home := filepath.Join(t.TempDir(), "vms", "web")
	res := &DownResult{Name: "web", Outcome: "absent"}
	if err := removeVMDir(res, filepath.Dir(filepath.Dir(home)), home, dir, []string{filepath.Join(dir, "console.log"), "/etc/passwd-not-in-dir"}, false); err != nil {
		t.Fatal(err)
	}
	left := leftIn(t, dir)
	if slices.Contains(left, "console.log") || !slices.Contains(left, "overlay.qcow2") || !slices.Contains(left, "secrets") {
		t.Errorf("left in %s: %v; want all but console.log", dir, left)
	}
}

// libvirt's log of the domain and its rotations go; other domains' stay.
func TestRemoveQemuLog(t *testing.T) {
	logs := t.TempDir()
	for _, f := range []string{"web.log", "web.log.1", "web.log.2", "web2.log", "webx.log.1", "other.log"} {
		if err := os.WriteFile(filepath.Join(logs, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res := &DownResult{}
	if err := removeQemuLog(res, logs, "web"); err != nil {
		t.Fatal(err)
	}
	if left := leftIn(t, logs); !slices.Equal(left, []string{"other.log", "web2.log", "webx.log.1"}) {
		t.Errorf("left: %v", left)
	}
	if len(res.Changes) != 3 {
		t.Errorf("changes %v, want 3 removals", res.Changes)
	}
}

func TestNetworkNICs(t *testing.T) {
	x := `<domain type="qemu"><name>web</name><devices>
<interface type="network"><mac address="52:54:00:AA:00:01"/><source network="nat0"/></interface>
<interface type="bridge"><mac address="52:54:00:aa:00:02"/><source bridge="br0"/></interface>
</devices></domain>`
	got := networkNICs(x)
	if len(got) != 1 || got[0].Network != "nat0" || got[0].MAC != "52:54:00:aa:00:01" {
		t.Errorf("networkNICs = %+v", got)
	}
}
