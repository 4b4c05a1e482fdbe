package accel

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeHost is a /proc with a boot id and cpuinfo, a fake QEMU and a fake
// /dev/kvm (plain files: only their identity is read), for the cache key.
type fakeHost struct {
	proc, qemu, dev string
}

func newFakeHost(t *testing.T, flags string) fakeHost {
	t.Helper()
	d := t.TempDir()
	h := fakeHost{proc: filepath.Join(d, "proc"), qemu: filepath.Join(d, "qemu"), dev: filepath.Join(d, "kvm")}
	write(t, filepath.Join(h.proc, "sys/kernel/random/boot_id"), "boot-1\n", 0o644)
	write(t, filepath.Join(h.proc, "cpuinfo"), "processor\t: 0\nflags\t\t: fpu "+flags+" sse\n", 0o644)
	write(t, h.qemu, "#!/bin/sh\n", 0o755)
	write(t, h.dev, "", 0o660)
	return h
}

func write(t *testing.T, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// prober returns a Prober on h whose device answers dev and whose test
// guest answers r, counting the guest's runs in *runs.
func (h fakeHost) prober(t *testing.T, dev DeviceCheck, r probeResult, runs *int) Prober {
	return Prober{QEMU: h.qemu, DevKVM: h.dev, Proc: h.proc, Cache: filepath.Join(t.TempDir(), "run/vmnet/accel.json"),
		Device: func(string) DeviceCheck { return dev },
		guest: func(context.Context, Prober) (probeResult, error) {
			*runs++
			return r, nil
		}}
}

var (
	devOK   = DeviceCheck{Detail: "opened read-write, KVM API 12, KVM_CREATE_VM succeeded"}
	runs    = probeResult{ExitStatus: ProbeExitStatus, Stages: "RPL", Elapsed: 30 * time.Millisecond}
	hangs   = probeResult{ExitStatus: -1, TimedOut: true, Stages: "R"}
	crashes = probeResult{ExitStatus: 0, Stages: "RP"}
	aborts  = probeResult{ExitStatus: -1, Signal: "SIGABRT", Error: "failed to set MSR 0x10a"}
)

// TestDecisionTable: every device answer and guest outcome gives the
// accelerator, the cause and a fix, for auto and for kvm.
func TestDecisionTable(t *testing.T) {
	cases := []struct {
		name      string
		dev       DeviceCheck
		guest     probeResult
		flags     string
		want      string // accelerator for auto
		cause     Cause
		guestRuns int
		kvmErr    bool // --accel kvm is refused
	}{
		{"works", devOK, runs, "vmx", KVM, CauseWorks, 1, false},
		{"no device", DeviceCheck{CauseNoDevice, "/dev/kvm does not exist"}, runs, "vmx", QEMU, CauseNoDevice, 0, true},
		{"no permission", DeviceCheck{CauseNoPermission, "/dev/kvm: permission denied"}, runs, "vmx", QEMU, CauseNoPermission, 0, true},
		{"busy", DeviceCheck{CauseBusy, "/dev/kvm: KVM_CREATE_VM: device busy"}, runs, "svm", QEMU, CauseBusy, 0, true},
		{"create VM fails", DeviceCheck{CauseCreateVM, "KVM_CREATE_VM: invalid argument"}, runs, "vmx", QEMU, CauseCreateVM, 0, true},
		{"not KVM", DeviceCheck{CauseNotKVM, "is not a KVM device"}, runs, "vmx", QEMU, CauseNotKVM, 0, true},
		{"guest hangs with vmx", devOK, hangs, "vmx", QEMU, CauseGuestHangs, 1, false},
		{"guest hangs without vmx/svm (this machine)", devOK, hangs, "hypervisor", QEMU, CauseNestedOff, 1, false},
		{"guest crashes", devOK, crashes, "svm", QEMU, CauseGuestFailed, 1, false},
		{"QEMU aborts", devOK, aborts, "vmx", QEMU, CauseGuestFailed, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := 0
			p := newFakeHost(t, c.flags).prober(t, c.dev, c.guest, &n)
			got, err := p.Probe(context.Background(), WantAuto)
			if err != nil || got.Type != c.want || got.Cause != c.cause || n != c.guestRuns {
				t.Fatalf("Probe(auto) = %+v, %v, %d guest runs; want %s, cause %s, %d runs", got, err, n, c.want, c.cause, c.guestRuns)
			}
			if fix := FixFor(c.cause); got.Type == QEMU && (fix == "" || got.Fix != fix || !strings.HasSuffix(got.Reason, "using TCG (software emulation, slower)")) {
				t.Errorf("TCG choice %+v lacks the fix for %s or the TCG suffix", got, c.cause)
			}
			n = 0
			kvm, err := p.Probe(context.Background(), WantKVM)
			var ue *UnusableError
			if c.kvmErr != errors.As(err, &ue) || n != 0 {
				t.Fatalf("Probe(kvm) = %+v, %v after %d guest runs; want refused=%v and no guest", kvm, err, n, c.kvmErr)
			}
			if c.kvmErr && (ue.Cause != c.cause || !strings.HasPrefix(ue.Hint(), FixFor(c.cause))) {
				t.Errorf("UnusableError %+v: hint %q, want the fix for %s", ue, ue.Hint(), c.cause)
			}
			if !c.kvmErr && (kvm.Type != KVM || kvm.Cause != CauseAsked) {
				t.Errorf("Probe(kvm) = %+v, want KVM as asked", kvm)
			}
		})
	}
}

func TestPermissionFixIsTheRunnerImagesRule(t *testing.T) {
	for _, want := range []string{
		`KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"`,
		"/etc/udev/rules.d/99-kvm4all.rules", "udevadm trigger --name-match=kvm", "usermod -aG kvm", "chmod",
	} {
		if !strings.Contains(FixFor(CauseNoPermission), want) {
			t.Errorf("the no-permission fix lacks %q: %s", want, FixFor(CauseNoPermission))
		}
	}
}

func TestTCGSkipsEverything(t *testing.T) {
	n := 0
	p := newFakeHost(t, "vmx").prober(t, DeviceCheck{Cause: CauseNoDevice}, runs, &n)
	p.Device = func(string) DeviceCheck { t.Fatal("--accel tcg checked the device"); return DeviceCheck{} }
	got, err := p.Probe(context.Background(), WantTCG)
	if err != nil || got.Type != QEMU || got.Cause != CauseAsked || n != 0 {
		t.Errorf("Probe(tcg) = %+v, %v, %d guest runs", got, err, n)
	}
	if _, err := os.Stat(p.Cache); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Probe(tcg) wrote the cache: %v", err)
	}
}

// TestCacheUsedThenInvalidated: the second auto call does not run the
// guest; changing any part of the key makes the next call run it again.
func TestCacheUsedThenInvalidated(t *testing.T) {
	ctx := context.Background()
	h := newFakeHost(t, "")
	n := 0
	p := h.prober(t, devOK, hangs, &n)
	probe := func(wantRuns int, wantCached bool) {
		t.Helper()
		got, err := p.Probe(ctx, WantAuto)
		if err != nil || got.Type != QEMU || got.Cause != CauseNestedOff || n != wantRuns || got.Cached != wantCached {
			t.Fatalf("Probe(auto) = %+v, %v after %d guest runs; want nested-off, %d runs, cached=%v", got, err, n, wantRuns, wantCached)
		}
	}
	probe(1, false)
	probe(1, true)
	if c, _ := p.Probe(ctx, WantAuto); !strings.Contains(c.Reason, "cached in "+p.Cache) {
		t.Errorf("a cached answer does not say so: %q", c.Reason)
	}
	fi, err := os.Stat(p.Cache)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("cache file: %v, %v; want mode 0644", fi, err)
	}
	changes := []struct {
		name string
		do   func()
	}{
		{"boot id", func() { write(t, filepath.Join(h.proc, "sys/kernel/random/boot_id"), "boot-2\n", 0o644) }},
		{"QEMU upgraded", func() { write(t, h.qemu, "#!/bin/sh\n# version 2\n", 0o755) }},
		{"/dev/kvm mode (a udev rule)", func() { os.Chmod(h.dev, 0o666) }},
		{"/dev/kvm recreated", func() { os.Remove(h.dev); write(t, h.dev, "", 0o666) }},
		{"timeout", func() { p.Timeout = 7 * time.Second }},
	}
	for _, c := range changes {
		before := n
		c.do()
		probe(before+1, false)
		probe(before+1, true)
	}
	write(t, p.Cache, "{not json", 0o644)
	probe(n+1, false)
}

func TestKey(t *testing.T) {
	h := newFakeHost(t, "vmx")
	p := Prober{QEMU: h.qemu, DevKVM: h.dev, Proc: h.proc}
	k, err := p.Key()
	if err != nil {
		t.Fatal(err)
	}
	if k.Format != cacheFormat || k.BootID != "boot-1" || k.Kernel == "" || k.Timeout != "5s" ||
		!strings.HasPrefix(k.QEMU, h.qemu+" size=10 mtime=") || !strings.Contains(k.Device, " mode=") || !strings.Contains(k.Device, " ino=") {
		t.Errorf("Key() = %+v", k)
	}
	if k2, _ := p.Key(); k2 != k {
		t.Errorf("Key() is not stable: %+v then %+v", k, k2)
	}
	for name, q := range map[string]Prober{
		"no QEMU":    {QEMU: filepath.Join(h.proc, "none"), DevKVM: h.dev, Proc: h.proc},
		"no device":  {QEMU: h.qemu, DevKVM: filepath.Join(h.proc, "none"), Proc: h.proc},
		"no boot id": {QEMU: h.qemu, DevKVM: h.dev, Proc: t.TempDir()},
	} {
		if _, err := q.Key(); err == nil {
			t.Errorf("%s: Key() has no error", name)
		}
	}
}

func TestCacheReadableUnderUmask077(t *testing.T) {
	h := newFakeHost(t, "vmx")
	n := 0
	p := h.prober(t, devOK, runs, &n)
	old := umask(0o077)
	_, err := p.Probe(context.Background(), WantAuto)
	umask(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{p.Cache, filepath.Dir(p.Cache)} {
		fi, err := os.Stat(f)
		if err != nil || fi.Mode().Perm()&0o044 != 0o044 {
			t.Errorf("%s: %v, %v; want it readable by everyone", f, fi, err)
		}
	}
}

func TestCPUVirt(t *testing.T) {
	for flags, want := range map[string]bool{"vmx": true, "svm": true, "hypervisor": false, "vmxe": false} {
		if got := cpuVirt(newFakeHost(t, flags).proc); got != want {
			t.Errorf("cpuVirt(flags %q) = %v, want %v", flags, got, want)
		}
	}
	if !cpuVirt(t.TempDir()) {
		t.Error("cpuVirt without a cpuinfo = false; not knowing must not blame nested virtualisation")
	}
}

func TestCheckDevice(t *testing.T) {
	if got := CheckDevice(filepath.Join(t.TempDir(), "kvm")); got.Cause != CauseNoDevice {
		t.Errorf("missing device: %+v", got)
	}
	if got := CheckDevice("/dev/null"); got.Cause != CauseNotKVM {
		t.Errorf("/dev/null: %+v", got)
	}
}

// TestGuestNotStarted: a QEMU that cannot be started is a guest failure,
// not nested virtualisation, even on a CPU without vmx/svm.
func TestGuestNotStarted(t *testing.T) {
	for _, flags := range []string{"vmx", "hypervisor"} {
		n := 0
		p := newFakeHost(t, flags).prober(t, devOK, probeResult{}, &n)
		p.guest = func(context.Context, Prober) (probeResult, error) {
			n++
			return probeResult{}, errors.New(`exec: "qemu-system-x86_64": executable file not found in $PATH`)
		}
		got, err := p.Probe(context.Background(), WantAuto)
		if err != nil || got.Type != QEMU || got.Cause != CauseGuestFailed || !strings.Contains(got.Reason, "could not be started") || n != 1 {
			t.Errorf("flags %s: Probe(auto) = %+v, %v; want guest-failed, could not be started", flags, got, err)
		}
	}
}
