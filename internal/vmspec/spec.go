// Package vmspec is the VM spec: what a user writes (a YAML file, or one of
// the built-in profiles in templates/) to describe a guest, parsed, given its
// defaults and validated with errors that name the field
// (`nics[1].bridge: "br 0" contains ' ', ...`). It is pure: nothing here
// looks at the host.
package vmspec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"vmnet/internal/ownership"
	"vmnet/internal/valid"
)

// Spec describes one VM.
type Spec struct {
	Name      string    `yaml:"name" json:"name"`                    // the VM, its libvirt domain and its hostname
	Image     string    `yaml:"image" json:"image"`                  // a built-in image name (tiny), or a path to a qcow2/raw disk image
	VCPUs     int       `yaml:"vcpus" json:"vcpus"`                  // default 1
	Memory    Size      `yaml:"memory" json:"memory"`                // default 256MiB
	Disks     []Disk    `yaml:"disks" json:"disks,omitempty"`        // extra data disks, after the image's
	NICs      []NIC     `yaml:"nics" json:"nics,omitempty"`          // in guest order: eth0, eth1, ...
	Kernel    Kernel    `yaml:"kernel" json:"kernel,omitzero"`       // direct kernel boot
	Ready     Ready     `yaml:"ready" json:"ready,omitzero"`         // how to know the guest is up; the image's default when empty
	Timeout   Duration  `yaml:"timeout" json:"timeout,omitempty"`    // how long to wait for Ready; 0: chosen by accelerator
	Provision Provision `yaml:"provision" json:"provision,omitzero"` // what to put into the guest once it is up
	Requires  Requires  `yaml:"requires" json:"requires,omitzero"`   // networks and bridges vmnet makes when missing
	// Lab is the lab that makes this VM, set by the lab planner and never
	// by a spec file (yaml "-": a file with lab: is refused as an unknown
	// key). It is the VM's ownership tag (domain metadata and the VM's
	// record), so `vmnet lab down` finds the VM; it is part of Hash, so the
	// same spec with another tag, or none, counts as a different spec.
	Lab string `yaml:"-" json:"lab,omitempty"`
}

// Disk is an extra, empty data disk.
type Disk struct {
	Size Size `yaml:"size" json:"size"`
}

// NIC is one virtio network interface, on a libvirt network, directly on a
// Linux bridge, or on a host interface through macvtap (Direct).
type NIC struct {
	Network string       `yaml:"network" json:"network,omitempty"` // a libvirt network, e.g. nat0
	Bridge  string       `yaml:"bridge" json:"bridge,omitempty"`   // a Linux bridge, e.g. br0
	Direct  Direct       `yaml:"direct" json:"direct,omitzero"`    // or a host interface through macvtap
	Address netip.Prefix `yaml:"address" json:"address,omitzero"`  // static address with prefix; DHCP when unset
	Gateway netip.Addr   `yaml:"gateway" json:"gateway,omitzero"`  // default route through this NIC; needs Address
	MAC     string       `yaml:"mac" json:"mac,omitempty"`         // override the derived MAC (to resolve a clash)
}

// Kernel is for images booted directly (kernel and initrd come from the image).
type Kernel struct {
	Cmdline string `yaml:"cmdline" json:"cmdline,omitempty"` // extra arguments, after vmnet's own
}

// Provision is what vmnet puts into the guest once it is up. The image
// decides how (cloud-init NoCloud seed or the QEMU guest agent).
type Provision struct {
	Files    []File   `yaml:"files" json:"files,omitempty"`
	Commands []string `yaml:"commands" json:"commands,omitempty"` // run in order with /bin/sh -c, after the files
	// Restore runs, like Commands, after the VM was restored from a saved
	// lab (vmnet lab up --from-save) and its secret files were given new
	// secrets in place: what makes the running guest use them (the
	// capstone's database takes the new password).
	Restore []string `yaml:"restore" json:"restore,omitempty"`
}

// File is one file to write into the guest.
type File struct {
	Path    string `yaml:"path" json:"path"`                 // absolute path in the guest
	Content string `yaml:"content" json:"content,omitempty"` // the file's text
	Source  string `yaml:"source" json:"source,omitempty"`   // or a host file to copy (relative to the spec file)
	// Secret names a random password vmnet generates for this VM (kept on the
	// host, mode 0600, in the VM's state directory) and writes as the content.
	// It goes through the guest agent only: never into a seed, a log or the XML.
	Secret string   `yaml:"secret" json:"secret,omitempty"`
	Mode   FileMode `yaml:"mode" json:"mode,omitempty"` // default 0644
}

// Requires lists what the VM's NICs attach to, for vmnet to make when it is
// missing. A NIC may also use a network or bridge that exists already and is
// not listed here.
type Requires struct {
	Networks []NetworkReq `yaml:"networks" json:"networks,omitempty"`
	Bridges  []BridgeReq  `yaml:"bridges" json:"bridges,omitempty"`
}

// Modes of a required libvirt network.
const (
	ModeNAT      = "nat"      // routed to the outside through the host, with masquerading
	ModeIsolated = "isolated" // guests and host only
)

// NetworkReq is a libvirt network with DHCP: the host gets the first address
// of CIDR, DHCP hands out the others.
type NetworkReq struct {
	Name string       `yaml:"name" json:"name"`
	Mode string       `yaml:"mode" json:"mode"` // ModeNAT (default) or ModeIsolated
	CIDR netip.Prefix `yaml:"cidr" json:"cidr"` // the subnet, e.g. 198.51.100.0/24
}

// BridgeReq is a Linux bridge with the host's address on it (no DHCP).
type BridgeReq struct {
	Name    string       `yaml:"name" json:"name"`
	Address netip.Prefix `yaml:"address" json:"address"` // the host's address, e.g. 192.0.2.1/24
}

// Defaults and limits.
const (
	DefaultVCPUs  = 1
	DefaultMemory = 256 << 20 // bytes
	MaxVCPUs      = 64
	MinMemory     = 32 << 20
	MaxMemory     = 1 << 40
	MinDiskSize   = 1 << 20
	MaxDiskSize   = 16 << 40
	MaxDisks      = 24 // vdb..vdy, after the image's vda
	MaxNICs       = 16
	MaxNameLen    = valid.MaxVMName // a DNS label: the name is also the guest's hostname
	MaxCmdline    = 1024
	MaxTimeout    = Duration(time.Hour)
)

// ReservedCmdlinePrefix marks kernel arguments that vmnet sets itself from
// the spec (vmnet.hostname, vmnet.ip.N).
const ReservedCmdlinePrefix = "vmnet."

// Defaults fills in what the spec leaves out.
func (s *Spec) Defaults() {
	if s.VCPUs == 0 {
		s.VCPUs = DefaultVCPUs
	}
	if s.Memory == 0 {
		s.Memory = DefaultMemory
	}
	// Copies before the writes below: specs that share these slices (a
	// lab's VMs, made from one template) may be given defaults at the same
	// time by Ups running at once, and must not see each other's writes.
	s.Provision.Files = slices.Clone(s.Provision.Files)
	s.Requires.Networks = slices.Clone(s.Requires.Networks)
	for i := range s.Provision.Files {
		if s.Provision.Files[i].Mode == 0 {
			s.Provision.Files[i].Mode = 0o644
		}
	}
	for i := range s.Requires.Networks {
		if s.Requires.Networks[i].Mode == "" {
			s.Requires.Networks[i].Mode = ModeNAT
		}
	}
	// An empty list is no list: `commands: [~]` decodes to an empty, non-nil
	// slice, which would make the same spec hash differently (Hash marshals
	// the spec, and omitzero tells empty from nil).
	nilIfEmpty(&s.Disks)
	nilIfEmpty(&s.NICs)
	nilIfEmpty(&s.Provision.Files)
	nilIfEmpty(&s.Provision.Commands)
	nilIfEmpty(&s.Provision.Restore)
	nilIfEmpty(&s.Requires.Networks)
	nilIfEmpty(&s.Requires.Bridges)
}

func nilIfEmpty[T any](s *[]T) {
	if len(*s) == 0 {
		*s = nil
	}
}

// Networks lists the libvirt networks the NICs use, once each, in NIC order.
func (s Spec) Networks() []string {
	var out []string
	for _, n := range s.NICs {
		if n.Network != "" && !slices.Contains(out, n.Network) {
			out = append(out, n.Network)
		}
	}
	return out
}

// Bridges lists the Linux bridges the NICs use, once each, in NIC order.
func (s Spec) Bridges() []string {
	var out []string
	for _, n := range s.NICs {
		if n.Bridge != "" && !slices.Contains(out, n.Bridge) {
			out = append(out, n.Bridge)
		}
	}
	return out
}

// IsImagePath reports whether an image reference is a file path.
func IsImagePath(image string) bool {
	if strings.ContainsRune(image, '/') {
		return true
	}
	switch path.Ext(image) {
	case ".qcow2", ".img", ".raw":
		return true
	}
	return false
}

// Hash identifies the spec's content (after defaults): it goes into the
// domain's metadata so a later run can tell whether the spec changed.
func (s Spec) Hash() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("vmspec: hash: %v", err)) // every field marshals; a failure is a bug
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Validate checks the spec (with its defaults filled in) and returns every
// problem as Errors, each naming its field.
func (s Spec) Validate() error {
	var l errorList
	validateName(&l, s.Name)
	l.addErr("lab", ownership.CheckLab("lab", s.Lab))
	validateImage(&l, s.Image)
	if s.VCPUs < 1 || s.VCPUs > MaxVCPUs {
		l.add("vcpus", fmt.Sprint(s.VCPUs), fmt.Sprintf("is outside 1-%d", MaxVCPUs), "use a small number such as 1 or 2: guests run on this host's cores")
	}
	if s.Memory < MinMemory || s.Memory > MaxMemory {
		l.add("memory", s.Memory.String(), fmt.Sprintf("is outside %s-%s", Size(MinMemory), Size(MaxMemory)), "use for example 256MiB (tiny guests) or 2GiB")
	}
	if len(s.Disks) > MaxDisks {
		l.add("disks", "", fmt.Sprintf("has %d entries; at most %d are possible", len(s.Disks), MaxDisks), "use fewer, larger disks")
	}
	for i, d := range s.Disks {
		if d.Size < MinDiskSize || d.Size > MaxDiskSize {
			l.add(fmt.Sprintf("disks[%d].size", i), d.Size.String(), fmt.Sprintf("is outside %s-%s", Size(MinDiskSize), Size(MaxDiskSize)), "give each disk a size such as 1GiB")
		}
	}
	s.validateNICs(&l)
	s.validateKernel(&l)
	s.validateReady(&l)
	if s.Timeout < 0 || s.Timeout > MaxTimeout {
		l.add("timeout", s.Timeout.String(), "is outside 0-1h", "use for example 2m; leave it out for the default")
	}
	validateProvision(&l, s.Provision)
	validateRequires(&l, s.Requires)
	return l.err()
}

// ValidateName checks a VM name given on the command line (vm down NAME).
func ValidateName(name string) error {
	var l errorList
	validateName(&l, name)
	return l.err()
}

// validateName: the name is the libvirt domain name, a directory name and
// the guest's hostname; valid.VMName holds the rule.
func validateName(l *errorList, name string) {
	l.addErr("name", valid.VMName("name", name))
}

// validateImage: a path to a disk image, or the name of a built-in image
// under valid.ImageName, the rule image build holds its names to, so a spec
// names no image that could not be built.
func validateImage(l *errorList, image string) {
	switch {
	case image == "":
		l.add("image", "", "is missing", "name a built-in image (tiny) or the path of a qcow2 or raw disk image")
	case IsImagePath(image):
		if !path.IsAbs(image) {
			l.add("image", image, "is a relative path", "write the path relative to the spec file, or an absolute path")
		}
	default:
		if valid.ImageName(image) != nil {
			l.add("image", image, "is neither a built-in image name nor a path",
				"name a built-in image (tiny), or give a path to a disk image such as ./disk.qcow2")
		}
	}
}

// ValidateNetworkName checks a libvirt network name at field of a spec or
// lab; valid.NetworkName holds the rule, the same as net create's.
func ValidateNetworkName(field, name string) error { return valid.NetworkName(field, name) }

func (s Spec) validateNICs(l *errorList) {
	if len(s.NICs) > MaxNICs {
		l.add("nics", "", fmt.Sprintf("has %d entries; at most %d are allowed", len(s.NICs), MaxNICs), "use fewer NICs")
	}
	nets := map[string]NetworkReq{}
	for _, n := range s.Requires.Networks {
		nets[n.Name] = n
	}
	brs := map[string]BridgeReq{}
	for _, b := range s.Requires.Bridges {
		brs[b.Name] = b
	}
	addrs := map[netip.Addr]int{}
	macs := map[string]int{}
	gateway := -1
	for i, n := range s.NICs {
		f := func(name string) string { return fmt.Sprintf("nics[%d].%s", i, name) }
		s.validateAttach(l, i, n)
		if n.Address.IsValid() {
			if _, err := valid.ParseAddress(n.Address.String()); err != nil {
				l.addErr(f("address"), err)
			} else if j, dup := addrs[n.Address.Addr()]; dup {
				l.add(f("address"), n.Address.String(), fmt.Sprintf("is also nics[%d].address", j), "give each NIC its own address")
			} else {
				addrs[n.Address.Addr()] = i
				if req, ok := nets[n.Network]; ok && n.Network != "" {
					checkRequired(l, f("address"), n.Address, AddrLink{Name: "network " + req.Name, Subnet: req.CIDR, Pool: DefaultPool(req.CIDR),
						Holders: []AddrHolder{{Addr: hostAddr(req.CIDR), Who: "the host's address on network " + req.Name}}})
				}
				if req, ok := brs[n.Bridge]; ok && n.Bridge != "" {
					checkRequired(l, f("address"), n.Address, AddrLink{Name: "bridge " + req.Name, Subnet: req.Address.Masked(),
						Holders: []AddrHolder{{Addr: req.Address.Addr(), Who: "the host's address on " + req.Name}}})
				}
			}
		}
		if n.Gateway.IsValid() {
			switch {
			case !n.Address.IsValid():
				l.add(f("gateway"), n.Gateway.String(), "is set but address is not", "a NIC without address gets its gateway from DHCP: leave gateway out, or set address too")
			case n.Gateway.Is4() != n.Address.Addr().Is4():
				l.add(f("gateway"), n.Gateway.String(), "is not in the same address family as address "+n.Address.String(), "use a gateway inside "+n.Address.Masked().String())
			case !n.Address.Contains(n.Gateway):
				l.add(f("gateway"), n.Gateway.String(), "is not inside "+n.Address.Masked().String(), "use a gateway on the NIC's own subnet")
			case n.Gateway == n.Address.Addr():
				l.add(f("gateway"), n.Gateway.String(), "is the NIC's own address", "use the address of the router on that subnet")
			case gateway >= 0:
				l.add(f("gateway"), n.Gateway.String(), fmt.Sprintf("is a second default gateway (nics[%d] has one)", gateway), "keep the gateway on one NIC only")
			default:
				gateway = i
			}
		}
		if n.MAC != "" {
			mac, err := valid.ParseMAC(n.MAC)
			if err != nil {
				l.addErr(f("mac"), err)
			} else if j, dup := macs[mac.String()]; dup {
				l.add(f("mac"), n.MAC, fmt.Sprintf("is also nics[%d].mac", j), "give each NIC its own MAC")
			} else {
				macs[mac.String()] = i
			}
		}
	}
}

// checkRequired checks a static address against the network or bridge
// that the spec's requires makes (CheckStatic): in its subnet, not the
// host's address there, not in its DHCP pool.
func checkRequired(l *errorList, field string, addr netip.Prefix, link AddrLink) {
	if !link.Subnet.IsValid() {
		return // requires reports the missing or bad subnet itself
	}
	if e := CheckStatic(field, addr, link); e != nil {
		l.errs = append(l.errs, e)
	}
}

// DefaultPool is the DHCP pool vmnet gives a network it makes: the upper
// half of the subnet less its broadcast address (network.DefaultDHCPRange,
// which this pure package does not import).
func DefaultPool(cidr netip.Prefix) [2]netip.Addr {
	if !cidr.IsValid() || !cidr.Addr().Is4() || cidr.Bits() > 30 {
		return [2]netip.Addr{}
	}
	p := cidr.Masked()
	half := uint32(1) << (31 - p.Bits())
	b := p.Addr().As4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	at := func(i uint32) netip.Addr {
		v := base + i
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	return [2]netip.Addr{at(half), at(2*half - 2)}
}

// hostAddr is the host's address on a network vmnet makes: the first one.
func hostAddr(cidr netip.Prefix) netip.Addr {
	if !cidr.IsValid() {
		return netip.Addr{}
	}
	return cidr.Masked().Addr().Next()
}

func (s Spec) validateKernel(l *errorList) {
	c := s.Kernel.Cmdline
	if len(c) > MaxCmdline {
		l.add("kernel.cmdline", "", fmt.Sprintf("is %d characters long; at most %d are allowed", len(c), MaxCmdline), "keep extra kernel arguments short")
		return
	}
	for _, r := range c {
		if r < ' ' || r == 0x7f {
			l.add("kernel.cmdline", c, fmt.Sprintf("contains the control character %q", r), "write the arguments on one line, separated by spaces")
			return
		}
	}
	for _, arg := range strings.Fields(c) {
		if strings.HasPrefix(arg, ReservedCmdlinePrefix) {
			l.add("kernel.cmdline", arg, "is set by vmnet itself", "set the hostname with name and addresses with nics[N].address, not on the command line")
		}
	}
}

func (s Spec) validateReady(l *errorList) {
	r := s.Ready
	n := 0
	for _, set := range []bool{r.Console != "", r.Agent, r.Lease} {
		if set {
			n++
		}
	}
	if n > 1 {
		l.add("ready", "", "sets more than one of console, agent and lease", "pick one way to tell the guest is up")
	}
	if r.Console != "" && (len(r.Console) > 64 || strings.TrimSpace(r.Console) != r.Console || strings.ContainsFunc(r.Console, func(c rune) bool { return c < ' ' || c == 0x7f })) {
		l.add("ready.console", r.Console, "is not a short single-line text without leading or trailing spaces", "use the start of the line the guest prints when it is up, for example "+DefaultReadyMarker)
	}
	if r.Lease && len(s.Networks()) == 0 {
		l.add("ready", "lease", "needs a NIC on a libvirt network (only libvirt's DHCP gives leases vmnet can see)", "add a NIC with network: nat0, or use console or agent")
	}
}

// secretName is what a provisioned secret may be called (it is a file name on the host).
var secretName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

func validateProvision(l *errorList, p Provision) {
	seen := map[string]int{}
	for i, f := range p.Files {
		field := func(name string) string { return fmt.Sprintf("provision.files[%d].%s", i, name) }
		switch {
		case f.Path == "":
			l.add(field("path"), "", "is missing", "give the absolute path of the file in the guest, for example /etc/motd")
		case !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path:
			l.add(field("path"), f.Path, "is not a clean absolute path", "write it like /etc/motd")
		default:
			if j, dup := seen[f.Path]; dup {
				l.add(field("path"), f.Path, fmt.Sprintf("is also provision.files[%d].path", j), "write each file once")
			}
			seen[f.Path] = i
		}
		switch {
		case f.Content != "" && f.Source != "":
			l.add(field("source"), f.Source, "is set together with content", "give either content (inline text) or source (a host file)")
		case f.Secret != "" && (f.Content != "" || f.Source != ""):
			l.add(field("secret"), f.Secret, "is set together with content or source", "a secret file's content is the generated secret: leave out content and source")
		case f.Secret != "" && !secretName.MatchString(f.Secret):
			l.add(field("secret"), f.Secret, "is not a secret name", "use 1 to 40 lowercase letters, digits and '-', for example db-password")
		case f.Source != "" && !path.IsAbs(f.Source):
			l.add(field("source"), f.Source, "is a relative path", "write it relative to the spec file, or as an absolute path")
		}
		if f.Mode > 0o7777 {
			l.add(field("mode"), f.Mode.String(), "is not a file mode", "use for example 0644 or 0755")
		}
	}
	for i, c := range p.Commands {
		if strings.TrimSpace(c) == "" {
			l.add(fmt.Sprintf("provision.commands[%d]", i), "", "is empty", "remove it, or write the shell command to run")
		}
	}
	for i, c := range p.Restore {
		if strings.TrimSpace(c) == "" {
			l.add(fmt.Sprintf("provision.restore[%d]", i), "", "is empty", "remove it, or write the shell command to run")
		}
	}
}

func validateRequires(l *errorList, r Requires) {
	names := map[string]int{}
	for i, n := range r.Networks {
		field := func(name string) string { return fmt.Sprintf("requires.networks[%d].%s", i, name) }
		if err := ValidateNetworkName(field("name"), n.Name); err != nil {
			l.addErr(field("name"), err)
		} else if j, dup := names[n.Name]; dup {
			l.add(field("name"), n.Name, fmt.Sprintf("is also requires.networks[%d].name", j), "list each network once")
		} else {
			names[n.Name] = i
		}
		if n.Mode != ModeNAT && n.Mode != ModeIsolated {
			l.add(field("mode"), n.Mode, "is not a network mode", "use nat (reaches the outside through the host) or isolated")
		}
		switch {
		case !n.CIDR.IsValid():
			l.add(field("cidr"), "", "is missing", "give the network's subnet, for example 198.51.100.0/24")
		case !n.CIDR.Addr().Is4():
			l.add(field("cidr"), n.CIDR.String(), "is not IPv4", "give an IPv4 subnet, for example 198.51.100.0/24")
		case n.CIDR.Masked() != n.CIDR:
			l.add(field("cidr"), n.CIDR.String(), "has host bits set", "write the subnet itself: "+n.CIDR.Masked().String())
		case n.CIDR.Bits() < 8 || n.CIDR.Bits() > 29:
			l.add(field("cidr"), n.CIDR.String(), "has a prefix length outside 8-29", "use for example a /24")
		}
	}
	brNames := map[string]int{}
	for i, b := range r.Bridges {
		field := func(name string) string { return fmt.Sprintf("requires.bridges[%d].%s", i, name) }
		if err := valid.InterfaceName(field("name"), b.Name); err != nil {
			l.addErr(field("name"), err)
		} else if j, dup := brNames[b.Name]; dup {
			l.add(field("name"), b.Name, fmt.Sprintf("is also requires.bridges[%d].name", j), "list each bridge once")
		} else {
			brNames[b.Name] = i
		}
		if !b.Address.IsValid() {
			l.add(field("address"), "", "is missing", "give the host's address on the bridge, for example 192.0.2.1/24")
		} else if _, err := valid.ParseAddress(b.Address.String()); err != nil {
			l.addErr(field("address"), err)
		}
	}
}

// MACAddr returns the NIC's MAC override, or nil when it has none or it does
// not parse (Validate reports that).
func (n NIC) MACAddr() net.HardwareAddr {
	if n.MAC == "" {
		return nil
	}
	mac, err := valid.ParseMAC(n.MAC)
	if err != nil {
		return nil
	}
	return mac
}
