// Package vm runs vmnet's guests over libvirt: up (ensure what the spec
// requires, image, overlay, DHCP reservations, domain; wait until the guest is
// ready), down (remove all of it, found by ownership records, also after an up
// that was killed midway), list, console and exec; and OfLab, the VMs a lab
// made (their metadata and records carry the lab's name, Spec.Lab). Ups and
// Downs of different VMs may run at once on one Env (see shared). Deciding
// names, MACs and XML is the pure domain package's job; this package does
// the side effects.
package vm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"vmnet/internal/accel"
	"vmnet/internal/bridge"
	"vmnet/internal/cloudinit"
	"vmnet/internal/domain"
	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/network"
	"vmnet/internal/virt"
	"vmnet/internal/vmspec"
)

// Env is what the lifecycle works with.
type Env struct {
	// Conn reaches libvirtd: LibvirtConn(conn) over a libvirt connection.
	Conn     Libvirt
	StateDir string // domain.DefaultStateDir unless a test says otherwise
	// QemuLogDir is libvirt's per-domain log directory; "" is DefaultQemuLogDir.
	QemuLogDir string
	// Image returns the image for a spec, building it when needed.
	Image func(ctx context.Context, spec vmspec.Spec) (domain.ImageInfo, error)
	// Accel is the accelerator choice (accel.Probe).
	Accel accel.Choice
	// Bridges and Routes reach the namespace libvirtd runs in, to ensure the
	// bridges a profile requires and to check network subnets.
	Bridges bridge.Kernel
	Routes  network.Kernel
	HostID  string
	// Progress gets one line per step, for people and CI logs.
	Progress io.Writer
}

func (e Env) say(format string, a ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, format+"\n", a...)
	}
}

// NICInfo is one NIC of a running or planned VM.
type NICInfo struct {
	Index   int    `json:"index"`
	Network string `json:"network,omitempty"`
	Bridge  string `json:"bridge,omitempty"`
	Parent  string `json:"parent,omitempty"` // macvtap: the host interface the NIC is on
	Mode    string `json:"mode,omitempty"`   // macvtap: bridge, vepa, private or passthrough
	MAC     string `json:"mac"`
	Address string `json:"address,omitempty"` // without prefix
	Source  string `json:"source,omitempty"`  // static, reservation, lease
}

// UpResult says what Up did.
type UpResult struct {
	Name    string        `json:"name"`
	Outcome string        `json:"outcome"` // created, started, unchanged
	Accel   accel.Choice  `json:"accel"`
	Changes []string      `json:"changes"`
	NICs    []NICInfo     `json:"nics"`
	Ready   time.Duration `json:"-"`      // from start to ready; JSON output has ready_seconds
	Phases  []Phase       `json:"phases"` // where the time went
}

// Phase is one timed step of Up.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

func readyName(plan domain.Plan) string {
	switch {
	case plan.Ready.Console != "":
		return "console line"
	case plan.Ready.Lease:
		return "lease"
	}
	return "agent"
}

// writeSeed writes the NoCloud seed of a stock cloud image: the capstone
// application, installed by cloud-init (which needs the internet). It holds
// no secret: those come through the guest agent, as for vmnet's own images.
func writeSeed(plan domain.Plan) error {
	g := cloudinit.Guest{Hostname: plan.Name}
	for i, n := range plan.NICs {
		nic := cloudinit.NIC{Name: fmt.Sprintf("eth%d", i), MAC: n.MAC, Address: n.Address}
		if n.Address.IsValid() {
			nic.Gateway = n.Gateway
		}
		g.NICs = append(g.NICs, nic)
	}
	seed, err := cloudinit.Capstone(g)
	if err != nil {
		return fmt.Errorf("cloud-init seed for %q: %w", plan.Name, err)
	}
	_, err = cloudinit.EnsureISO(plan.Seed, seed)
	return err
}

// finishProvisioning provisions the guest through its agent unless the
// record says it was done. A cloud image first finishes its own cloud-init
// run (package installs, the container rootfs), then gets the same files
// and commands as vmnet's images.
func finishProvisioning(ctx context.Context, e Env, dom Domain, plan domain.Plan, spec vmspec.Spec, res *UpResult) error {
	if len(spec.Provision.Files) == 0 && len(spec.Provision.Commands) == 0 {
		return nil
	}
	if plan.Seed != "" {
		spec.Provision.Commands = append([]string{"cloud-init status --wait >/dev/null || true"}, spec.Provision.Commands...)
	}
	rec, ok, err := readRecord(plan.Dir)
	if err != nil || !ok || rec.Provisioned == plan.SpecHash {
		return err
	}
	if err := provision(ctx, e, dom, plan.Dir, spec, res); err != nil {
		return err
	}
	rec.Provisioned = plan.SpecHash
	return writeRecord(plan.Dir, rec)
}

// ensureRequired makes the networks and bridges a profile needs when they
// are missing, and uses them as they are when they exist.
func ensureRequired(ctx context.Context, e Env, spec vmspec.Spec, res *UpResult, u *undoList) error {
	for _, b := range spec.Requires.Bridges {
		if _, err := e.Bridges.LinkByName(b.Name); err == nil {
			continue
		}
		bs := bridge.Spec{Name: b.Name, Addresses: []netip.Prefix{b.Address}, Lab: spec.Lab}
		r, err := bridge.Ensure(ctx, e.Bridges, bs, bridge.Options{HostID: e.HostID})
		if err != nil {
			return fmt.Errorf("bridge %s that %s needs: %w", b.Name, spec.Name, err)
		}
		if !r.Unchanged() {
			u.push(undoBridge(e, spec.Name, b.Name))
			res.Changes = append(res.Changes, fmt.Sprintf("create bridge %s (%s)", b.Name, b.Address))
			e.say("created bridge %s with %s", b.Name, b.Address)
		}
	}
	for _, n := range spec.Requires.Networks {
		if active, err := e.Conn.NetworkActive(n.Name); err == nil && active {
			continue
		}
		mode := network.Mode(n.Mode)
		if mode == "" {
			mode = network.Mode(vmspec.ModeNAT)
		}
		r, err := e.Conn.EnsureNetwork(ctx, network.Spec{Name: n.Name, Mode: mode, CIDR: n.CIDR, Lab: spec.Lab}, e.Routes)
		if err != nil {
			return fmt.Errorf("network %s that %s needs: %w", n.Name, spec.Name, err)
		}
		if r.Outcome == network.Created {
			u.push(undoNetwork(e, spec.Name, n.Name))
		}
		if r.Outcome != network.Unchanged {
			res.Changes = append(res.Changes, fmt.Sprintf("create %s network %s (%s)", mode, n.Name, n.CIDR))
			e.say("created %s network %s on %s", mode, n.Name, n.CIDR)
		}
	}
	return nil
}

// checkMACs refuses NIC MACs that another domain already uses.
func checkMACs(conn Libvirt, plan domain.Plan) error {
	doms, err := conn.ListDomains()
	if err != nil {
		return virt.Err("list domains", err)
	}
	existing := map[string]string{}
	for _, d := range doms {
		name, _ := d.Name()
		if name != plan.Name {
			if x, err := d.XMLDesc(0); err == nil {
				for _, mac := range macsIn(x) {
					existing[mac] = name
				}
			}
		}
		d.Free()
	}
	return domain.CheckMACs(plan, existing)
}

// prepare makes the VM's directory, record, disks and DHCP reservations.
// The record comes first so that down finds everything after a crash.
func prepare(e Env, plan domain.Plan, res *UpResult) (record, error) {
	rec := record{Owner: domain.Owner, Name: plan.Name, Hash: plan.SpecHash, Lab: plan.Lab, Agent: plan.Ready.Agent}
	for _, f := range plan.Files() {
		rec.Files = append(rec.Files, f.Path)
	}
	for _, n := range plan.NICs {
		rec.NICs = append(rec.NICs, nicRecord{Network: n.Network, Bridge: n.Bridge, Parent: n.Direct.Parent, Mode: n.Direct.ModeOrDefault(), MAC: n.MAC.String(), Static: n.Address})
	}
	if old, ok, err := readRecord(plan.Dir); err != nil {
		return rec, err
	} else if ok {
		// Keep the reservations an earlier run made: addresses stay stable.
		for i := range rec.NICs {
			for _, o := range old.NICs {
				if o.MAC == rec.NICs[i].MAC && o.Network == rec.NICs[i].Network {
					rec.NICs[i].Reserved = o.Reserved
				}
			}
		}
	}
	// 0755 whatever the umask: QEMU, as libvirt-qemu, must reach the overlay
	// and seed in it (the record and secrets inside are 0600 and 0700).
	if err := fsperm.MkdirAll(plan.Dir, 0o755); err != nil {
		return rec, fmt.Errorf("make %s: %w", plan.Dir, err)
	}
	if err := writeRecord(plan.Dir, rec); err != nil {
		return rec, err
	}
	if plan.Seed != "" {
		if err := writeSeed(plan); err != nil {
			return rec, err
		}
		res.Changes = append(res.Changes, "write cloud-init seed "+plan.Seed)
	}
	if o := plan.Overlay; o != nil {
		if _, err := os.Stat(o.Path); errors.Is(err, os.ErrNotExist) {
			if err := qemuImg("create", "-q", "-f", "qcow2", "-F", o.BackingFormat, "-b", o.Backing, o.Path); err != nil {
				return rec, err
			}
			// The guest writes its secrets to this disk: nobody but its owner
			// (libvirt hands it to the QEMU user) may read it.
			if err := os.Chmod(o.Path, 0o600); err != nil {
				return rec, err
			}
			res.Changes = append(res.Changes, "create overlay "+o.Path)
		}
	}
	for _, d := range plan.DataDisks {
		if _, err := os.Stat(d.Path); errors.Is(err, os.ErrNotExist) {
			if err := qemuImg("create", "-q", "-f", "qcow2", d.Path, fmt.Sprint(int64(d.Size))); err != nil {
				return rec, err
			}
			if err := os.Chmod(d.Path, 0o600); err != nil {
				return rec, err
			}
			res.Changes = append(res.Changes, "create disk "+d.Path)
		}
	}
	return rec, reserveAll(e, plan, &rec, res)
}

// reserveAll gives each of the record's DHCP NICs on a network its
// reservation, saving the record after each. It runs holding shared, so
// two VMs never pick the same free address.
func reserveAll(e Env, plan domain.Plan, rec *record, res *UpResult) error {
	var statics map[netip.Addr]bool
	for i := range rec.NICs {
		n := &rec.NICs[i]
		if n.Network == "" || n.Static.IsValid() {
			continue
		}
		if statics == nil {
			var err error
			if statics, err = staticAddrs(e.StateDir, *rec); err != nil {
				return err
			}
		}
		ip, err := reserve(e.Conn, plan.Name, n, statics)
		if err != nil {
			return err
		}
		if n.Reserved != ip {
			n.Reserved = ip
			res.Changes = append(res.Changes, fmt.Sprintf("reserve %s for %s on %s", ip, n.MAC, n.Network))
			e.say("reserved %s on %s for NIC %s", ip, n.Network, n.MAC)
		}
		// Saved after each reservation: a crash right after still finds it.
		if err := writeRecord(plan.Dir, *rec); err != nil {
			return err
		}
	}
	return nil
}

// staticAddrs are the static NIC addresses of this VM (rec) and of every
// other VM with a record: guests configure them themselves, so no DHCP
// <host> entry shows them, and a reservation must not hand one out.
func staticAddrs(stateDir string, rec record) (map[netip.Addr]bool, error) {
	others, err := otherRecords(stateDir, rec.Name)
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]bool{}
	for _, r := range append(others, rec) {
		for _, n := range r.NICs {
			if n.Network != "" && n.Static.IsValid() {
				out[n.Static.Addr()] = true
			}
		}
	}
	return out, nil
}

// reserve gives a network NIC a predictable address: a DHCP reservation in
// the lower half of the subnet (outside vmnet's default DHCP pool), derived
// from the MAC, moving on when another host, or a VM's static address
// (statics), holds it.
func reserve(conn Libvirt, vmName string, n *nicRecord, statics map[netip.Addr]bool) (netip.Addr, error) {
	hosts, err := conn.Hosts(n.Network)
	if err != nil {
		return netip.Addr{}, err
	}
	taken := maps.Clone(statics)
	if taken == nil {
		taken = map[netip.Addr]bool{}
	}
	for _, h := range hosts {
		if strings.EqualFold(h.MAC, n.MAC) {
			return h.IP, nil // already reserved (an earlier, interrupted run)
		}
		taken[h.IP] = true
	}
	cidr, err := networkCIDR(conn, n.Network)
	if err != nil {
		return netip.Addr{}, err
	}
	half := 1 << (cidr.Addr().BitLen() - cidr.Bits() - 1)
	first, span := 10, half-10 // .2-.9 stay free for hand-made static hosts
	if span < 1 {
		first, span = 2, max(half-2, 1)
	}
	sum := sha256.Sum256([]byte(n.MAC))
	start := int(binary.BigEndian.Uint32(sum[:4]) % uint32(span))
	for i := 0; i < span; i++ {
		ip, err := network.HostAddress(cidr, first+(start+i)%span)
		if err != nil {
			return netip.Addr{}, err
		}
		if taken[ip] {
			continue
		}
		if _, err := conn.AddHost(n.Network, n.MAC, ip, vmName); err != nil {
			return netip.Addr{}, err
		}
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("network %q has no free address for a reservation", n.Network)
}

// define turns the plan into XML and defines it.
func define(conn Libvirt, plan domain.Plan) (Domain, error) {
	d, err := domain.Build(plan)
	if err != nil {
		return nil, err
	}
	x, err := d.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal domain %q: %w", plan.Name, err)
	}
	dom, err := conn.DefineDomain(x)
	if err != nil {
		return nil, virt.Err(fmt.Sprintf("define domain %q", plan.Name), err)
	}
	return dom, nil
}

func qemuImg(args ...string) error {
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DownResult says what Down removed.
type DownResult struct {
	Name    string   `json:"name"`
	Outcome string   `json:"outcome"` // removed, absent
	Changes []string `json:"changes"`
}

// Foreign is the error for a domain vmnet did not make.
func Foreign(name string) error {
	return &errs.ForeignError{Kind: "domain", Name: name, Fix: "choose another VM name, or manage that domain with virsh"}
}
