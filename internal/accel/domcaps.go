package accel

import (
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"

	"vmnet/internal/virt"
)

// DomainCaps is the libvirt call the probe makes after the device check:
// virConnectGetDomainCapabilities. *libvirt.Connect has it; tests fake it.
type DomainCaps interface {
	GetDomainCapabilities(emulatorbin, arch, machine, virttype string, flags uint32) (string, error)
}

// CheckDomainCaps asks libvirt for its domain capabilities for
// type='kvm', as kcli does: libvirtd probes QEMU as its own user and keeps
// the answer, so a /dev/kvm that works for vmnet can still be refused to
// every KVM domain (QEMU's user may not open it, or libvirtd probed before
// the udev rule and cached "no"). libvirt refusing the request, or
// answering for another domain type, gives CauseLibvirtNoKVM; a daemon
// that cannot be asked (gone, unreachable) is no answer, and the Cause
// stays empty: the test guest decides.
func CheckDomainCaps(lv DomainCaps) DeviceCheck {
	x, err := lv.GetDomainCapabilities("", "", "", KVM, 0)
	switch {
	case err != nil && virt.IsDaemonGone(err):
		return DeviceCheck{Detail: "libvirt's domain capabilities for type 'kvm' could not be read: " + virt.Message(err)}
	case err != nil:
		return DeviceCheck{CauseLibvirtNoKVM, "libvirt refuses domain type 'kvm': " + strings.TrimSpace(virt.Message(err))}
	}
	var caps libvirtxml.DomainCaps
	if err := caps.Unmarshal(x); err != nil {
		return DeviceCheck{Detail: "libvirt's domain capabilities for type 'kvm' are unreadable: " + err.Error()}
	}
	if caps.Domain != KVM {
		return DeviceCheck{CauseLibvirtNoKVM, fmt.Sprintf("libvirt answers domain type %q when asked for 'kvm'", caps.Domain)}
	}
	return DeviceCheck{Detail: fmt.Sprintf("libvirt offers domain type 'kvm' (%s, machine %s)", caps.Path, caps.Machine)}
}
