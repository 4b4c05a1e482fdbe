package persist

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func renderT(t *testing.T, b Backend, br Bridge) []File {
	t.Helper()
	files, err := Render(b, br)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

func plainBridge(t *testing.T, name string) Bridge {
	return Bridge{Name: name, MAC: mustMAC(t, "52:54:00:11:22:33"),
		Addresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
}

func uplinkBridge(t *testing.T, name string) Bridge {
	br := plainBridge(t, name)
	br.Uplink = "eth0"
	return br
}

func readBack(t *testing.T, root, p string) (string, fs.FileMode) {
	t.Helper()
	full := filepath.Join(root, p)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fi.Mode().Perm()
}

// TestWriteModesUnderUmask077 checks that modes come from File.Mode and the
// 0755 directory rule, not from the umask: networkd runs as
// systemd-network and must still read its files when vmnet ran under 077.
// It changes the process umask, so it must not run in parallel.
func TestWriteModesUnderUmask077(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	root := t.TempDir()
	wantMode := map[Backend]fs.FileMode{Networkd: 0o644, NetworkManager: 0o600, Netplan: 0o600, Ifupdown: 0o644}
	for _, b := range renderBackends() {
		files := renderT(t, b, uplinkBridge(t, "br-"+string(b)[:4]))
		changed, err := Write(root, files)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(paths(files), changed); diff != "" {
			t.Errorf("%s: changed paths on first write (-want +got):\n%s", b, diff)
		}
		for _, f := range files {
			content, mode := readBack(t, root, f.Path)
			if content != string(f.Content) {
				t.Errorf("%s: content differs from what was rendered", f.Path)
			}
			if mode != wantMode[b] || mode != fs.FileMode(f.Mode) {
				t.Errorf("%s: mode %#o; want %#o", f.Path, mode, wantMode[b])
			}
		}
	}
	for _, dir := range []string{"/etc", "/etc/systemd", networkdDir, nmDir, netplanDir, "/etc/network", ifupdownDir} {
		fi, err := os.Stat(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("created directory %s has mode %#o; want 0755", dir, fi.Mode().Perm())
		}
	}
}

func TestWriteIdempotent(t *testing.T) {
	root := t.TempDir()
	files := renderT(t, Networkd, uplinkBridge(t, "br0"))
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	changed, err := Write(root, files)
	if err != nil || len(changed) != 0 {
		t.Fatalf("second identical Write changed %v, err %v; want nothing", changed, err)
	}

	// A mode changed by hand is put back, and reported.
	full := filepath.Join(root, files[1].Path)
	if err := os.Chmod(full, 0o600); err != nil {
		t.Fatal(err)
	}
	changed, err = Write(root, files)
	if err != nil || !slices.Equal(changed, []string{files[1].Path}) {
		t.Fatalf("Write after chmod changed %v, err %v; want only %s", changed, err, files[1].Path)
	}
	if _, mode := readBack(t, root, files[1].Path); mode != 0o644 {
		t.Errorf("mode not restored: %#o", mode)
	}

	// New content for one file changes only that one.
	br := uplinkBridge(t, "br0")
	br.MTU = 9000
	next := renderT(t, Networkd, br)
	changed, err = Write(root, next)
	if err != nil || len(changed) != 3 {
		t.Fatalf("Write with a new MTU changed %v, err %v; want all three files", changed, err)
	}
}

// TestWriteAtomic checks that a changed file is replaced, not rewritten in
// place: a reader that has the old file open keeps seeing the old content,
// and no temporary file is left behind.
func TestWriteAtomic(t *testing.T) {
	root := t.TempDir()
	files := renderT(t, Netplan, plainBridge(t, "br0"))
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(root, files[0].Path)
	reader, err := os.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	before, _ := reader.Stat()

	br := plainBridge(t, "br0")
	br.STP = true
	if _, err := Write(root, renderT(t, Netplan, br)); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(full)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Error("the file was rewritten in place; want a new file renamed over it")
	}
	old, err := fs.ReadFile(os.DirFS(filepath.Dir(full)), filepath.Base(full))
	if err != nil || !strings.Contains(string(old), "stp: true") {
		t.Errorf("new content not in place: %q, %v", old, err)
	}
	buf := make([]byte, len(files[0].Content))
	if _, err := reader.ReadAt(buf, 0); err != nil || string(buf) != string(files[0].Content) {
		t.Errorf("an open reader saw the file change under it: %q, %v", buf, err)
	}
	entries, err := os.ReadDir(filepath.Dir(full))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestWriteRefusesForeignFiles(t *testing.T) {
	files := slices.Concat(renderT(t, Networkd, plainBridge(t, "br0")), renderT(t, Netplan, plainBridge(t, "br0")))
	target := files[len(files)-1].Path // the netplan file, written last
	tests := []struct {
		name    string
		setup   func(t *testing.T, full string)
		content string
	}{
		{"no header", func(t *testing.T, full string) {
			writeFile(t, full, "network:\n  version: 2\n# vmnet-managed: bridge=br0 -- quoted, not a header\n", 0o640)
		}, ""},
		{"another bridge's file", func(t *testing.T, full string) {
			writeFile(t, full, header("br1")+"network: {}\n", 0o600)
		}, ""},
		{"a symlink", func(t *testing.T, full string) {
			if err := os.Symlink("/etc/hostname", full); err != nil {
				t.Fatal(err)
			}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			full := filepath.Join(root, target)
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, full)
			before, _ := os.Lstat(full)
			beforeContent, _ := os.Readlink(full)
			if beforeContent == "" {
				beforeContent, _ = readBack(t, root, target)
			}

			if err := Check(root, "br0", files); !errors.Is(err, ErrForeignFile) {
				t.Errorf("Check = %v; want ErrForeignFile", err)
			}
			changed, err := Write(root, files)
			if !errors.Is(err, ErrForeignFile) || !strings.Contains(err.Error(), full) ||
				!strings.Contains(err.Error(), "vmnet does not overwrite files it did not write") {
				t.Fatalf("Write = %v, %v; want ErrForeignFile naming %s", changed, err, full)
			}
			if _, _, err := Sync(root, "br0", files); !errors.Is(err, ErrForeignFile) {
				t.Errorf("Sync = %v; want ErrForeignFile", err)
			}
			after, _ := os.Lstat(full)
			afterContent, _ := os.Readlink(full)
			if afterContent == "" {
				afterContent, _ = readBack(t, root, target)
			}
			if !os.SameFile(before, after) || before.Mode() != after.Mode() || beforeContent != afterContent {
				t.Error("the foreign file was touched")
			}
			if _, err := os.Stat(filepath.Join(root, networkdDir)); !errors.Is(err, fs.ErrNotExist) {
				t.Error("Write wrote other files before refusing")
			}
		})
	}
}

func writeFile(t *testing.T, full, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(full, mode); err != nil {
		t.Fatal(err)
	}
}

func TestWriteRejectsBadFiles(t *testing.T) {
	good := renderT(t, Networkd, plainBridge(t, "br0"))[0]
	tests := []struct {
		name string
		f    File
	}{
		{"relative path", File{Path: "etc/systemd/network/x.network", Mode: 0o644, Content: good.Content}},
		{"unclean path", File{Path: "/etc/systemd/network/../../passwd", Mode: 0o644, Content: good.Content}},
		{"outside the backends' dirs", File{Path: "/etc/passwd", Mode: 0o644, Content: good.Content}},
		{"hidden name", File{Path: "/etc/netplan/.x.yaml", Mode: 0o600, Content: good.Content}},
		{"no header", File{Path: good.Path, Mode: 0o644, Content: []byte("[NetDev]\n")}},
		{"setuid bit", File{Path: good.Path, Mode: 0o4755, Content: good.Content}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if _, err := Write(root, []File{good, tt.f}); err == nil {
				t.Fatal("Write accepted it")
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Error("Write wrote something before refusing")
			}
		})
	}
	if _, err := Write(t.TempDir(), []File{good, good}); err == nil {
		t.Error("Write accepted the same path twice")
	}
	if err := Check(t.TempDir(), "br1", []File{good}); err == nil {
		t.Error("Check accepted br0's file for br1")
	}
}

func TestRemoveAndFind(t *testing.T) {
	root := t.TempDir()
	for _, b := range renderBackends() {
		for _, name := range []string{"br0", "br1"} {
			if _, err := Write(root, renderT(t, b, uplinkBridge(t, name))); err != nil {
				t.Fatal(err)
			}
		}
	}
	foreign := map[string]string{
		path.Join(networkdDir, "20-wired.network"):          "[Match]\nName=eth0\n",
		path.Join(netplanDir, "50-cloud-init.yaml"):         "# vmnet-managed: bridge=br0\n"[2:] + "network: {}\n",
		path.Join(ifupdownDir, "vmnet-br0.dpkg-old"):        "iface x inet manual\n# vmnet-managed: bridge=br0 --\n",
		path.Join(nmDir, "Wired connection 1.nmconnection"): "[connection]\nid=Wired connection 1\n",
	}
	for p, c := range foreign {
		writeFile(t, filepath.Join(root, p), c, 0o600)
	}
	// A symlink with the header's target must not lead Remove astray.
	outside := filepath.Join(t.TempDir(), "elsewhere")
	writeFile(t, outside, header("br0"), 0o644)
	if err := os.Symlink(outside, filepath.Join(root, networkdDir, "10-vmnet-br0-link.network")); err != nil {
		t.Fatal(err)
	}

	found, err := Find(root, "br0")
	if err != nil {
		t.Fatal(err)
	}
	want := []Found{
		{Networkd, "/etc/systemd/network/10-vmnet-br0-uplink-eth0.network"},
		{Networkd, "/etc/systemd/network/10-vmnet-br0.netdev"},
		{Networkd, "/etc/systemd/network/10-vmnet-br0.network"},
		{NetworkManager, "/etc/NetworkManager/system-connections/vmnet-br0-port-eth0.nmconnection"},
		{NetworkManager, "/etc/NetworkManager/system-connections/vmnet-br0.nmconnection"},
		{Netplan, "/etc/netplan/60-vmnet-br0.yaml"},
		{Ifupdown, "/etc/network/interfaces.d/vmnet-br0"},
	}
	if diff := cmp.Diff(want, found); diff != "" {
		t.Errorf("Find(br0) (-want +got):\n%s", diff)
	}

	removed, err := Remove(root, "br0")
	if err != nil {
		t.Fatal(err)
	}
	var wantPaths []string
	for _, f := range want {
		wantPaths = append(wantPaths, f.Path)
	}
	if diff := cmp.Diff(wantPaths, removed); diff != "" {
		t.Errorf("Remove(br0) (-want +got):\n%s", diff)
	}
	for p, c := range foreign {
		if got, _ := readBack(t, root, p); got != c {
			t.Errorf("foreign file %s changed", p)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the symlink's target was removed: %v", err)
	}
	if left, _ := Find(root, "br1"); len(left) != 7 {
		t.Errorf("br1's files after removing br0: %v; want all 7", left)
	}
	if removed, err := Remove(root, "br0"); err != nil || len(removed) != 0 {
		t.Errorf("second Remove = %v, %v; want nothing, no error", removed, err)
	}
	if removed, err := Remove(t.TempDir(), "br0"); err != nil || len(removed) != 0 {
		t.Errorf("Remove on an empty root = %v, %v", removed, err)
	}
	if _, err := Remove(root, "../x"); err == nil {
		t.Error("Remove accepted a bad bridge name")
	}
}

func TestSyncRemovesStaleFiles(t *testing.T) {
	root := t.TempDir()
	withUplink := renderT(t, Networkd, uplinkBridge(t, "br0"))
	if _, _, err := Sync(root, "br0", withUplink); err != nil {
		t.Fatal(err)
	}
	other := renderT(t, Networkd, uplinkBridge(t, "br1"))
	if _, _, err := Sync(root, "br1", other); err != nil {
		t.Fatal(err)
	}

	// Without the uplink, the uplink's .network goes.
	lab := renderT(t, Networkd, plainBridge(t, "br0"))
	changed, removed, err := Sync(root, "br0", lab)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/etc/systemd/network/10-vmnet-br0-uplink-eth0.network"}, removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/etc/systemd/network/10-vmnet-br0.network"}, changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}

	// Another backend replaces all of them.
	nm := renderT(t, NetworkManager, plainBridge(t, "br0"))
	changed, removed, err = Sync(root, "br0", nm)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(paths(nm), changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(paths(lab), removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if found, _ := Find(root, "br1"); len(found) != len(other) {
		t.Errorf("another bridge's files were touched: %v", found)
	}

	// Nothing to do is nothing done.
	changed, removed, err = Sync(root, "br0", nm)
	if err != nil || len(changed)+len(removed) != 0 {
		t.Errorf("repeated Sync = %v, %v, %v; want nothing", changed, removed, err)
	}
	if _, _, err := Sync(root, "br0", other); err == nil {
		t.Error("Sync accepted br1's files for br0")
	}
}

func TestParseBackend(t *testing.T) {
	for in, want := range map[string]Backend{
		"auto": Auto, "none": None, "networkd": Networkd, "systemd-networkd": Networkd,
		"NetworkManager": NetworkManager, "nm": NetworkManager, "netplan": Netplan, " ifupdown ": Ifupdown,
	} {
		if got, err := ParseBackend(in); err != nil || got != want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, b := range Backends() {
		if got, err := ParseBackend(string(b)); err != nil || got != b {
			t.Errorf("ParseBackend(%q) = %q, %v", b, got, err)
		}
	}
	_, err := ParseBackend("wicked")
	if err == nil || !strings.Contains(err.Error(), `"wicked"`) ||
		!strings.Contains(err.Error(), "auto, none, networkd, networkmanager, netplan, ifupdown") {
		t.Errorf("ParseBackend(wicked) error = %v; want one listing the valid values", err)
	}
}
