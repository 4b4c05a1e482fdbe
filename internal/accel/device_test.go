package accel

import (
	"context"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeKVM is a /dev/kvm that answers as told: open's error, the API
// version (or its ioctl's error) and KVM_CREATE_VM's error. It records
// the ioctls asked and the descriptors left open.
type fakeKVM struct {
	openErr, apiErr, createErr error
	api                        int
	asked                      []uint
	open                       map[int]bool
}

// ops returns the system calls of f.
func (f *fakeKVM) ops() devOps {
	f.open = map[int]bool{}
	next := 3
	newFD := func() int { next++; f.open[next] = true; return next }
	return devOps{
		open: func(string, int, uint32) (int, error) {
			if f.openErr != nil {
				return -1, f.openErr
			}
			return newFD(), nil
		},
		ioctl: func(_ int, req uint) (int, error) {
			f.asked = append(f.asked, req)
			if req == kvmGetAPIVersion {
				return f.api, f.apiErr
			}
			if f.createErr != nil {
				return -1, f.createErr
			}
			return newFD(), nil
		},
		close: func(fd int) error { delete(f.open, fd); return nil },
	}
}

// deviceCases maps each answer of the device to the cause CheckDevice
// gives, a word of its detail and a word of the cause's fix.
var deviceCases = []struct {
	name   string
	dev    fakeKVM
	cause  Cause
	detail string
	fix    string
	asked  int // ioctls asked
}{
	{"works", fakeKVM{api: 12}, "", "KVM_CREATE_VM succeeded", "", 2},
	{"no device", fakeKVM{openErr: unix.ENOENT}, CauseNoDevice, "does not exist", "modprobe kvm_intel", 0},
	{"permission denied (runner user)", fakeKVM{openErr: unix.EACCES}, CauseNoPermission, "permission denied opening it read-write (mode 0660, uid", udevRule, 0},
	{"operation not permitted", fakeKVM{openErr: unix.EPERM}, CauseNoPermission, "permission denied", "99-kvm4all.rules", 0},
	{"busy at open", fakeKVM{openErr: unix.EBUSY}, CauseBusy, "is busy", "VirtualBox", 0},
	{"no such device (module without hardware)", fakeKVM{openErr: unix.ENXIO}, CauseNotKVM, "cannot be opened: no such device or address", "mknod /dev/kvm", 0},
	{"not a KVM device", fakeKVM{apiErr: unix.ENOTTY}, CauseNotKVM, "KVM_GET_API_VERSION: inappropriate ioctl", "modprobe -r kvm_intel", 1},
	{"old API", fakeKVM{api: 11}, CauseNotKVM, "KVM API version 11; QEMU needs 12", "modprobe", 1},
	{"busy at create VM", fakeKVM{api: 12, createErr: unix.EBUSY}, CauseBusy, "KVM_CREATE_VM: device busy", "stop its VMs", 2},
	{"create VM fails", fakeKVM{api: 12, createErr: unix.EINVAL}, CauseCreateVM, "KVM_CREATE_VM: invalid argument", "dmesg", 2},
	{"create VM out of memory", fakeKVM{api: 12, createErr: unix.ENOMEM}, CauseCreateVM, "KVM_CREATE_VM: cannot allocate memory", "firmware", 2},
}

// TestCheckDeviceErrors: every errno of open and of the two ioctls gives
// its cause, a detail that names the device and what failed, and a fix;
// no descriptor is left open, and no ioctl follows a failed step.
func TestCheckDeviceErrors(t *testing.T) {
	h := kvmHost(t, "vmx")
	for _, c := range deviceCases {
		t.Run(c.name, func(t *testing.T) {
			f := c.dev
			got := f.ops().check(h.dev)
			if got.Cause != c.cause || !strings.HasPrefix(got.Detail, h.dev) || !strings.Contains(got.Detail, c.detail) {
				t.Errorf("check = %+v; want cause %q and a detail with %q", got, c.cause, c.detail)
			}
			if fix := FixFor(got.Cause); !strings.Contains(fix, c.fix) || (c.cause != "") != (fix != "") {
				t.Errorf("fix for %q = %q; want one with %q", got.Cause, fix, c.fix)
			}
			if len(f.open) != 0 || len(f.asked) != c.asked {
				t.Errorf("%d descriptors left open, %d ioctls asked (%x); want none open, %d asked", len(f.open), len(f.asked), f.asked, c.asked)
			}
		})
	}
}

// TestDeviceErrorsThroughProbe: Probe(auto) on each device answers TCG with
// the device's cause, its fix and its detail, without booting the test
// guest; a device that works on a CPU without vmx/svm whose guest hangs is
// nested virtualisation off, and with vmx and a guest that runs it is KVM.
func TestDeviceErrorsThroughProbe(t *testing.T) {
	for _, c := range deviceCases {
		for _, flags := range []string{"hypervisor", "vmx"} {
			h := kvmHost(t, flags)
			f, n := c.dev, 0
			guest, want, cause := hangs, QEMU, c.cause
			switch {
			case c.cause == "" && flags == "vmx":
				guest, want, cause = runs, KVM, CauseWorks
			case c.cause == "":
				cause = CauseNestedOff
			}
			p := h.prober(t, devOK, guest, &n)
			p.Device = f.ops().check
			got, err := p.Probe(context.Background(), WantAuto)
			if err != nil || got.Type != want || got.Cause != cause || got.Fix != FixFor(cause) || (n == 1) != (c.cause == "") {
				t.Errorf("%s, flags %s: Probe(auto) = %+v, %v, %d guest runs; want %s, cause %s and its fix", c.name, flags, got, err, n, want, cause)
			}
			if c.cause != "" && !strings.Contains(got.Reason, c.detail) {
				t.Errorf("%s: reason %q lacks the device's detail %q", c.name, got.Reason, c.detail)
			}
		}
	}
}

// kvmHost is newFakeHost whose device is a file of mode 0660 (whatever the
// umask), for the owner a permission-denied detail names.
func kvmHost(t *testing.T, flags string) fakeHost {
	h := newFakeHost(t, flags)
	if err := os.Chmod(h.dev, 0o660); err != nil {
		t.Fatal(err)
	}
	return h
}
