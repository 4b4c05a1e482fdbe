// Package cloudinit turns a stock Debian or Ubuntu cloud image into a vmnet
// guest through cloud-init's NoCloud data source: it renders the seed's three
// files (user-data, meta-data, network-config) and writes them as an ISO 9660
// image labelled cidata, in pure Go.
//
// API:
//
//	Guest, NIC                      who the guest is: hostname, instance ID, NICs matched by MAC
//	UserData, File                  what #cloud-config installs, writes and runs
//	Render(Guest, UserData) → Seed  pure: the three files (golden-tested)
//	Capstone(Guest) → Seed          the capstone lab: every file of templates/capstone/guest/,
//	                                its packages, its units enabled, its container rootfs built
//	Seed.ISO, WriteISO, ReadISO     the seed image (ISO 9660 + Joliet, label cidata) and back
//	EnsureISO(path, Seed)           write the image atomically; unchanged when the bytes are
//	                                the same; refuse to replace a file vmnet did not write
//
// No secret goes into a seed: the image is world-readable on the host (QEMU
// opens it), so the capstone's database password reaches the guest later,
// through the QEMU guest agent, as for the capstone image.
package cloudinit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"vmnet/internal/errs"
	"vmnet/internal/valid"
)

// NIC is one network interface of the guest, in the guest's PCI order.
type NIC struct {
	// Name is the name the guest gives the NIC (netplan set-name), e.g.
	// eth0: stock images name NICs by slot (ens3, enp1s0), and the capstone
	// lab's checks and firewall comments speak of eth0 and eth1.
	Name string
	// MAC identifies the NIC in the guest; required, since a stock image's
	// own interface names cannot be predicted.
	MAC net.HardwareAddr
	// Address is a static address with its prefix length; the zero value
	// means DHCP (IPv4).
	Address netip.Prefix
	// Gateway adds a default route through it; only with Address.
	Gateway netip.Addr
	// DNS lists name servers; only with Address (DHCP brings its own).
	DNS []netip.Addr
}

// Guest is what meta-data and network-config say about one guest.
type Guest struct {
	Hostname string
	// InstanceID tells cloud-init whether this is a new instance (it runs
	// its once-per-instance steps again when the ID changes). Empty means
	// vmnet-HOSTNAME-HASH, with HASH taken from user-data and
	// network-config: a changed seed is a new instance, the same seed is not.
	InstanceID string
	NICs       []NIC
}

// File is one file that cloud-init writes (write_files).
type File struct {
	Path    string      // absolute path in the guest
	Mode    fs.FileMode // permission bits, e.g. 0o644
	Content []byte      // text; cloud-init writes it as is
}

// UserData is the #cloud-config part of a seed.
type UserData struct {
	// Comment is printed under the #cloud-config line, one "# " per line.
	Comment string
	// BootCmd runs early at every boot, before the packages are installed.
	BootCmd [][]string
	// Packages are installed (after an apt update) on the first boot.
	Packages []string
	// Files are written after the packages are installed (defer), so no
	// package's conffile replaces them or prompts about them.
	Files []File
	// RunCmd runs once per instance, last, after Files are written.
	RunCmd [][]string
}

// Seed is the three files of a NoCloud seed.
type Seed struct {
	UserData      []byte
	MetaData      []byte
	NetworkConfig []byte
}

// instanceRE is what an instance ID may be.
var instanceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Render renders the seed of guest g with user-data ud. It only computes:
// the same input gives the same bytes.
func Render(g Guest, ud UserData) (Seed, error) {
	if err := validateGuest(g); err != nil {
		return Seed{}, err
	}
	user, err := renderUserData(ud)
	if err != nil {
		return Seed{}, err
	}
	network, err := renderNetworkConfig(g.NICs)
	if err != nil {
		return Seed{}, err
	}
	id := g.InstanceID
	if id == "" {
		sum := sha256.New()
		sum.Write(user)
		sum.Write(network)
		id = "vmnet-" + g.Hostname + "-" + hex.EncodeToString(sum.Sum(nil))[:12]
	}
	meta, err := marshal("", metaDoc{InstanceID: id, LocalHostname: g.Hostname})
	if err != nil {
		return Seed{}, err
	}
	return Seed{UserData: user, MetaData: meta, NetworkConfig: network}, nil
}

func validateGuest(g Guest) error {
	if g.Hostname == "" || !valid.IsHostname(g.Hostname) {
		return &errs.FieldError{Field: "hostname", Value: g.Hostname, Problem: "is not a valid hostname",
			Fix: "use letters, digits and '-' (labels of 1 to 63, separated by '.'), for example capstone"}
	}
	if g.InstanceID != "" && !instanceRE.MatchString(g.InstanceID) {
		return &errs.FieldError{Field: "instance-id", Value: g.InstanceID, Problem: "is not a valid instance ID",
			Fix: "use up to 128 letters, digits, '.', '_' and '-', or leave it empty for one derived from the seed"}
	}
	if len(g.NICs) == 0 {
		return &errs.FieldError{Field: "nics", Problem: "is empty: the guest needs at least one NIC",
			Fix: "give each NIC its MAC address and either a static address or none for DHCP"}
	}
	names := map[string]bool{}
	macs := map[string]bool{}
	for i, n := range g.NICs {
		field := fmt.Sprintf("nics[%d]", i)
		if err := valid.InterfaceName(field+".name", n.Name); err != nil {
			return err
		}
		if names[n.Name] {
			return &errs.FieldError{Field: field + ".name", Value: n.Name, Problem: "is used by an earlier NIC",
				Fix: "give every NIC its own name, eth0, eth1, ... in PCI order"}
		}
		names[n.Name] = true
		if len(n.MAC) != 6 {
			return &errs.FieldError{Field: field + ".mac", Value: n.MAC.String(), Problem: "is not a 6-byte Ethernet MAC address",
				Fix: "use the MAC that vmnet planned for the NIC, e.g. 52:54:00:12:34:56"}
		}
		if macs[n.MAC.String()] {
			return &errs.FieldError{Field: field + ".mac", Value: n.MAC.String(), Problem: "is used by an earlier NIC",
				Fix: "give every NIC its own MAC address"}
		}
		macs[n.MAC.String()] = true
		if !n.Address.IsValid() {
			if n.Gateway.IsValid() || len(n.DNS) > 0 {
				return &errs.FieldError{Field: field + ".gateway", Value: n.Gateway.String(), Problem: "is set on a DHCP NIC",
					Fix: "give the NIC a static address, or drop the gateway and DNS servers (DHCP brings its own)"}
			}
			continue
		}
		a := n.Address.Addr()
		if n.Address != netip.PrefixFrom(a, n.Address.Bits()) || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			return &errs.FieldError{Field: field + ".address", Value: n.Address.String(), Problem: "is not a host address with a prefix length",
				Fix: "write the guest's address and prefix, e.g. 192.0.2.10/24"}
		}
		if n.Gateway.IsValid() && (n.Gateway.Is4() != a.Is4() || !n.Address.Masked().Contains(n.Gateway) || n.Gateway == a) {
			return &errs.FieldError{Field: field + ".gateway", Value: n.Gateway.String(), Problem: fmt.Sprintf("is not another address in %s", n.Address.Masked()),
				Fix: "use the router's address on the NIC's subnet, or none"}
		}
		for j, d := range n.DNS {
			if !d.IsValid() || d.IsUnspecified() {
				return &errs.FieldError{Field: fmt.Sprintf("%s.dns[%d]", field, j), Value: d.String(), Problem: "is not an IP address",
					Fix: "list name servers by address, e.g. 192.0.2.1"}
			}
		}
	}
	return nil
}

// cmd is one command of bootcmd or runcmd, written as a flow sequence
// ([systemctl, daemon-reload]) so each command reads on one line; a list
// runs without a shell, so nothing in it needs quoting for one.
type cmd []string

func (c cmd) MarshalYAML() (any, error) {
	// Encode quotes words that YAML would read as something else (0700 is
	// an octal number to cloud-init's YAML 1.1 parser).
	var n yaml.Node
	if err := n.Encode([]string(c)); err != nil {
		return nil, err
	}
	n.Style = yaml.FlowStyle
	return &n, nil
}

type userDoc struct {
	BootCmd       []cmd       `yaml:"bootcmd,omitempty"`
	PackageUpdate bool        `yaml:"package_update,omitempty"`
	Packages      []string    `yaml:"packages,omitempty"`
	WriteFiles    []writeFile `yaml:"write_files,omitempty"`
	RunCmd        []cmd       `yaml:"runcmd,omitempty"`
}

type writeFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Defer       bool   `yaml:"defer"`
	Content     string `yaml:"content"`
}

type metaDoc struct {
	InstanceID    string `yaml:"instance-id"`
	LocalHostname string `yaml:"local-hostname"`
}

type netDoc struct {
	Version   int                 `yaml:"version"`
	Ethernets map[string]ethernet `yaml:"ethernets"`
}

type ethernet struct {
	Match       netMatch     `yaml:"match"`
	SetName     string       `yaml:"set-name"`
	DHCP4       bool         `yaml:"dhcp4"`
	DHCP6       bool         `yaml:"dhcp6"`
	Addresses   []string     `yaml:"addresses,omitempty"`
	Routes      []netRoute   `yaml:"routes,omitempty"`
	Nameservers *nameservers `yaml:"nameservers,omitempty"`
}

type netMatch struct {
	MACAddress string `yaml:"macaddress"`
}

type netRoute struct {
	To  string `yaml:"to"`
	Via string `yaml:"via"`
}

type nameservers struct {
	Addresses []string `yaml:"addresses"`
}

func renderUserData(ud UserData) ([]byte, error) {
	doc := userDoc{PackageUpdate: len(ud.Packages) > 0, Packages: ud.Packages}
	for i, p := range ud.Packages {
		if !valid.IsDebPackage(p) {
			return nil, &errs.FieldError{Field: fmt.Sprintf("packages[%d]", i), Value: p, Problem: "is not a Debian package name",
				Fix: "use the package's name as apt knows it, e.g. podman"}
		}
	}
	for _, c := range ud.BootCmd {
		doc.BootCmd = append(doc.BootCmd, cmd(c))
	}
	for _, c := range ud.RunCmd {
		doc.RunCmd = append(doc.RunCmd, cmd(c))
	}
	seen := map[string]bool{}
	for i, f := range ud.Files {
		field := fmt.Sprintf("files[%d]", i)
		if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
			return nil, &errs.FieldError{Field: field + ".path", Value: f.Path, Problem: "is not a clean absolute path",
				Fix: "give the file's full path in the guest, e.g. /etc/nftables.conf"}
		}
		if seen[f.Path] {
			return nil, &errs.FieldError{Field: field + ".path", Value: f.Path, Problem: "is written twice",
				Fix: "keep one file per path"}
		}
		seen[f.Path] = true
		if f.Mode&^fs.ModePerm != 0 {
			return nil, &errs.FieldError{Field: field + ".mode", Value: f.Mode.String(), Problem: "has bits other than the permission bits",
				Fix: "use a mode such as 0644 or 0755"}
		}
		doc.WriteFiles = append(doc.WriteFiles, writeFile{
			Path:        f.Path,
			Owner:       "root:root",
			Permissions: fmt.Sprintf("%#04o", uint32(f.Mode)),
			Defer:       true,
			Content:     string(f.Content),
		})
	}
	var head strings.Builder
	head.WriteString("#cloud-config\n")
	for _, line := range strings.Split(strings.TrimRight(ud.Comment, "\n"), "\n") {
		if line != "" {
			head.WriteString("# " + line + "\n")
		} else if ud.Comment != "" {
			head.WriteString("#\n")
		}
	}
	return marshal(head.String(), doc)
}

func renderNetworkConfig(nics []NIC) ([]byte, error) {
	doc := netDoc{Version: 2, Ethernets: map[string]ethernet{}}
	for _, n := range nics {
		e := ethernet{Match: netMatch{MACAddress: n.MAC.String()}, SetName: n.Name}
		if !n.Address.IsValid() {
			e.DHCP4 = true
		} else {
			e.Addresses = []string{n.Address.String()}
			if n.Gateway.IsValid() {
				to := "0.0.0.0/0"
				if n.Gateway.Is6() {
					to = "::/0"
				}
				e.Routes = []netRoute{{To: to, Via: n.Gateway.String()}}
			}
			if len(n.DNS) > 0 {
				e.Nameservers = &nameservers{}
				for _, d := range n.DNS {
					e.Nameservers.Addresses = append(e.Nameservers.Addresses, d.String())
				}
			}
		}
		doc.Ethernets[n.Name] = e
	}
	return marshal("", doc)
}

// marshal writes head, then v as YAML indented by two spaces.
func marshal(head string, v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(head)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render YAML: %w", err)
	}
	return b.Bytes(), nil
}
