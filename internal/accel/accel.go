// Package accel decides how QEMU runs guests: with KVM where KVM really
// works, with TCG (QEMU's software emulation) otherwise, and says why.
//
// "Really works" means a guest runs: a host can have a /dev/kvm that answers
// every ioctl and still hang the first guest that leaves real mode (nested
// virtualisation without VT-x/AMD-V passed through). So Probe boots a tiny
// firmware guest under KVM and trusts only its exit status, after the cheap
// tests (open /dev/kvm read-write, KVM_CREATE_VM, libvirt's domain
// capabilities for type='kvm') have passed. The guest's
// answer is cached per host and boot (CacheKey), so only the first vm up
// after a boot, a kernel or QEMU upgrade or a change of /dev/kvm pays for it.
package accel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"vmnet/internal/errs"
)

// Libvirt domain types, the values of Choice.Type.
const (
	KVM  = "kvm"  // hardware virtualisation through /dev/kvm
	QEMU = "qemu" // TCG: QEMU emulates the CPU in software
)

// What a user may ask for with --accel.
const (
	WantAuto = "auto" // KVM when the probe guest runs under it, else TCG
	WantKVM  = "kvm"  // KVM or an error
	WantTCG  = "tcg"  // TCG without probing
)

// Defaults of a Prober.
const (
	DefaultQEMU    = "qemu-system-x86_64"
	DefaultDevKVM  = "/dev/kvm"
	DefaultTimeout = 5 * time.Second
)

// kvmAPIVersion is the only stable KVM API version (KVM_GET_API_VERSION).
const kvmAPIVersion = 12

// kvmGetAPIVersion is _IO(KVMIO, 0x00).
const kvmGetAPIVersion = 0xAE00

// Choice is the accelerator picked for guests, and why, in words for people.
type Choice struct {
	Type   string   `json:"type"`             // libvirt <domain type=...>: KVM or QEMU
	Reason string   `json:"reason"`           // e.g. "KVM present but a test guest did not run within 5s ...: using TCG"
	Cause  Cause    `json:"cause,omitempty"`  // why, as a word: CauseWorks, CauseNestedOff, ...
	Fix    string   `json:"fix,omitempty"`    // what makes KVM work, when it does not
	Steps  []string `json:"steps,omitempty"`  // each test the probe ran and its answer
	Cached bool     `json:"cached,omitempty"` // the test guest's answer came from the cache
}

// String formats the choice for a log line.
func (c Choice) String() string { return c.Type + ": " + c.Reason }

// UnusableError is returned when --accel kvm was asked for but KVM does not work.
type UnusableError struct {
	Reason string
	Cause  Cause
}

func (e *UnusableError) Error() string {
	return "--accel kvm: KVM is not usable on this host: " + e.Reason
}

// Hint says how to make KVM work, or how to proceed without it.
func (e *UnusableError) Hint() string {
	fix := FixFor(e.Cause)
	if fix == "" {
		fix = "KVM needs VT-x/AMD-V (in a VM: nested virtualisation) and read-write access to /dev/kvm"
	}
	return fix + "; or use --accel auto (picks TCG where KVM does not work) or --accel tcg"
}

// ValidateWant checks --accel without probing anything, so the CLI can
// refuse a typo before it connects to libvirt.
func ValidateWant(want string) error {
	switch want {
	case "", WantAuto, WantKVM, WantTCG:
		return nil
	}
	return &errs.FieldError{Field: "--accel", Value: want, Problem: "is not an accelerator",
		Fix: "use auto (KVM where it works, else TCG), kvm or tcg"}
}

// Prober runs the KVM probe. The zero value uses the defaults and caches nothing.
type Prober struct {
	QEMU    string        // emulator to run the probe guest with; DefaultQEMU from $PATH when empty
	DevKVM  string        // the KVM device; DefaultDevKVM when empty
	Timeout time.Duration // how long the probe guest may take; DefaultTimeout when 0
	Cache   string        // file for the test guest's answer (DefaultCache); "" caches nothing
	Proc    string        // where /proc is (cpuinfo, boot id); "/proc" when empty

	// Device checks the KVM device; CheckDevice when nil. Tests fake it.
	Device func(path string) DeviceCheck
	// Libvirt is asked for its domain capabilities for type='kvm'
	// (CheckDomainCaps) once the device works; nil skips that step (vm xml,
	// which connects to no libvirtd).
	Libvirt DomainCaps
	// guest runs the test guest; runProbe with ProbeImage when nil.
	guest func(ctx context.Context, p Prober) (probeResult, error)
}

// Probe picks the accelerator with a Prober that caches in DefaultCache
// and asks libvirt nothing; see Prober.Probe.
func Probe(ctx context.Context, want string) (Choice, error) {
	return Prober{Cache: DefaultCache}.Probe(ctx, want)
}

// ProbeLibvirt is Probe that also asks lv, the libvirtd the guests will run
// in, whether it offers KVM domains.
func ProbeLibvirt(ctx context.Context, want string, lv DomainCaps) (Choice, error) {
	return Prober{Cache: DefaultCache, Libvirt: lv}.Probe(ctx, want)
}

// Probe picks the accelerator for want (WantAuto, WantKVM or WantTCG; ""
// means WantAuto). WantTCG probes nothing. For auto and kvm the device
// check (open, API version, KVM_CREATE_VM) runs, then, with p.Libvirt,
// libvirt's domain capabilities for type='kvm'; the first that fails gives
// TCG for auto and an *UnusableError for kvm, each with its Cause and Fix.
// WantKVM then forces KVM without the test guest. Auto boots the test
// guest under KVM, or takes its answer from the cache when the CacheKey is
// unchanged, and picks KVM only when the guest reached long mode.
func (p Prober) Probe(ctx context.Context, want string) (Choice, error) {
	if err := ValidateWant(want); err != nil {
		return Choice{}, err
	}
	if want == WantTCG {
		return Choice{Type: QEMU, Cause: CauseAsked, Reason: "TCG (software emulation), as asked for with --accel tcg"}, nil
	}
	steps, bad := p.checks()
	if bad.Cause != "" {
		if want == WantKVM {
			return Choice{}, &UnusableError{Reason: bad.Detail, Cause: bad.Cause}
		}
		return tcg(bad.Cause, bad.Detail, steps), nil
	}
	if want == WantKVM {
		return Choice{Type: KVM, Cause: CauseAsked, Steps: steps,
			Reason: "KVM, as asked for with --accel kvm (" + strings.Join(steps, "; ") + "; the test guest was not run)"}, nil
	}
	return p.probeGuest(ctx, steps)
}

// checks runs the cheap tests in order, every time (their answers are
// this user's and this libvirtd's, not the host's): the device (open,
// KVM_CREATE_VM), then libvirt's domain capabilities. It returns each
// test's detail and the first that failed (no Cause when none did).
func (p Prober) checks() ([]string, DeviceCheck) {
	dev := p.device()(p.devKVM())
	steps := []string{dev.Detail}
	if dev.Cause != "" || p.Libvirt == nil {
		return steps, dev
	}
	caps := CheckDomainCaps(p.Libvirt)
	return append(steps, caps.Detail), caps
}

// probeGuest answers auto once the cheap checks passed (steps are their
// details): from the cache, or by booting the test guest and caching its
// answer. The cache keeps only the guest's steps; this run's checks come
// first in either case. An error is returned only when ctx ends.
func (p Prober) probeGuest(ctx context.Context, steps []string) (Choice, error) {
	key, keyErr := p.Key()
	if p.Cache != "" && keyErr == nil {
		if c, ok := p.cached(key); ok {
			c.Steps = withSteps(steps, c.Steps)
			return c, nil
		}
	}
	r, err := p.runGuest(ctx)
	if ctx.Err() != nil {
		return Choice{}, ctx.Err()
	}
	c := decide(steps, r, err, cpuVirt(p.proc()), p.devKVM(), p.timeout())
	if p.Cache != "" && keyErr == nil {
		guestOnly := c
		guestOnly.Steps = c.Steps[len(steps):]
		p.store(key, guestOnly)
	} else if keyErr != nil {
		slog.Debug("accel: not caching the probe", "err", keyErr)
	}
	return c, nil
}

// withSteps is this run's checks, then the cached guest's steps that are
// not among them.
func withSteps(checks, cached []string) []string {
	out := slices.Clone(checks)
	for _, s := range cached {
		if !slices.Contains(checks, s) {
			out = append(out, s)
		}
	}
	return out
}

// decide turns the test guest's result into a Choice. virt is whether the
// CPU shows vmx/svm: a guest that fails without them fails because nested
// virtualisation is off, which is this machine's case (a /dev/kvm that
// creates VMs and hangs them in protected mode).
func decide(steps []string, r probeResult, err error, virt bool, path string, timeout time.Duration) Choice {
	steps = slices.Clone(steps)
	if !virt {
		steps = append(steps, "/proc/cpuinfo: no vmx or svm flag")
	}
	var cause Cause
	var msg string
	switch {
	case err != nil:
		cause, msg = CauseGuestFailed, "KVM present but the test guest could not be started: "+err.Error()
	case r.ExitStatus == ProbeExitStatus:
		msg = fmt.Sprintf("KVM: a test guest reached 64-bit mode under %s in %s", path, r.Elapsed.Round(time.Millisecond))
		return Choice{Type: KVM, Cause: CauseWorks, Reason: msg, Steps: append(steps, "test guest: "+msg)}
	case r.TimedOut:
		cause, msg = CauseGuestHangs, fmt.Sprintf("KVM present but a test guest did not run within %s (it hung %s)", timeout, stageWhere(r.Stages))
	case r.ExitStatus == 0:
		// -no-reboot turns a guest reset (a triple fault) into a clean exit.
		cause, msg = CauseGuestFailed, "KVM present but a test guest crashed "+stageWhere(r.Stages)
	default:
		cause, msg = CauseGuestFailed, qemuFailure(r)
	}
	steps = append(steps, "test guest: "+msg)
	if !virt && err == nil { // a QEMU that did not start says nothing about the CPU
		cause, msg = CauseNestedOff, msg+"; the CPU has no vmx/svm flag (nested virtualisation is off)"
	}
	return tcg(cause, msg, steps)
}

// qemuFailure says how QEMU ended when it failed on its own.
func qemuFailure(r probeResult) string {
	msg := fmt.Sprintf("KVM present but a test guest failed: QEMU exited with status %d", r.ExitStatus)
	if r.Signal != "" {
		msg = "KVM present but a test guest failed: QEMU was killed by " + r.Signal
	}
	if r.Error != "" {
		msg += " (" + r.Error + ")"
	}
	return msg
}

// tcg is the Choice of TCG for cause.
func tcg(cause Cause, reason string, steps []string) Choice {
	return Choice{Type: QEMU, Cause: cause, Fix: FixFor(cause), Steps: steps,
		Reason: reason + ": using TCG (software emulation, slower)"}
}

// runGuest boots the test guest under KVM with -cpu host, which is what a
// KVM domain gets (host-passthrough): a host where it fails must not get
// KVM domains either.
func (p Prober) runGuest(ctx context.Context) (probeResult, error) {
	if p.guest != nil {
		return p.guest(ctx, p)
	}
	return runProbe(ctx, p.QEMU, "kvm", "host", ProbeImage(), p.timeout())
}

// device returns the device check.
func (p Prober) device() func(string) DeviceCheck {
	if p.Device != nil {
		return p.Device
	}
	return CheckDevice
}

// devKVM returns the KVM device's path.
func (p Prober) devKVM() string {
	if p.DevKVM == "" {
		return DefaultDevKVM
	}
	return p.DevKVM
}

// qemu returns the emulator's name.
func (p Prober) qemu() string {
	if p.QEMU == "" {
		return DefaultQEMU
	}
	return p.QEMU
}

// timeout returns how long the test guest may take.
func (p Prober) timeout() time.Duration {
	if p.Timeout <= 0 {
		return DefaultTimeout
	}
	return p.Timeout
}

// proc returns where /proc is.
func (p Prober) proc() string {
	if p.Proc == "" {
		return "/proc"
	}
	return p.Proc
}

// probeResult is how the probe guest's QEMU ended.
type probeResult struct {
	ExitStatus int    // -1 when killed
	Signal     string // the signal that ended QEMU, e.g. "SIGABRT"
	TimedOut   bool   // killed at the timeout
	Stages     string // letters the guest wrote to the debug console: R, P, L
	Error      string // QEMU's error message from stderr
	Elapsed    time.Duration
}

// runProbe boots the firmware image (ProbeImage, or a broken one in tests)
// with -accel accel -cpu cpu and waits at most timeout; QEMU is killed (by
// its pid) when the time is up or ctx ends. The error is for a QEMU that
// could not be started.
func runProbe(ctx context.Context, qemu, accel, cpu string, image []byte, timeout time.Duration) (probeResult, error) {
	if qemu == "" {
		qemu = DefaultQEMU
	}
	dir, err := os.MkdirTemp("", "vmnet-accel-")
	if err != nil {
		return probeResult{}, err
	}
	defer os.RemoveAll(dir)
	bios := filepath.Join(dir, "probe.bin")
	if err := os.WriteFile(bios, image, 0o644); err != nil {
		return probeResult{}, err
	}
	stages := filepath.Join(dir, "stages")
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, qemu,
		"-accel", accel, "-cpu", cpu, "-machine", "pc", "-m", "16",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-bios", bios,
		"-debugcon", "file:"+stages,
		"-device", fmt.Sprintf("isa-debug-exit,iobase=%#x,iosize=0x04", debugExitPort))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	start := time.Now()
	err = cmd.Run()
	r := probeResult{Elapsed: time.Since(start), ExitStatus: cmd.ProcessState.ExitCode()}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return probeResult{}, err
	}
	r.TimedOut = runCtx.Err() != nil && ctx.Err() == nil
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && !r.TimedOut {
		r.Signal = unix.SignalName(ws.Signal())
	}
	b, _ := os.ReadFile(stages)
	r.Stages = string(b)
	r.Error = errorLine(stderr.String())
	return r, nil
}

// errorLine picks QEMU's error message from its stderr: the first line that
// says "error" (an abort's assertion follows it), else the last line;
// warnings about CPU features come first and are noise.
func errorLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := lines[len(lines)-1]
	for _, line := range lines {
		if strings.Contains(line, "error") {
			l = line
			break
		}
	}
	l = strings.TrimSpace(l)
	if len(l) > 200 {
		l = l[:200] + "..."
	}
	return l
}
