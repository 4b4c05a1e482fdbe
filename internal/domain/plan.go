// Package domain turns a VM spec into a libvirt domain. This part is pure:
// NewPlan decides every name, MAC, path and boot argument, Build renders
// the plan as a libvirtxml.Domain, and ParseMetadata reads vmnet's
// ownership record back from a defined domain's XML.
package domain

import (
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"

	"vmnet/internal/accel"
	"vmnet/internal/errs"
	"vmnet/internal/vmspec"
)

// DefaultStateDir is where vmnet keeps per-VM files: DefaultStateDir/vms/NAME/.
const DefaultStateDir = "/var/lib/vmnet"

// Files in a VM's state directory.
const (
	OverlayFile    = "overlay.qcow2" // copy-on-write layer over the cached base image
	SeedFile       = "seed.iso"      // cloud-init NoCloud seed
	ConsoleLogFile = "console.log"   // everything the guest wrote to its serial console
	dataDiskFormat = "disk%d.qcow2"  // extra data disks, from 1
)

// Kinds of files a VM owns, in the metadata.
const (
	KindOverlay    = "overlay"
	KindDisk       = "disk"
	KindSeed       = "seed"
	KindConsoleLog = "console-log"
)

// maxCmdline is the x86 kernel's COMMAND_LINE_SIZE, terminating NUL included.
const maxCmdline = 2048

// ImageInfo is what the domain needs to know about a guest image; the image
// package fills it in (this package does not import it).
type ImageInfo struct {
	Name       string       // for messages: "tiny", or a disk image's path
	Kernel     string       // absolute path of a kernel for direct boot; "" boots from Disk
	Initrd     string       // absolute path of the initramfs; needs Kernel
	Cmdline    string       // the image's own kernel arguments, e.g. "root=/dev/vda rw"
	Disk       string       // absolute path of the base disk for the VM's overlay; "" for none
	DiskFormat string       // "qcow2" or "raw"
	Ready      vmspec.Ready // how the image signals it is up, when the spec does not say
	CloudInit  bool         // a stock cloud image: give it a NoCloud seed (seed.iso)
	NoAgent    bool         // the image has no QEMU guest agent (tiny): ready: agent could never succeed
}

// Plan is every decision about one VM, made before anything is created.
type Plan struct {
	Name     string // the libvirt domain name: the spec's name as written
	UUID     string // derived from the name, so a re-define never clashes with an old UUID
	SpecName string
	SpecHash string
	Lab      string // the lab that made the VM (spec.Lab): its ownership tag; "" for none
	Accel    accel.Choice
	VCPUs    int
	Memory   vmspec.Size

	Dir        string // the VM's state directory: STATEDIR/vms/NAME
	ConsoleLog string // written by virtlogd from the serial console
	Overlay    *Overlay
	DataDisks  []DataDisk
	Seed       string // cloud-init seed ISO; "" when there is nothing to provision

	Kernel  string // direct boot; "" boots from the overlay
	Initrd  string
	Cmdline string

	NICs    []NICPlan
	Ready   vmspec.Ready
	Timeout time.Duration
}

// Overlay is the VM's own disk: a qcow2 file backed by the cached base image.
type Overlay struct {
	Path          string
	Backing       string
	BackingFormat string // "qcow2" or "raw"
	Target        string // guest device: vda
}

// DataDisk is an extra empty qcow2 disk.
type DataDisk struct {
	Path   string
	Size   vmspec.Size
	Target string // vdb, vdc, ...
}

// NICPlan is one virtio NIC.
type NICPlan struct {
	Network string           // libvirt network, or
	Bridge  string           // Linux bridge, or
	Direct  vmspec.Direct    // a host interface through macvtap
	MAC     net.HardwareAddr // MAC(name, index) unless the spec overrides it
	Model   string           // always virtio
	Address netip.Prefix     // static address passed to the guest; invalid for DHCP
	Gateway netip.Addr
}

// File is a file vmnet makes for a VM and must delete with it.
type File struct {
	Kind string `xml:"kind,attr" json:"kind"`
	Path string `xml:"path,attr" json:"path"`
}

// PlanError is a spec that cannot be planned with the image or accelerator
// given (the spec itself was valid).
type PlanError struct {
	VM      string
	Problem string
	Fix     string
}

func (e *PlanError) Error() string { return fmt.Sprintf("VM %q: %s", e.VM, e.Problem) }

// Hint says how to fix the spec or the image.
func (e *PlanError) Hint() string { return e.Fix }

// NewPlan decides everything about VM spec: spec must be valid (NewPlan
// validates it again), img describes its image, choice is the accelerator,
// and stateDir is the absolute root of vmnet's state (DefaultStateDir).
func NewPlan(spec vmspec.Spec, img ImageInfo, choice accel.Choice, stateDir string) (Plan, error) {
	spec.Defaults()
	if err := spec.Validate(); err != nil {
		return Plan{}, err
	}
	if err := checkPlanInputs(spec, img, choice, stateDir); err != nil {
		return Plan{}, err
	}
	dir := path.Join(stateDir, "vms", spec.Name)
	p := Plan{
		Name: spec.Name, UUID: uuidFor(spec.Name), SpecName: spec.Name, SpecHash: spec.Hash(), Lab: spec.Lab,
		Accel: choice, VCPUs: spec.VCPUs, Memory: spec.Memory,
		Dir: dir, ConsoleLog: path.Join(dir, ConsoleLogFile),
		Kernel: img.Kernel, Initrd: img.Initrd,
		Ready: spec.Ready, Timeout: time.Duration(spec.Timeout),
	}
	p.planStorage(spec, img)
	p.NICs = planNICs(spec)
	if err := p.planReady(spec, img); err != nil {
		return Plan{}, err
	}
	if p.Timeout == 0 { // the spec's timeout overrides the accelerator's budget
		p.Timeout = accel.Timeout(choice.Type, accel.BootKVM)
	}
	if err := p.planCmdline(spec, img); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// planError is a PlanError for VM spec.
func planError(spec vmspec.Spec, problem, fix string) error {
	return &PlanError{VM: spec.Name, Problem: problem, Fix: fix}
}

// checkPlanInputs refuses what NewPlan is given besides the spec: an
// accelerator it cannot use, a state directory that is not a clean absolute
// path, an image whose description is incomplete.
func checkPlanInputs(spec vmspec.Spec, img ImageInfo, choice accel.Choice, stateDir string) error {
	if choice.Type != accel.KVM && choice.Type != accel.QEMU {
		return planError(spec, fmt.Sprintf("accelerator %q is neither kvm nor qemu", choice.Type), "pick one with accel.Probe")
	}
	if !path.IsAbs(stateDir) || path.Clean(stateDir) != stateDir {
		return planError(spec, fmt.Sprintf("state directory %q is not a clean absolute path", stateDir), "use "+DefaultStateDir)
	}
	if err := checkImage(img); err != "" {
		return planError(spec, fmt.Sprintf("image %s %s", img.Name, err), "rebuild the image (vmnet image build) or fix the image description")
	}
	return nil
}

// planStorage places the files under p.Dir: the overlay on the image's disk
// (vda) when it has one, the data disks on the next virtio letters, and the
// NoCloud seed for a cloud image.
func (p *Plan) planStorage(spec vmspec.Spec, img ImageInfo) {
	if img.Disk != "" {
		p.Overlay = &Overlay{Path: path.Join(p.Dir, OverlayFile), Backing: img.Disk, BackingFormat: img.DiskFormat, Target: "vda"}
	}
	next := 0 // virtio disk letters: vda is the image's when it has one
	if p.Overlay != nil {
		next = 1
	}
	for i, d := range spec.Disks {
		p.DataDisks = append(p.DataDisks, DataDisk{
			Path: path.Join(p.Dir, fmt.Sprintf(dataDiskFormat, i+1)), Size: d.Size, Target: "vd" + string(rune('a'+next+i)),
		})
	}
	if img.CloudInit {
		// A stock cloud image configures itself from a NoCloud seed; vmnet's
		// own images are provisioned through the guest agent instead.
		p.Seed = path.Join(p.Dir, SeedFile)
	}
}

// planNICs gives each NIC of spec its MAC: the spec's own, else the stable
// one derived from the VM's name and the NIC's index.
func planNICs(spec vmspec.Spec) []NICPlan {
	var out []NICPlan
	for i, n := range spec.NICs {
		mac := n.MACAddr()
		if mac == nil {
			mac = MAC(spec.Name, i)
		}
		out = append(out, NICPlan{Network: n.Network, Bridge: n.Bridge, Direct: n.Direct, MAC: mac, Model: "virtio", Address: n.Address, Gateway: n.Gateway})
	}
	return out
}

// planReady settles how up knows the guest is ready (the spec's choice, else
// the image's, else a default) and refuses a choice that could never be met.
func (p *Plan) planReady(spec vmspec.Spec, img ImageInfo) error {
	if p.Ready.IsZero() {
		p.Ready = img.Ready
	}
	if p.Ready.IsZero() {
		// An image that does not say: a DHCP lease is visible without any
		// cooperation from the guest; the agent is the next best thing.
		p.Ready = vmspec.Ready{Agent: true}
		if len(spec.Networks()) > 0 {
			p.Ready = vmspec.Ready{Lease: true}
		}
	}
	if p.Ready.Agent && img.NoAgent {
		return noAgentError(spec, img)
	}
	if p.Ready.Lease && len(spec.Networks()) == 0 {
		return planError(spec, "waits for a DHCP lease (the image's default) but has no NIC on a libvirt network",
			"add a NIC with network: nat0, or set ready: console or ready: agent")
	}
	return nil
}

// planCmdline sets the kernel command line for direct boot; an image that
// boots from its disk takes none, so a cmdline in the spec is refused there
// rather than silently dropped.
func (p *Plan) planCmdline(spec vmspec.Spec, img ImageInfo) error {
	if img.Kernel == "" {
		if spec.Kernel.Cmdline != "" {
			return planError(spec, "sets kernel.cmdline, but image "+img.Name+" boots from its disk with its own boot loader",
				"leave out kernel.cmdline, or use an image with a kernel for direct boot")
		}
		return nil
	}
	p.Cmdline = cmdline(spec, img)
	if len(p.Cmdline) >= maxCmdline {
		return planError(spec, fmt.Sprintf("kernel command line is %d bytes; the kernel takes at most %d", len(p.Cmdline), maxCmdline-1),
			"shorten kernel.cmdline")
	}
	return nil
}

// noAgentError refuses readiness by the guest agent on an image without
// one: up would otherwise wait its whole timeout for nothing. It is bad
// input (exit 2), refused before anything is made.
func noAgentError(spec vmspec.Spec, img ImageInfo) error {
	fix := "use ready: console or ready: lease"
	if !img.Ready.IsZero() && !img.Ready.Agent {
		fix = fmt.Sprintf("leave ready out (image %s signals with a %s), or use ready: console or ready: lease", img.Name, img.Ready)
	}
	if spec.Ready.Agent {
		return &errs.FieldError{Form: errs.PathForm, Field: "ready", Value: "agent",
			Problem: fmt.Sprintf("cannot work with image %s: it has no QEMU guest agent, so vm up would wait its whole timeout", img.Name),
			Fix:     fix}
	}
	return &errs.FieldError{Form: errs.PathForm, Field: "ready",
		Problem: fmt.Sprintf("is not set, and the default (the guest agent) cannot work with image %s, which has none", img.Name),
		Fix:     fix}
}

// checkImage returns what is wrong with img, or "".
func checkImage(img ImageInfo) string {
	switch {
	case img.Kernel == "" && img.Disk == "":
		return "has neither a kernel nor a disk"
	case img.Initrd != "" && img.Kernel == "":
		return "has an initrd but no kernel"
	case img.Disk != "" && img.DiskFormat != "qcow2" && img.DiskFormat != "raw":
		return fmt.Sprintf("has disk format %q; vmnet uses qcow2 or raw", img.DiskFormat)
	}
	for _, p := range []string{img.Kernel, img.Initrd, img.Disk} {
		if p != "" && !path.IsAbs(p) {
			return fmt.Sprintf("path %q is not absolute", p)
		}
	}
	return ""
}

// cmdline builds the kernel command line: the image's arguments, the serial
// console, then vmnet's contract with its images (vmnet.hostname=NAME and
// vmnet.ip.N=ADDR/PREFIX[,gw=GW] for each static NIC N, counted from 0 in
// NIC order), then the spec's extra arguments, last so they win.
func cmdline(spec vmspec.Spec, img ImageInfo) string {
	args := strings.Fields(img.Cmdline)
	hasConsole := false
	for _, a := range args {
		if strings.HasPrefix(a, "console=") {
			hasConsole = true
		}
	}
	if !hasConsole {
		args = append(args, "console=ttyS0")
	}
	args = append(args, "vmnet.hostname="+spec.Name)
	for i, n := range spec.NICs {
		if !n.Address.IsValid() {
			continue
		}
		a := fmt.Sprintf("vmnet.ip.%d=%s", i, n.Address)
		if n.Gateway.IsValid() {
			a += ",gw=" + n.Gateway.String()
		}
		args = append(args, a)
	}
	args = append(args, strings.Fields(spec.Kernel.Cmdline)...)
	return strings.Join(args, " ")
}

// uuidFor derives a UUID (RFC 9562 version 8, name-based) from the VM name.
func uuidFor(name string) string {
	b := sha256.Sum256([]byte("vmnet-domain\x00" + name))
	b[6] = b[6]&0x0f | 0x80
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Files lists what vmnet makes for the VM, in the order it makes them.
func (p Plan) Files() []File {
	var out []File
	if p.Overlay != nil {
		out = append(out, File{KindOverlay, p.Overlay.Path})
	}
	for _, d := range p.DataDisks {
		out = append(out, File{KindDisk, d.Path})
	}
	if p.Seed != "" {
		out = append(out, File{KindSeed, p.Seed})
	}
	return append(out, File{KindConsoleLog, p.ConsoleLog})
}
