// Package lab reads a lab file: one YAML document that declares a whole
// topology — networks (NAT, isolated, Linux bridge), nodes (VMs) with their
// NICs and their podman containers (containers.go: a container in each
// network mode, on a capstone-image node), nodes of kind container that run
// on the lab host itself (hostcontainer.go), and checks — validates all of
// it before anything on the host changes, and draws it (Graph). It is
// pure: no libvirt, no netlink.
//
// The YAML keys are a contract that examples and tests use: extend, don't
// rename.
package lab

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

// Network kinds.
const (
	KindNAT      = "nat"      // libvirt NAT network: host .1, DHCP in the upper half
	KindIsolated = "isolated" // libvirt isolated network: guests and host only
	KindBridge   = "bridge"   // a Linux bridge made with netlink, host address on it
	KindMacvtap  = "macvtap"  // guests on a host interface's link through macvtap; nothing to make
)

// Kinds lists the network kinds, for messages.
var Kinds = []string{KindNAT, KindIsolated, KindBridge, KindMacvtap}

// Check expectations.
const (
	ExpectReach   = "reach"
	ExpectBlocked = "blocked"
)

// Host is the name of the host in checks' from and to.
const Host = "host"

// Apps are the built-in applications a node may run.
var Apps = apps.Names()

// Defaults for a node.
const (
	DefaultVCPUs  = vmspec.DefaultVCPUs
	DefaultMemory = vmspec.Size(vmspec.DefaultMemory)
)

// Lab is a parsed, validated lab file.
type Lab struct {
	Name     string             `yaml:"name"`     // a DNS label; the ownership tag of everything the lab makes
	Networks map[string]Network `yaml:"networks"` // name → network
	Nodes    map[string]Node    `yaml:"nodes"`    // name → VM (after Parse: only the VMs)
	Checks   []Check            `yaml:"checks"`   // declared checks, beside the derived ones

	NetworkOrder []string `yaml:"-"` // network names in file order
	NodeOrder    []string `yaml:"-"` // VM node names in file order
	// HostContainers are the nodes of kind container: podman containers on
	// the lab host itself (hostcontainer.go). Parse moves them out of Nodes,
	// so that everything that plans VMs sees only VMs.
	HostContainers map[string]HostContainer `yaml:"-"`
	HostOrder      []string                 `yaml:"-"` // host container names in file order
	Source         []byte                   `yaml:"-"` // the file as read: lab up keeps a copy for check and inspect
	File           string                   `yaml:"-"` // the file's name in messages, as given to Parse
}

// Refuse is problems found after Parse (lab up's checks of the host) as
// the lab file's errors: each names the file and its field's line in
// Source, as Parse's own do.
func (l Lab) Refuse(list vmspec.Errors) *Errors {
	lines, _ := vmspec.CheckYAML(l.Source, reflect.TypeFor[Lab](), "lab")
	for _, e := range list {
		if e.Line == 0 {
			e.Line = vmspec.LineOf(lines, e.Field)
		}
	}
	return &Errors{File: l.File, List: list}
}

// Network is one network of a lab.
type Network struct {
	Kind    string       `yaml:"kind"`    // nat, isolated or bridge
	CIDR    netip.Prefix `yaml:"cidr"`    // nat and isolated: the subnet; the host gets its first address
	Address netip.Prefix `yaml:"address"` // bridge: the host's address on it, with the subnet's prefix
	Parent  string       `yaml:"parent"`  // macvtap: the host interface the guests appear on
	Mode    string       `yaml:"mode"`    // macvtap: bridge (default), vepa, private or passthrough
}

// Subnet is the network's subnet.
func (n Network) Subnet() netip.Prefix {
	if n.Kind == KindBridge {
		return n.Address.Masked()
	}
	return n.CIDR.Masked()
}

// HostAddr is the host's address on the network; none on a macvtap
// network, where vmnet gives the host nothing (and the host cannot reach
// the guests through the parent anyway).
func (n Network) HostAddr() netip.Addr {
	if n.Kind == KindMacvtap {
		return netip.Addr{}
	}
	if n.Kind == KindBridge {
		return n.Address.Addr()
	}
	if !n.CIDR.IsValid() {
		return netip.Addr{}
	}
	return n.CIDR.Masked().Addr().Next()
}

// Pool is the network's DHCP pool; zero for a bridge or a macvtap
// network, which have none from vmnet.
func (n Network) Pool() [2]netip.Addr {
	if n.Kind == KindBridge || n.Kind == KindMacvtap {
		return [2]netip.Addr{}
	}
	return vmspec.DefaultPool(n.CIDR)
}

// Node is one node of a lab: a VM (kind vm, the default) or a container
// on the lab host (kind container, whose keys are the last block).
type Node struct {
	Kind   string      `yaml:"kind"`   // vm (the default) or container
	Image  string      `yaml:"image"`  // built-in image name or a disk image path
	VCPUs  int         `yaml:"vcpus"`  // default 1
	Memory vmspec.Size `yaml:"memory"` // default 256MiB
	NICs   []NIC       `yaml:"nics"`   // guest order: eth0, eth1, ...
	App    string      `yaml:"app"`    // a built-in application in the guest; "" for none

	ContainerNetworks map[string]ContainerNetwork `yaml:"container-networks"` // podman networks in the guest (containers.go)
	Containers        map[string]Container        `yaml:"containers"`         // podman containers in the guest (containers.go)

	// kind: container only (hostcontainer.go).
	Network string       `yaml:"network"` // the lab network (kind bridge) it is on
	Address netip.Prefix `yaml:"address"` // its static address there, with the subnet's prefix
	Mode    string       `yaml:"mode"`    // veth (the default), macvlan or ipvlan
	Listen  int          `yaml:"listen"`  // the port its HTTP server (or command) serves
	Command string       `yaml:"command"` // run with sh -c; default: python3 -m http.server on listen
}

// NIC is one network interface of a node.
type NIC struct {
	Net     string       `yaml:"net"`     // a network of the lab
	Address netip.Prefix `yaml:"address"` // static address; invalid for DHCP
}

// Check is a declared check: from host or a node, to a node, node:net or
// an address, with exactly one probe.
type Check struct {
	From   string `yaml:"from"`
	To     string `yaml:"to"`
	Ping   bool   `yaml:"ping"`
	TCP    int    `yaml:"tcp"`
	HTTP   int    `yaml:"http"`
	Path   string `yaml:"path"` // http: default /
	Body   string `yaml:"body"` // http: a regular expression the body must match
	DNS    string `yaml:"dns"`
	Expect string `yaml:"expect"` // reach (default) or blocked
}

// Errors is every problem of one lab file, in file order. Each line reads
// FILE:LINE: FIELD: problem.
type Errors struct {
	File string
	List vmspec.Errors
}

func (e *Errors) Error() string {
	parts := make([]string, len(e.List))
	for i, fe := range e.List {
		c := *fe
		c.Line = 0
		switch {
		case e.File != "" && fe.Line > 0:
			parts[i] = fmt.Sprintf("%s:%d: %s", e.File, fe.Line, c.Error())
		case e.File != "":
			parts[i] = e.File + ": " + c.Error()
		default:
			parts[i] = fe.Error()
		}
	}
	return strings.Join(parts, "; ")
}

// Hint gives the fix for each problem.
func (e *Errors) Hint() string {
	if h := e.List.Hint(); h != "" {
		return h
	}
	return "compare the file with examples/office.lab.yaml, which has every kind of entry"
}

// Unwrap lets errors.As find each *errs.FieldError.
func (e *Errors) Unwrap() []error { return e.List.Unwrap() }

// Is makes errors.Is(err, errs.ErrInvalid) true: exit code 2.
func (e *Errors) Is(target error) bool { return target == errs.ErrInvalid }

// Parse parses one lab file's content (file is its name in messages, and
// the directory relative image paths are taken from), fills in the
// defaults and validates it. Nothing is changed anywhere: a lab refused
// here leaves the host as it was.
func Parse(data []byte, file string) (Lab, error) {
	if len(data) > vmspec.MaxSpecSize {
		return Lab{}, &Errors{File: file, List: vmspec.Errors{{Form: errs.PathForm, Field: "lab",
			Problem: fmt.Sprintf("is larger than %d bytes", vmspec.MaxSpecSize), Fix: "write a smaller lab file"}}}
	}
	lines, problems := vmspec.CheckYAML(data, reflect.TypeFor[Lab](), "lab")
	if len(problems) > 0 {
		return Lab{}, &Errors{File: file, List: problems}
	}
	var l Lab
	if err := yaml.Unmarshal(data, &l); err != nil {
		return Lab{}, &Errors{File: file, List: vmspec.Errors{{Form: errs.PathForm, Field: "lab",
			Problem: "cannot be decoded: " + strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " "), Fix: "compare it with examples/office.lab.yaml"}}}
	}
	l.Source, l.File = data, file
	l.NetworkOrder = fileOrder(l.Networks, "networks", lines)
	l.NodeOrder = fileOrder(l.Nodes, "nodes", lines)
	hostNodes := l.splitHostContainers()
	l.defaults(filepath.Dir(file))
	if es := append(l.validate(), l.validateHostContainers(hostNodes)...); len(es) > 0 {
		for _, e := range es {
			if e.Line == 0 {
				e.Line = vmspec.LineOf(lines, e.Field)
			}
		}
		return Lab{}, &Errors{File: file, List: es}
	}
	return l, nil
}

// fileOrder lists m's names in the order of their lines in the file.
func fileOrder[V any](m map[string]V, prefix string, lines map[string]int) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		li, lj := lines[prefix+"."+names[i]], lines[prefix+"."+names[j]]
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	return names
}

// defaults fills in what a lab may leave out.
func (l *Lab) defaults(dir string) {
	for name, n := range l.Nodes {
		if n.Kind == NodeContainer {
			continue
		}
		if n.VCPUs == 0 {
			n.VCPUs = DefaultVCPUs
		}
		if n.Memory == 0 {
			n.Memory = DefaultMemory
		}
		if vmspec.IsImagePath(n.Image) && !filepath.IsAbs(n.Image) && dir != "" {
			if abs, err := filepath.Abs(filepath.Join(dir, n.Image)); err == nil {
				n.Image = abs
			}
		}
		l.Nodes[name] = n
	}
	for i := range l.Checks {
		c := &l.Checks[i]
		if c.Expect == "" {
			c.Expect = ExpectReach
		}
		if c.HTTP != 0 && c.Path == "" {
			c.Path = "/"
		}
	}
}

// Load reads and parses the lab file at path (Parse). A file that is
// missing, unreadable or too large is invalid input too (exit 2).
func Load(path string) (Lab, error) {
	f, err := os.Open(path)
	if err != nil {
		return Lab{}, fileError(path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, vmspec.MaxSpecSize+1))
	if err != nil {
		return Lab{}, fileError(path, err)
	}
	return Parse(data, path)
}

// IsBuiltinName reports whether ref names a built-in lab rather than a
// file: a word without '/' and without a .yaml or .yml suffix.
func IsBuiltinName(ref string) bool {
	return ref != "" && !strings.ContainsRune(ref, '/') && !strings.HasSuffix(ref, ".yaml") && !strings.HasSuffix(ref, ".yml")
}

// LoadRef reads a built-in lab by name (capstone, duo) or a lab file by
// path.
func LoadRef(ref string) (Lab, error) {
	if !IsBuiltinName(ref) {
		return Load(ref)
	}
	data, err := templates.Lab(ref)
	if err != nil {
		return Lab{}, &errs.FieldError{Field: "lab", Value: ref, Problem: "is not a built-in lab",
			Fix: "use one of " + strings.Join(templates.LabNames(), ", ") + ", or the path of a lab file (such as examples/office.lab.yaml)"}
	}
	l, err := Parse(data, "")
	if err != nil {
		return Lab{}, fmt.Errorf("built-in lab %s: %w", ref, err)
	}
	return l, nil
}

// fileError says the lab file at path could not be read.
func fileError(path string, err error) error {
	return &errs.FileError{What: "lab file", Path: path, Err: err,
		Fix: "give the path of a lab file that exists, such as examples/office.lab.yaml"}
}
