// Package doctor tells what this host can do for vmnet and what is missing,
// each finding with its fix. It only reads: it never changes the host.
package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"vmnet/internal/accel"
)

// Status of one check.
type Status string

// The statuses, from good to bad.
const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but something will bite (e.g. bridged guests blocked)
	Fail Status = "fail" // vmnet cannot do its job until fixed
)

// Finding is the result of one check.
type Finding struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Steps are the tests behind the finding and their answers (the KVM
	// probe's device check, CPU flags and test guest).
	Steps []string `json:"steps,omitempty"`
	// Links is the link types check's answer per kind.
	Links []LinkSupport `json:"links,omitempty"`
}

// Host is how the checks see the machine; tests point it at fakes of
// /proc and /dev and at fake commands.
type Host struct {
	Proc string // normally /proc
	Dev  string // normally /dev
	// Run runs a command and returns its combined output.
	Run func(ctx context.Context, name string, args ...string) (string, error)
	// Libvirt reports libvirtd's version, or why it cannot be reached.
	Libvirt func() (version string, err error)
	// KVM reports whether KVM really runs a guest, why, and the fix
	// (accel.Probe with accel.WantAuto).
	KVM func(ctx context.Context) (accel.Choice, error)
	// Links tries each kind of link the labs use (ProbeLinks); nil skips
	// the check.
	Links func() ([]LinkSupport, error)
}

// Real returns the Host for this machine, with the libvirt and KVM probes given.
func Real(libvirt func() (string, error), kvm func(context.Context) (accel.Choice, error)) Host {
	return Host{
		Proc: "/proc",
		Dev:  "/dev",
		Run: func(ctx context.Context, name string, args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
			return string(out), err
		},
		Libvirt: libvirt,
		KVM:     kvm,
		Links:   ProbeLinks,
	}
}

// Run performs every check, in the order a person would fix them.
func Run(ctx context.Context, h Host) []Finding {
	return []Finding{
		checkLibvirt(h),
		checkQEMU(ctx, h),
		checkKVM(ctx, h),
		checkDevice(h, "vhost-net", "vhost-net", "modprobe vhost_net (virtio-net then runs in the kernel, much faster)", Warn),
		checkDevice(h, "tun", "net/tun", "modprobe tun (libvirt needs it for every tap NIC)", Fail),
		checkBrNetfilter(h),
		checkForward(ctx, h),
		checkIPForward(h),
		checkLinks(h),
	}
}

// Worst returns the worst status among findings.
func Worst(fs []Finding) Status {
	worst := OK
	for _, f := range fs {
		if f.Status == Fail {
			return Fail
		}
		if f.Status == Warn {
			worst = Warn
		}
	}
	return worst
}

func checkLibvirt(h Host) Finding {
	f := Finding{Check: "libvirtd"}
	v, err := h.Libvirt()
	if err != nil {
		f.Status, f.Detail = Fail, err.Error()
		f.Fix = "run vmnet in a sandbox (vmnet sandbox up lab), or start libvirtd (virtlogd -d && libvirtd -d; apt-get install libvirt-daemon-system)"
		return f
	}
	f.Status, f.Detail = OK, "reachable, version "+v
	return f
}

func checkQEMU(ctx context.Context, h Host) Finding {
	f := Finding{Check: "qemu"}
	out, err := h.Run(ctx, "qemu-system-x86_64", "--version")
	if err != nil {
		f.Status, f.Detail, f.Fix = Fail, "qemu-system-x86_64 is not installed or does not run", "apt-get install qemu-system-x86"
		return f
	}
	line, _, _ := strings.Cut(out, "\n")
	f.Status, f.Detail = OK, strings.TrimSpace(line)
	return f
}

// checkKVM reports the accelerator probe's answer: its cause, its fix and
// each test it ran (device, KVM_CREATE_VM, CPU flags, test guest).
func checkKVM(ctx context.Context, h Host) Finding {
	f := Finding{Check: "kvm"}
	c, err := h.KVM(ctx)
	if err != nil {
		f.Status, f.Detail, f.Fix = Warn, "the KVM probe did not finish: "+err.Error(), "run vmnet doctor again"
		return f
	}
	f.Detail, f.Fix, f.Steps = c.Reason, c.Fix, c.Steps
	f.Status = OK
	if c.Type != accel.KVM {
		f.Status = Warn
	}
	return f
}

func checkDevice(h Host, check, rel, fix string, missing Status) Finding {
	if _, err := os.Stat(filepath.Join(h.Dev, rel)); err != nil {
		return Finding{Check: check, Status: missing, Detail: "/dev/" + rel + " is missing", Fix: fix}
	}
	return Finding{Check: check, Status: OK, Detail: "/dev/" + rel + " present"}
}

func readProc(h Host, rel string) (string, error) {
	b, err := os.ReadFile(filepath.Join(h.Proc, rel))
	return strings.TrimSpace(string(b)), err
}

func checkBrNetfilter(h Host) Finding {
	f := Finding{Check: "br_netfilter"}
	v, err := readProc(h, "sys/net/bridge/bridge-nf-call-iptables")
	switch {
	case err != nil:
		f.Status, f.Detail = OK, "not loaded: bridged frames do not pass through iptables"
	case v == "1":
		f.Status = Warn
		f.Detail = "loaded with bridge-nf-call-iptables=1: frames between guests on a bridge pass through the host's iptables FORWARD chain"
		f.Fix = "sysctl -w net.bridge.bridge-nf-call-iptables=0 (or allow the bridge in FORWARD: iptables -I FORWARD -i br0 -o br0 -j ACCEPT)"
	default:
		f.Status, f.Detail = OK, "loaded, bridge-nf-call-iptables="+v
	}
	return f
}

func checkForward(ctx context.Context, h Host) Finding {
	f := Finding{Check: "forward policy"}
	out, err := h.Run(ctx, "iptables", "-S", "FORWARD")
	if err != nil {
		f.Status, f.Detail = OK, "iptables is not available to read; assuming no FORWARD filtering"
		return f
	}
	if strings.Contains(out, "-P FORWARD DROP") {
		f.Status = Warn
		f.Detail = "the FORWARD policy is DROP (Docker sets it): routed and bridged guest traffic is dropped unless a rule accepts it"
		f.Fix = "iptables -I FORWARD -i br0 -j ACCEPT && iptables -I FORWARD -o br0 -j ACCEPT (for each bridge vmnet uses)"
		return f
	}
	f.Status, f.Detail = OK, "FORWARD policy is ACCEPT"
	return f
}

func checkIPForward(h Host) Finding {
	f := Finding{Check: "ip_forward"}
	v, err := readProc(h, "sys/net/ipv4/ip_forward")
	switch {
	case err != nil:
		f.Status, f.Detail = Warn, fmt.Sprintf("cannot read ip_forward: %v", err)
	case v == "1":
		f.Status, f.Detail = OK, "on"
	default:
		f.Status, f.Detail = Warn, "off: NAT networks cannot route guests out (libvirt turns it on when it starts one)"
		f.Fix = "sysctl -w net.ipv4.ip_forward=1"
	}
	return f
}
