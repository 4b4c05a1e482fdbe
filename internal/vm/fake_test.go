package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirt"
	"libvirt.org/go/libvirtxml"

	"vmnet/internal/network"
)

// fakeLibvirt is a Libvirt in memory, for failure injection the real
// libvirtd cannot produce. fail maps a method name ("DefineDomain",
// "Domain.Create", or "QemuAgentCommand guest-exec" for one agent command)
// to the error that call returns.
type fakeLibvirt struct {
	mu     sync.Mutex
	fail   map[string]error
	doms   map[string]*fakeDom
	nets   map[string]*fakeNet
	logDir string // Create writes NAME.log here, as libvirt's QEMU driver does
	// delay is how long each network call waits before it runs, so that
	// Ups running at once interleave as they would on a real libvirtd.
	// Set it before they start.
	delay time.Duration
	// ensured counts the EnsureNetwork calls that found no network to
	// converge and created it; calls counts every call by method.
	ensured int
	calls   map[string]int
}

type fakeDom struct {
	name   string
	xml    string
	active bool
	saved  bool // a managed save image exists
	// restored counts the starts that restored from the save image.
	restored int
	// agent lists the guest-agent commands it answered, by execute name,
	// with guest-exec's command line; files is what guest-file-write
	// wrote, by the path guest-file-open named; inputs is each guest-exec's
	// input-data (its standard input), in order.
	agent  []string
	files  map[string][]byte
	open   string
	inputs [][]byte
}

type fakeNet struct {
	info  network.Info
	hosts []network.Reservation
}

var (
	_ Libvirt = (*fakeLibvirt)(nil)
	_ Domain  = fakeDomain{}
)

func newFake(logDir string) *fakeLibvirt {
	return &fakeLibvirt{fail: map[string]error{}, doms: map[string]*fakeDom{}, nets: map[string]*fakeNet{}, logDir: logDir}
}

// err is the failure injected for method, and counts the call; f.mu held.
func (f *fakeLibvirt) err(method string) error {
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	return f.fail[method]
}

// slow waits f.delay, before the call takes f.mu.
func (f *fakeLibvirt) slow() { time.Sleep(f.delay) }

func notFound(code libvirt.ErrorNumber, what string) error {
	return libvirt.Error{Code: code, Domain: libvirt.FROM_NONE, Message: what + " not found", Level: libvirt.ERR_ERROR}
}

func (f *fakeLibvirt) LookupDomain(name string) (Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("LookupDomain"); err != nil {
		return nil, err
	}
	d, ok := f.doms[name]
	if !ok {
		return nil, notFound(libvirt.ERR_NO_DOMAIN, "domain "+name)
	}
	return fakeDomain{f, d}, nil
}

func (f *fakeLibvirt) DefineDomain(x string) (Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("DefineDomain"); err != nil {
		return nil, err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(x); err != nil {
		return nil, err
	}
	fd := &fakeDom{name: d.Name, xml: x}
	f.doms[d.Name] = fd
	return fakeDomain{f, fd}, nil
}

func (f *fakeLibvirt) ListDomains() ([]Domain, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("ListDomains"); err != nil {
		return nil, err
	}
	var out []Domain
	for _, d := range f.doms {
		out = append(out, fakeDomain{f, d})
	}
	return out, nil
}

func (f *fakeLibvirt) NetworkActive(name string) (bool, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("NetworkActive"); err != nil {
		return false, err
	}
	n, ok := f.nets[name]
	if !ok {
		return false, notFound(libvirt.ERR_NO_NETWORK, "network "+name)
	}
	return n.info.Active, nil
}

func (f *fakeLibvirt) EnsureNetwork(ctx context.Context, s network.Spec, k network.Kernel) (*network.Result, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("EnsureNetwork"); err != nil {
		return nil, err
	}
	if _, ok := f.nets[s.Name]; ok {
		return &network.Result{Name: s.Name, Outcome: network.Unchanged}, nil
	}
	r := network.DefaultDHCPRange(s.CIDR)
	f.ensured++
	f.nets[s.Name] = &fakeNet{info: network.Info{
		Name: s.Name, Owner: "vmnet", Lab: s.Lab, Mode: s.Mode, Bridge: network.BridgeName(s.Name),
		CIDR: s.CIDR.Masked().String(), Gateway: network.Gateway(s.CIDR).String(),
		DHCPRange: r[0].String() + "-" + r[1].String(), Active: true, Persistent: true, Autostart: true,
	}}
	return &network.Result{Name: s.Name, Outcome: network.Created, Changes: []string{"define network " + s.Name}}, nil
}

func (f *fakeLibvirt) DeleteNetwork(name string) (*network.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("DeleteNetwork"); err != nil {
		return nil, err
	}
	if _, ok := f.nets[name]; !ok {
		return &network.Result{Name: name, Outcome: network.Absent}, nil
	}
	delete(f.nets, name)
	return &network.Result{Name: name, Outcome: network.Deleted}, nil
}

func (f *fakeLibvirt) Networks() ([]network.Info, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("Networks"); err != nil {
		return nil, err
	}
	out := []network.Info{}
	for _, n := range f.nets {
		in := n.info
		in.Hosts = len(n.hosts)
		out = append(out, in)
	}
	return out, nil
}

// net is the network name, or network's own NotFoundError.
func (f *fakeLibvirt) net(name string) (*fakeNet, error) {
	n, ok := f.nets[name]
	if !ok {
		return nil, &network.NotFoundError{Name: name}
	}
	return n, nil
}

func (f *fakeLibvirt) Hosts(net string) ([]network.Reservation, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("Hosts"); err != nil {
		return nil, err
	}
	n, err := f.net(net)
	if err != nil {
		return nil, err
	}
	return slices.Clone(n.hosts), nil
}

func (f *fakeLibvirt) AddHost(net, mac string, ip netip.Addr, hostname string) (bool, error) {
	f.slow()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("AddHost"); err != nil {
		return false, err
	}
	n, err := f.net(net)
	if err != nil {
		return false, err
	}
	mac = strings.ToLower(mac)
	n.hosts = slices.DeleteFunc(n.hosts, func(h network.Reservation) bool { return h.MAC == mac })
	n.hosts = append(n.hosts, network.Reservation{MAC: mac, IP: ip, Hostname: hostname})
	return true, nil
}

func (f *fakeLibvirt) RemoveHost(net, mac string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("RemoveHost"); err != nil {
		return false, err
	}
	n, ok := f.nets[net]
	if !ok {
		return false, nil
	}
	before := len(n.hosts)
	n.hosts = slices.DeleteFunc(n.hosts, func(h network.Reservation) bool { return h.MAC == strings.ToLower(mac) })
	return len(n.hosts) != before, nil
}

func (f *fakeLibvirt) Leases(net string) (map[string]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("Leases"); err != nil {
		return nil, err
	}
	if _, err := f.net(net); err != nil {
		return nil, err
	}
	return map[string]netip.Addr{}, nil
}

func (f *fakeLibvirt) DHCPLeases(net string) ([]libvirt.NetworkDHCPLease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.err("DHCPLeases"); err != nil {
		return nil, err
	}
	return nil, nil
}

// fakeDomain is a handle on a fakeDom.
type fakeDomain struct {
	f *fakeLibvirt
	d *fakeDom
}

func (d fakeDomain) call(method string) error {
	if err := d.f.err("Domain." + method); err != nil {
		return err
	}
	if d.f.doms[d.d.name] != d.d {
		return notFound(libvirt.ERR_NO_DOMAIN, "domain "+d.d.name)
	}
	return nil
}

func (d fakeDomain) QemuAgentCommand(cmd string, _ libvirt.DomainQemuAgentCommandTimeout, _ uint32) (string, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	var req struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal([]byte(cmd), &req); err != nil {
		return "", err
	}
	if err := d.call("QemuAgentCommand"); err != nil {
		return "", err
	}
	if err := d.f.err("QemuAgentCommand " + req.Execute); err != nil {
		return "", err
	}
	if !d.d.active {
		return "", libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	return d.d.answer(cmd, req.Execute)
}

// answer is the fake guest agent's reply to cmd.
func (d *fakeDom) answer(cmd, execute string) (string, error) {
	var args struct {
		Arguments struct {
			Path  string   `json:"path"`
			Buf   []byte   `json:"buf-b64"`
			Arg   []string `json:"arg"`
			Input []byte   `json:"input-data"`
		} `json:"arguments"`
	}
	json.Unmarshal([]byte(cmd), &args)
	a := args.Arguments
	d.agent = append(d.agent, strings.TrimSpace(execute+" "+strings.Join(a.Arg, " ")))
	switch execute {
	case "guest-ping", "guest-set-time":
		return `{"return":{}}`, nil
	case "guest-file-open":
		if d.files == nil {
			d.files = map[string][]byte{}
		}
		d.open, d.files[a.Path] = a.Path, nil
		return `{"return":7}`, nil
	case "guest-file-write":
		d.files[d.open] = append(d.files[d.open], a.Buf...)
		return fmt.Sprintf(`{"return":{"count":%d}}`, len(a.Buf)), nil
	case "guest-file-close":
		return `{"return":{}}`, nil
	case "guest-exec":
		if a.Input != nil {
			d.inputs = append(d.inputs, a.Input)
		}
		return `{"return":{"pid":1}}`, nil
	case "guest-exec-status":
		return `{"return":{"exited":true,"exitcode":0}}`, nil
	}
	return "", libvirt.Error{Code: libvirt.ERR_ARGUMENT_UNSUPPORTED, Message: "the fake agent has no " + execute}
}

func (d fakeDomain) Name() (string, error) { return d.d.name, nil }

func (d fakeDomain) State() (libvirt.DomainState, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("State"); err != nil {
		return 0, err
	}
	if d.d.active {
		return libvirt.DOMAIN_RUNNING, nil
	}
	return libvirt.DOMAIN_SHUTOFF, nil
}

func (d fakeDomain) IsActive() (bool, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("IsActive"); err != nil {
		return false, err
	}
	return d.d.active, nil
}

func (d fakeDomain) Create() error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("Create"); err != nil {
		return err
	}
	if d.d.active {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is already running"}
	}
	d.d.active = true
	if d.d.saved {
		d.d.saved, d.d.restored = false, d.d.restored+1
	}
	if d.f.logDir != "" {
		os.MkdirAll(d.f.logDir, 0o755)
		os.WriteFile(filepath.Join(d.f.logDir, d.d.name+".log"), []byte("qemu started\n"), 0o600)
	}
	return nil
}

func (d fakeDomain) ManagedSave() error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("ManagedSave"); err != nil {
		return err
	}
	if !d.d.active {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	d.d.active, d.d.saved = false, true
	return nil
}

func (d fakeDomain) HasManagedSave() (bool, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("HasManagedSave"); err != nil {
		return false, err
	}
	return d.d.saved, nil
}

func (d fakeDomain) Destroy() error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("Destroy"); err != nil {
		return err
	}
	if !d.d.active {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "domain is not running"}
	}
	d.d.active = false
	return nil
}

func (d fakeDomain) Undefine(libvirt.DomainUndefineFlagsValues) error {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("Undefine"); err != nil {
		return err
	}
	if d.d.active {
		return libvirt.Error{Code: libvirt.ERR_OPERATION_INVALID, Message: "a running domain stays transient in this fake"}
	}
	delete(d.f.doms, d.d.name)
	return nil
}

func (d fakeDomain) XMLDesc(libvirt.DomainXMLFlags) (string, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if err := d.call("XMLDesc"); err != nil {
		return "", err
	}
	return d.d.xml, nil
}

func (d fakeDomain) OpenConsole() (ConsoleStream, error) {
	return nil, errors.New("the fake has no console")
}

func (d fakeDomain) Free() error { return nil }
