package domain

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"vmnet/internal/accel"
)

// GuestAgentChannel is the virtio-serial port name qemu-guest-agent opens.
const GuestAgentChannel = "org.qemu.guest_agent.0"

// Build renders a plan as a libvirt domain.
//
// The serial console is a pty with a <log> file rather than a type='file'
// serial: a pty keeps `virsh console` (virDomainOpenConsole) interactive,
// and the log, written by virtlogd, still records every byte for the
// readiness check and for post-mortems. append='off' starts the log afresh
// at each boot, so an old VMNET-READY line cannot pass for a new one.
func Build(p Plan) (*libvirtxml.Domain, error) {
	if p.Name == "" || p.UUID == "" {
		return nil, fmt.Errorf("build domain: the plan has no name or UUID (make it with NewPlan)")
	}
	meta, err := Meta{Owner: Owner, Spec: p.SpecName, Hash: p.SpecHash, Lab: p.Lab, Dir: p.Dir, Files: p.Files()}.marshal()
	if err != nil {
		return nil, fmt.Errorf("build domain %q: %w", p.Name, err)
	}
	d := &libvirtxml.Domain{
		Type:     p.Accel.Type,
		Name:     p.Name,
		UUID:     p.UUID,
		Metadata: &libvirtxml.DomainMetadata{XML: meta},
		Memory:   &libvirtxml.DomainMemory{Value: uint(p.Memory.KiB()), Unit: "KiB"},
		VCPU:     &libvirtxml.DomainVCPU{Placement: "static", Value: uint(p.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			Kernel:  p.Kernel,
			Initrd:  p.Initrd,
			Cmdline: p.Cmdline,
		},
		// ACPI lets a shutdown request reach the guest; the APIC is needed for more than one vCPU.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		CPU:        cpuFor(p.Accel.Type),
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    devices(p),
	}
	if p.Kernel == "" {
		d.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	return d, nil
}

// cpuFor: KVM passes the host CPU through (accel.Probe tested exactly that
// with -cpu host). TCG emulates "max", every feature QEMU can emulate, so
// guests built for x86-64-v2 or later run too; -cpu host is not possible
// without KVM.
func cpuFor(typ string) *libvirtxml.DomainCPU {
	if typ == accel.KVM {
		return &libvirtxml.DomainCPU{Mode: "host-passthrough", Check: "none", Migratable: "off"}
	}
	return &libvirtxml.DomainCPU{Mode: "maximum", Check: "none", Migratable: "off"}
}

func devices(p Plan) *libvirtxml.DomainDeviceList {
	port0 := uint(0)
	dev := &libvirtxml.DomainDeviceList{
		// No USB: nothing uses it, and an emulated controller costs boot time under TCG.
		Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
		Serials: []libvirtxml.DomainSerial{{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainSerialTarget{Type: "isa-serial", Port: &port0, Model: &libvirtxml.DomainSerialTargetModel{Name: "isa-serial"}},
			Log:    &libvirtxml.DomainChardevLog{File: p.ConsoleLog, Append: "off"},
		}},
		Consoles: []libvirtxml.DomainConsole{{
			Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
			Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port0},
		}},
		// No path: libvirt makes the socket under its own channel directory
		// and talks to the agent itself (virDomainQemuAgentCommand).
		Channels: []libvirtxml.DomainChannel{{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: GuestAgentChannel}},
		}},
		MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		// Entropy from the host: without it a guest can wait a long time for
		// its random pool at boot (sshd, TLS), under TCG most of all.
		RNGs: []libvirtxml.DomainRNG{{
			Model:   "virtio",
			Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
		}},
	}
	if o := p.Overlay; o != nil {
		dev.Disks = append(dev.Disks, qcow2Disk(o.Path, o.Target))
	}
	for _, d := range p.DataDisks {
		dev.Disks = append(dev.Disks, qcow2Disk(d.Path, d.Target))
	}
	if p.Seed != "" {
		dev.Disks = append(dev.Disks, libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: p.Seed}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "hdc", Bus: "ide"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	for _, n := range p.NICs {
		dev.Interfaces = append(dev.Interfaces, libvirtxml.DomainInterface{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: n.MAC.String()},
			Source: interfaceSource(n),
			Model:  &libvirtxml.DomainInterfaceModel{Type: n.Model},
		})
	}
	return dev
}

// interfaceSource is where a NIC attaches: a libvirt network, a Linux
// bridge, or a host interface through macvtap (<interface type='direct'>,
// whose type libvirtxml takes from the source).
func interfaceSource(n NICPlan) *libvirtxml.DomainInterfaceSource {
	switch {
	case n.Network != "":
		return &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}}
	case n.Direct.Parent != "":
		return &libvirtxml.DomainInterfaceSource{Direct: &libvirtxml.DomainInterfaceSourceDirect{Dev: n.Direct.Parent, Mode: n.Direct.ModeOrDefault()}}
	}
	return &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
}

func qcow2Disk(file, target string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Discard: "unmap"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: file}},
		Target: &libvirtxml.DomainDiskTarget{Dev: target, Bus: "virtio"},
	}
}
