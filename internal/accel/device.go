package accel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// kvmCreateVM is _IO(KVMIO, 0x01); its argument is the machine type, 0.
const kvmCreateVM = 0xAE01

// DeviceCheck is what the KVM device answered: Cause is empty when it
// opened read-write, spoke KVM API 12 and created a VM.
type DeviceCheck struct {
	Cause  Cause
	Detail string // what was tried and how it ended, for people
}

// devOps are the system calls CheckDevice makes. Tests replace them to
// answer as devices this machine lacks would (permission denied, busy, a
// KVM_CREATE_VM that fails): the real KVM path runs on GitHub's runners.
type devOps struct {
	open  func(path string, mode int, perm uint32) (int, error)
	ioctl func(fd int, req uint) (int, error) // the ioctl's return value
	close func(fd int) error
}

// sysDev is the kernel's.
var sysDev = devOps{open: unix.Open, ioctl: unix.IoctlRetInt, close: unix.Close}

// CheckDevice opens path read-write, asks KVM_GET_API_VERSION and tries
// KVM_CREATE_VM (closing the VM at once), as multipass does. It takes
// microseconds, so Probe runs it every time, also for a cached answer:
// whether this user may open the device is not the host's property.
func CheckDevice(path string) DeviceCheck { return sysDev.check(path) }

// check is CheckDevice through o's system calls.
func (o devOps) check(path string) DeviceCheck {
	fd, err := o.open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return DeviceCheck{CauseNoDevice, path + " does not exist (no KVM module, or a VM without nested virtualisation)"}
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return DeviceCheck{CauseNoPermission, path + ": permission denied opening it read-write (" + owner(path) + ")"}
	case errors.Is(err, unix.EBUSY):
		return DeviceCheck{CauseBusy, path + " is busy (another hypervisor holds VT-x/AMD-V)"}
	case err != nil:
		return DeviceCheck{CauseNotKVM, fmt.Sprintf("%s cannot be opened: %v", path, err)}
	}
	defer o.close(fd)
	v, err := o.ioctl(fd, kvmGetAPIVersion)
	if err != nil {
		return DeviceCheck{CauseNotKVM, fmt.Sprintf("%s is not a KVM device: KVM_GET_API_VERSION: %v", path, err)}
	}
	if v != kvmAPIVersion {
		return DeviceCheck{CauseNotKVM, fmt.Sprintf("%s has KVM API version %d; QEMU needs %d", path, v, kvmAPIVersion)}
	}
	vm, err := o.ioctl(fd, kvmCreateVM)
	switch {
	case errors.Is(err, unix.EBUSY):
		return DeviceCheck{CauseBusy, path + ": KVM_CREATE_VM: device busy (another hypervisor holds VT-x/AMD-V)"}
	case err != nil:
		return DeviceCheck{CauseCreateVM, fmt.Sprintf("%s: KVM_CREATE_VM: %v", path, err)}
	}
	o.close(vm)
	return DeviceCheck{Detail: fmt.Sprintf("%s opened read-write, KVM API %d, KVM_CREATE_VM succeeded", path, v)}
}

// owner says who may open path, for the permission-denied message.
func owner(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("mode %04o, uid %d, gid %d; this process: uid %d", st.Mode&0o7777, st.Uid, st.Gid, os.Geteuid())
}

// cpuVirt reports whether /proc/cpuinfo under proc shows vmx or svm. When
// it cannot be read the answer is true: not knowing is no reason to blame
// nested virtualisation.
func cpuVirt(proc string) bool {
	b, err := os.ReadFile(filepath.Join(proc, "cpuinfo"))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, flags, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != "flags" {
			continue
		}
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
	}
	return false
}
