package lab

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"vmnet/internal/vmspec"
)

// Container network modes: a container's network is one of these words or
// the name of one of its node's container-networks.
const (
	ModePodman  = "podman"  // podman's default bridge network (podman0, 10.88.0.0/16)
	ModeHost    = "host"    // the VM's own network namespace
	ModeNone    = "none"    // only lo
	ModeMacvlan = "macvlan" // its own MAC and address on a lab network, on the guest NIC there
	ModeIPvlan  = "ipvlan"  // its own address on a lab network with the guest NIC's MAC (L2 mode)
	ModeBridge  = "bridge"  // a container-network of the node (a podman bridge network)
	ModePod     = "pod"     // a member of a podman pod: the pod's namespace
)

// Modes lists the words a container's network may be, for messages.
var Modes = []string{ModePodman, ModeHost, ModeNone, ModeMacvlan, ModeIPvlan}

// PodmanSubnet is podman's default network's subnet (podman 4.3 with
// netavark): vmnet gives containers on it fixed addresses from it.
var PodmanSubnet = netip.MustParsePrefix("10.88.0.0/16")

// ContainerImages are the images whose guests have a container rootfs
// built in, and where it is: containers run from it (podman run --rootfs).
var ContainerImages = map[string]string{"capstone": "/var/lib/vmnet/app-rootfs"}

// ContainerNetwork is a podman network a node's containers may join.
type ContainerNetwork struct {
	Driver string       `yaml:"driver"` // bridge (the default, and the only one so far)
	Subnet netip.Prefix `yaml:"subnet"` // IPv4; podman's gateway is its first address
}

// Container is a podman container inside a node's guest.
type Container struct {
	// Network is a container-network of the node, podman, host, none or
	// macvlan; empty with pod (and then podman's default without pod).
	Network string       `yaml:"network"`
	Parent  string       `yaml:"parent"`  // macvlan, ipvlan: the lab network of one of the node's NICs
	Address netip.Prefix `yaml:"address"` // macvlan, ipvlan: required; a bridge network: optional (vmnet picks one)
	// IPvlanMode is ipvlan's mode: l2 (the default: the child answers ARP
	// with the parent's MAC) or l3 (it answers no ARP: the host reaches it
	// by a route via the parent NIC's static address, which lab up adds).
	IPvlanMode string   `yaml:"mode"`
	Pod        string   `yaml:"pod"`     // a pod name: the pod's members share one network namespace
	Command    string   `yaml:"command"` // run with sh -c; default: an HTTP server on listen
	Listen     int      `yaml:"listen"`  // the port the command serves, which the derived checks probe
	Ports      []string `yaml:"ports"`   // published as podman -p does: "HOSTPORT:CONTAINERPORT" or "PORT"
	// Restart is podman run --restart's policy: no (the default: a
	// container that exits stays down and its checks fail), on-failure,
	// on-failure:N (at most N restarts), always or unless-stopped.
	Restart string `yaml:"restart"`
	Health  Health `yaml:"health"` // podman's health check; lab up waits until it passes
	// Image is a registry reference (docker.io/library/nginx:1.25,
	// 192.0.2.1:5000/web:1) the guest pulls at lab up and runs instead of
	// the built-in rootfs: its own entrypoint and command, or command
	// with /bin/sh -c when set. Needs the registry reachable from the
	// guest; a tag is pulled once (a second lab up keeps what it has).
	Image string `yaml:"image"`
	// Insecure pulls image with podman's --tls-verify=false: a registry
	// over plain HTTP or with a certificate the guest does not trust.
	Insecure bool `yaml:"insecure"`
}

// imageRef is what image may be: [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST],
// the path in lower case, as the distribution reference grammar has it.
var imageRef = regexp.MustCompile(`^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)

// ValidImageRef reports whether s is a registry reference podman pulls.
func ValidImageRef(s string) bool { return imageRef.MatchString(s) }

// Health is a container's health check, as the capstone's containers have
// theirs: podman runs Cmd (with sh -c) every Interval and marks the
// container unhealthy after Retries failures in a row. podman 4.3 only
// marks it (podman ps shows it; --health-on-failure came with 4.6): a
// restart policy acts on exits.
type Health struct {
	Cmd         string `yaml:"cmd"`          // required: exits 0 when the container is healthy
	Interval    string `yaml:"interval"`     // between checks; default 30s (the capstone's)
	Timeout     string `yaml:"timeout"`      // one check's limit; default 10s
	Retries     int    `yaml:"retries"`      // failures in a row before unhealthy; default 3
	StartPeriod string `yaml:"start-period"` // failures in this time after start do not count; default 0s
}

// Set reports whether the lab gives a health check (any of its keys).
func (h Health) Set() bool { return h != Health{} }

// RestartPolicies are the words restart may be (and on-failure:N).
var RestartPolicies = []string{"no", "on-failure", "always", "unless-stopped"}

// HealthDefaults is the capstone's health timing, for what a lab's
// health leaves out.
var HealthDefaults = Health{Interval: "30s", Timeout: "10s", Retries: 3, StartPeriod: "0s"}

// Timing is h with HealthDefaults filled in where h leaves them out.
func (h Health) Timing() Health {
	d := HealthDefaults
	d.Cmd = h.Cmd
	if h.Interval != "" {
		d.Interval = h.Interval
	}
	if h.Timeout != "" {
		d.Timeout = h.Timeout
	}
	if h.Retries != 0 {
		d.Retries = h.Retries
	}
	if h.StartPeriod != "" {
		d.StartPeriod = h.StartPeriod
	}
	return d
}

// ipvlan's modes (Container.IPvlanMode).
const (
	IPvlanL2 = "l2"
	IPvlanL3 = "l3"
)

// IsIPvlanL3 reports whether the container is on ipvlan in l3 mode.
func (c Container) IsIPvlanL3() bool { return c.Mode() == ModeIPvlan && c.IPvlanMode == IPvlanL3 }

// L3Route is a host route an ipvlan l3 container needs: its address via
// its parent NIC's static address.
type L3Route struct {
	Node, Container string
	Dst             netip.Prefix // the container's address, /32
	Via             netip.Addr   // the parent NIC's address
}

// L3Routes is the host routes node's ipvlan l3 containers need, in name
// order (Parse refuses an l3 parent NIC without a static address).
func (l Lab) L3Routes(node string) []L3Route {
	n := l.Nodes[node]
	var out []L3Route
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		if i := n.NICFor(c.Parent); c.IsIPvlanL3() && i >= 0 && n.NICs[i].Address.IsValid() {
			out = append(out, L3Route{Node: node, Container: name, Dst: netip.PrefixFrom(c.Address.Addr(), 32), Via: n.NICs[i].Address.Addr()})
		}
	}
	return out
}

// Mode is the container's network mode: one of the Mode constants.
func (c Container) Mode() string {
	switch {
	case c.Pod != "":
		return ModePod
	case c.Network == "", c.Network == ModePodman:
		return ModePodman
	case slices.Contains(Modes, c.Network):
		return c.Network
	}
	return ModeBridge
}

// OnLabNetwork reports whether the container has an address of its own
// on a lab network (macvlan, ipvlan) rather than behind the VM.
func (c Container) OnLabNetwork() bool {
	m := c.Mode()
	return m == ModeMacvlan || m == ModeIPvlan
}

// Port is one published port: the VM's port and the container's.
type Port struct{ Host, Container int }

// ParsePort reads "HOST:CONTAINER" or "PORT" (both the same), each 1-65535.
func ParsePort(s string) (Port, error) {
	h, c, pair := strings.Cut(s, ":")
	if !pair {
		c = h
	}
	hp, err1 := strconv.Atoi(h)
	cp, err2 := strconv.Atoi(c)
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || cp < 1 || cp > 65535 {
		return Port{}, fmt.Errorf("is not HOSTPORT:CONTAINERPORT or PORT with ports 1-65535")
	}
	return Port{Host: hp, Container: cp}, nil
}

// Ports is the container's published ports (those that parse).
func (c Container) PublishedPorts() []Port {
	var out []Port
	for _, s := range c.Ports {
		if p, err := ParsePort(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// ContainerNames is the node's containers, sorted by name: the order vmnet
// starts them, gives them addresses and checks them in.
func (n Node) ContainerNames() []string {
	names := make([]string, 0, len(n.Containers))
	for name := range n.Containers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Pods is the node's pods, sorted, each with its members in name order.
func (n Node) Pods() map[string][]string {
	out := map[string][]string{}
	for _, name := range n.ContainerNames() {
		if p := n.Containers[name].Pod; p != "" {
			out[p] = append(out[p], name)
		}
	}
	return out
}

// PodNames is the node's pods, sorted.
func (n Node) PodNames() []string {
	var out []string
	for p := range n.Pods() {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ContainerSubnet is the subnet of the container's network: a
// container-network's, podman's default, the parent lab network's for
// macvlan; invalid for host, none and pod members.
func (l Lab) ContainerSubnet(node, name string) netip.Prefix {
	n := l.Nodes[node]
	c := n.Containers[name]
	switch c.Mode() {
	case ModePodman:
		return PodmanSubnet
	case ModeBridge:
		return n.ContainerNetworks[c.Network].Subnet.Masked()
	case ModeMacvlan, ModeIPvlan:
		return l.Networks[c.Parent].Subnet()
	}
	return netip.Prefix{}
}

// ContainerAddrs is the address of each container of node that has one of
// its own: macvlan and bridge containers with address get it; the others on
// a bridge network get one from a hash of their name (hashedFree). Host,
// none and pod members have none.
func (l Lab) ContainerAddrs(node string) map[string]netip.Addr {
	out, _ := l.addrPlan(node)
	return out
}

// PodAddrs is the address of each of node's pods on podman's default
// network, from a hash of the pod's name as for containers. vmnet gives
// them (podman pod create --ip), so that podman's own pick cannot take an
// address a container started later was given.
func (l Lab) PodAddrs(node string) map[string]netip.Addr {
	_, pods := l.addrPlan(node)
	return pods
}

// addrPlan is ContainerAddrs and PodAddrs. An address comes from the
// name, not from the place in name order: lab up keeps running the
// containers whose settings are unchanged, so a container added to the lab
// must not be planned onto an address one of them holds (podman refuses:
// "IPAM error: requested ip address ... is already allocated"), nor move
// them. Names whose hashes meet are probed in name order: with a /24 and a
// few containers that is rare, and it is the one way an added container
// can still move another.
func (l Lab) addrPlan(node string) (map[string]netip.Addr, map[string]netip.Addr) {
	n := l.Nodes[node]
	out := map[string]netip.Addr{}
	taken := map[netip.Addr]bool{}
	for _, name := range n.ContainerNames() {
		if c := n.Containers[name]; c.Address.IsValid() {
			out[name], taken[c.Address.Addr()] = c.Address.Addr(), true
		}
	}
	for _, name := range n.ContainerNames() {
		c := n.Containers[name]
		subnet := l.ContainerSubnet(node, name)
		if c.Address.IsValid() || !subnet.IsValid() || c.OnLabNetwork() {
			continue
		}
		out[name] = hashedFree(subnet, "container "+name, taken)
	}
	pods := map[string]netip.Addr{}
	for _, pod := range n.PodNames() {
		pods[pod] = hashedFree(PodmanSubnet, "pod "+pod, taken)
	}
	return out, pods
}

// hashedFree takes an address of IPv4 subnet from .2 up to the one before
// the broadcast address (podman's gateway is .1): the one key's SHA-256
// picks, or the next one not taken after it (wrapping round); invalid
// when the subnet has none free.
func hashedFree(subnet netip.Prefix, key string, taken map[netip.Addr]bool) netip.Addr {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() > 30 {
		return netip.Addr{}
	}
	size := uint64(1)<<(32-subnet.Bits()) - 3 // all but the network, gateway and broadcast addresses
	b := subnet.Addr().As4()
	base := uint64(binary.BigEndian.Uint32(b[:])) + 2
	sum := sha256.Sum256([]byte(key))
	start := binary.BigEndian.Uint64(sum[:8]) % size
	for i := uint64(0); i < size; i++ {
		binary.BigEndian.PutUint32(b[:], uint32(base+(start+i)%size))
		if a := netip.AddrFrom4(b); !taken[a] {
			taken[a] = true
			return a
		}
	}
	return netip.Addr{}
}

// NICFor is the index of node's first NIC on lab network net, or -1.
func (n Node) NICFor(net string) int {
	return slices.IndexFunc(n.NICs, func(x NIC) bool { return x.Net == net })
}

// applyContainers makes a node with containers wait for its guest agent,
// which vmnet starts them through.
func applyContainers(s *vmspec.Spec, n Node) {
	if len(n.Containers) == 0 {
		return
	}
	if s.Ready.IsZero() {
		s.Ready = vmspec.Ready{Agent: true}
	}
	if s.Timeout == 0 {
		s.Timeout = vmspec.Duration(300 * time.Second)
	}
}

// AllContainers is every container a check may name on the node: its
// app's, then its own in name order (an app container's attachment entry
// names the app's container, listed once).
func (n Node) AllContainers() []string {
	out := slices.Clone(AppContainers[n.App])
	for _, name := range n.ContainerNames() {
		if !n.IsAppContainer(name) {
			out = append(out, name)
		}
	}
	return out
}

// AppAttachable are the containers of each built-in app that a node's
// containers map may give a macvlan attachment beside the app's own
// network: the capstone's api (the chapter's "macvlan for the API to get
// a real LAN IP"). db and proxy keep app-net alone.
var AppAttachable = map[string][]string{"capstone": {"api"}}

// IsAppContainer reports whether name is one of the node's app's
// containers: its entry under containers does not start a container, it
// attaches the app's own one to a macvlan network as well (AppAttachable).
func (n Node) IsAppContainer(name string) bool {
	return slices.Contains(AppContainers[n.App], name)
}

// AppAttachments is the node's entries under containers that name its
// app's containers, in name order: each a macvlan attachment of the app's
// container, which keeps the app's network too.
func (n Node) AppAttachments() []string {
	var out []string
	for _, name := range n.ContainerNames() {
		if n.IsAppContainer(name) {
			out = append(out, name)
		}
	}
	return out
}
