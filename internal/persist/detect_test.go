package persist

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeRoot builds a fake system root. A value starting with "-> " makes a
// symlink to the rest; a key ending in "/" makes a directory.
func makeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetect(t *testing.T) {
	const (
		netplanBin = "/usr/sbin/netplan"
		ifupBin    = "/sbin/ifup"
		debianIfs  = "# interfaces(5) file used by ifup(8) and ifdown(8)\n" +
			"source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n"
		nmWants = "/etc/systemd/system/multi-user.target.wants/NetworkManager.service"
		ndWants = "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
	)
	vmnetYAML := header("br0") + "network:\n  version: 2\n"
	tests := []struct {
		name   string
		files  map[string]string
		want   Backend // "" means ErrNotDetected
		reason string  // a substring of the reason
	}{
		{name: "empty root", files: map[string]string{}},
		{
			name: "netplan with cloud-init file",
			files: map[string]string{
				"/etc/netplan/50-cloud-init.yaml": "network: {version: 2}\n", netplanBin: "",
				nmWants: "-> /lib/systemd/system/NetworkManager.service",
			},
			want: Netplan, reason: "netplan: /etc/netplan/50-cloud-init.yaml exists and /usr/sbin/netplan is installed",
		},
		{
			name: "netplan generator only",
			files: map[string]string{
				"/etc/netplan/01-netcfg.yaml": "network: {version: 2}\n", "/lib/systemd/system-generators/netplan": "",
			},
			want: Netplan, reason: "/lib/systemd/system-generators/netplan",
		},
		{
			name: "netplan yaml left after netplan was removed",
			files: map[string]string{
				"/etc/netplan/50-cloud-init.yaml": "network: {version: 2}\n",
				nmWants:                           "-> /lib/systemd/system/NetworkManager.service",
			},
			want: NetworkManager, reason: "enabled",
		},
		{
			name: "only vmnet's own netplan file",
			files: map[string]string{
				"/etc/netplan/60-vmnet-br0.yaml": vmnetYAML, netplanBin: "",
				"/run/systemd/netif/state": "OPER_STATE=routable\n",
			},
			want: Networkd, reason: "running",
		},
		{
			name: "netplan wins over a running NetworkManager",
			files: map[string]string{
				"/etc/netplan/01-network-manager-all.yaml": "network: {version: 2, renderer: NetworkManager}\n",
				netplanBin: "", "/run/NetworkManager/NetworkManager.pid": "123\n",
			},
			want: Netplan,
		},
		{
			name: "ifupdown stanza in a sourced file",
			files: map[string]string{
				"/etc/network/interfaces":                  debianIfs,
				"/etc/network/interfaces.d/50-cloud-init":  "auto eth0\niface eth0 inet dhcp\n",
				"/etc/network/interfaces.d/vmnet-br0":      header("br0") + "auto br0\niface br0 inet manual\n",
				ifupBin:                                    "",
				nmWants:                                    "-> /lib/systemd/system/NetworkManager.service",
				"/run/NetworkManager/NetworkManager.pid":   "1\n",
				"/etc/systemd/network/20-wired.network":    "[Match]\nName=eth0\n",
				"/run/systemd/netif/state":                 "x\n",
				"/etc/network/interfaces.d/.hidden-backup": "iface eth9 inet dhcp\n",
			},
			want: Ifupdown, reason: "ifupdown: /etc/network/interfaces.d/50-cloud-init configures eth0 and /sbin/ifup is installed",
		},
		{
			name: "ifupdown stanza in the main file, continued line",
			files: map[string]string{
				"/etc/network/interfaces": "auto lo\niface lo inet loopback\n# iface eth1 inet dhcp\niface \\\n  eno1 inet static\n    address 192.0.2.5/24\n",
				"/usr/sbin/ifup":          "",
			},
			want: Ifupdown, reason: "configures eno1",
		},
		{
			name: "ifupdown lo only leaves it to NetworkManager",
			files: map[string]string{
				"/etc/network/interfaces": debianIfs, "/etc/network/interfaces.d/": "", ifupBin: "",
				nmWants: "-> /lib/systemd/system/NetworkManager.service",
			},
			want: NetworkManager, reason: "networkmanager: enabled (" + nmWants + " exists)",
		},
		{
			name: "only vmnet's own ifupdown fragment",
			files: map[string]string{
				"/etc/network/interfaces":             debianIfs,
				"/etc/network/interfaces.d/vmnet-br0": header("br0") + "auto br0\niface br0 inet manual\n",
				ifupBin:                               "",
			},
		},
		{
			name: "ifupdown stanza but ifupdown not installed",
			files: map[string]string{
				"/etc/network/interfaces": "auto eth0\niface eth0 inet dhcp\n",
			},
		},
		{
			name: "source-directory skips names run-parts would skip",
			files: map[string]string{
				"/etc/network/interfaces":               "source-directory interfaces.d\n",
				"/etc/network/interfaces.d/eth0.bak":    "iface eth0 inet dhcp\n",
				"/etc/network/interfaces.d/10-eth1-cfg": "iface eth1 inet dhcp\n",
				ifupBin:                                 "",
			},
			want: Ifupdown, reason: "/etc/network/interfaces.d/10-eth1-cfg configures eth1",
		},
		{
			name: "a source loop ends",
			files: map[string]string{
				"/etc/network/interfaces": "source /etc/network/interfaces\n", ifupBin: "",
			},
		},
		{
			name:  "NetworkManager running",
			files: map[string]string{"/run/NetworkManager/devices/": ""},
			want:  NetworkManager, reason: "running (/run/NetworkManager/devices exists)",
		},
		{
			name: "NetworkManager over networkd when both are enabled",
			files: map[string]string{
				ndWants: "-> /lib/systemd/system/systemd-networkd.service",
				"/etc/systemd/system/dbus-org.freedesktop.NetworkManager.service": "-> /lib/systemd/system/NetworkManager.service",
			},
			want: NetworkManager, reason: "dbus-org.freedesktop.NetworkManager.service",
		},
		{
			name: "networkd enabled through its socket",
			files: map[string]string{
				"/etc/systemd/system/sockets.target.wants/systemd-networkd.socket": "-> /lib/systemd/system/systemd-networkd.socket",
			},
			want: Networkd, reason: "networkd: enabled (/etc/systemd/system/sockets.target.wants/systemd-networkd.socket exists)",
		},
		{
			name: "networkd files and tmpfiles dirs but networkd never starts",
			files: map[string]string{
				"/etc/systemd/network/20-wired.network": "[Match]\nName=eth0\n[Network]\nDHCP=yes\n",
				"/run/systemd/netif/links/":             "",
			},
		},
		{
			name: "networkd masked",
			files: map[string]string{
				"/etc/systemd/system/systemd-networkd.service": "-> /dev/null",
				ndWants: "-> /lib/systemd/system/systemd-networkd.service",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeRoot(t, tt.files)
			got, reason, err := Detect(root)
			if tt.want == "" {
				if !errors.Is(err, ErrNotDetected) {
					t.Fatalf("Detect = %q, %q, %v; want ErrNotDetected", got, reason, err)
				}
				if !strings.Contains(err.Error(), "--persist") || !strings.Contains(err.Error(), "networkmanager") {
					t.Errorf("error %q does not tell the user to pass --persist with the choices", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Detect = %q, %q, %v; want %q", got, reason, err, tt.want)
			}
			if !strings.Contains(reason, tt.reason) || strings.Contains(reason, "\n") {
				t.Errorf("reason %q does not contain %q on one line", reason, tt.reason)
			}
			if strings.Contains(reason, root) {
				t.Errorf("reason %q leaks the root directory", reason)
			}
		})
	}
}

func TestParseInterfaces(t *testing.T) {
	in := "# comment\nauto lo eth0\niface lo inet loopback\n\n  iface eth0 inet dhcp\n  # iface eth9 inet dhcp\n" +
		"source interfaces.d/*\nsource-directory /etc/net.d\nmapping eth1\n  script x\niface\n"
	ifaces, sources := parseInterfaces([]byte(in))
	if got := strings.Join(ifaces, ","); got != "lo,eth0" {
		t.Errorf("ifaces = %q; want lo,eth0", got)
	}
	if len(sources) != 2 || sources[0] != (ifSource{pattern: "interfaces.d/*"}) ||
		sources[1] != (ifSource{pattern: "/etc/net.d", dir: true}) {
		t.Errorf("sources = %+v", sources)
	}
}
