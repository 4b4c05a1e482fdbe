package image

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"vmnet/internal/testutil"
)

// The capstone guest's vmnet-net, run by the host's sh (dash, as in the
// guest) on a fake command line into a scratch root: the networkd files and
// the hostname it writes are golden; malformed words leave their NIC
// unconfigured and say why on stderr.
func TestVmnetNetScript(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	tests := []struct {
		name, cmdline, stderrHas string
	}{
		{"static and dhcp", "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet vmnet.hostname=web1 " +
			"vmnet.ip.1=192.0.2.10/24,gw=192.0.2.1,dns=192.0.2.53 vmnet.ip.3=198.51.100.7/30", ""},
		{"nothing given", "root=/dev/vda rw console=ttyS0 quiet", ""},
		{"malformed", "vmnet.ip.0=192.0.2.300/24 vmnet.ip.x=192.0.2.1/24 vmnet.ip.2=192.0.2.2/24,mtu=9000 " +
			"vmnet.ip.4=192.0.2.4 vmnet.ip.5=192.0.2.5/33 vmnet.ip.6=192.0.2.6/24,gw=gateway vmnet.hostname=bad_name*",
			"vmnet.ip.0=192.0.2.300/24: 192.0.2.300/24 is not an IPv4 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			cmdline := filepath.Join(t.TempDir(), "cmdline")
			os.WriteFile(cmdline, []byte(tt.cmdline+"\n"), 0o644)
			// A stale file from the last boot is replaced.
			os.MkdirAll(filepath.Join(root, "run/systemd/network"), 0o755)
			os.WriteFile(filepath.Join(root, "run/systemd/network/10-vmnet-eth7.network"), []byte("old"), 0o644)
			cmd := exec.Command(sh, "../../images/capstone/vmnet-net", "--root", root, "--cmdline", cmdline)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("vmnet-net: %v\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderrHas) || (tt.stderrHas == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderrHas)
			}
			testutil.Golden(t, filepath.Join("testdata", "vmnet-net", strings.ReplaceAll(tt.name, " ", "-")+".golden"), []byte(renderTree(t, root)), *update)
		})
	}
}

// renderTree prints every file under root with its content, sorted.
func renderTree(t *testing.T, root string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	})
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		b.WriteString("== /" + rel + "\n")
		b.Write(data)
	}
	return b.String()
}
