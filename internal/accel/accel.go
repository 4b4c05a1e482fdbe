// Package accel decides how QEMU runs guests: with KVM where KVM really
// works, with TCG (QEMU's software emulation) otherwise, and says why.
//
// "Really works" means a guest runs: a host can have a /dev/kvm that answers
// every ioctl and still hang the first guest that leaves real mode (nested
// virtualisation without VT-x/AMD-V passed through). So Probe boots a tiny
// firmware guest under KVM and trusts only its exit status.
package accel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	Type   string `json:"type"`   // libvirt <domain type=...>: KVM or QEMU
	Reason string `json:"reason"` // e.g. "KVM present but a test guest did not run within 5s ...: using TCG"
}

// String formats the choice for a log line.
func (c Choice) String() string { return c.Type + ": " + c.Reason }

// UnusableError is returned when --accel kvm was asked for but KVM does not work.
type UnusableError struct {
	Reason string
}

func (e *UnusableError) Error() string {
	return "--accel kvm: KVM is not usable on this host: " + e.Reason
}

// Hint says how to proceed without KVM, or how to make it work.
func (e *UnusableError) Hint() string {
	return "use --accel auto (picks TCG where KVM does not work) or --accel tcg; KVM needs VT-x/AMD-V " +
		"(in a VM: nested virtualisation) and read-write access to /dev/kvm (the kvm group or a udev rule)"
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

// Prober runs the KVM probe. The zero value uses the defaults.
type Prober struct {
	QEMU    string        // emulator to run the probe guest with; DefaultQEMU from $PATH when empty
	DevKVM  string        // the KVM device; DefaultDevKVM when empty
	Timeout time.Duration // how long the probe guest may take; DefaultTimeout when 0
}

// Probe picks the accelerator with a default Prober; see Prober.Probe.
func Probe(ctx context.Context, want string) (Choice, error) {
	return Prober{}.Probe(ctx, want)
}

// Probe picks the accelerator for want (WantAuto, WantKVM or WantTCG; ""
// means WantAuto). Auto picks KVM only when /dev/kvm opens, answers, and a
// probe guest runs to the end under it within the timeout; otherwise TCG,
// with the reason. WantKVM returns an *UnusableError where auto would fall
// back. Nothing is cached: every call probes again.
func (p Prober) Probe(ctx context.Context, want string) (Choice, error) {
	if err := ValidateWant(want); err != nil {
		return Choice{}, err
	}
	if want == WantTCG {
		return Choice{Type: QEMU, Reason: "TCG (software emulation), as asked for with --accel tcg"}, nil
	}
	ok, reason, err := p.probeKVM(ctx)
	if err != nil {
		return Choice{}, err
	}
	if ok {
		return Choice{Type: KVM, Reason: reason}, nil
	}
	if want == WantKVM {
		return Choice{}, &UnusableError{Reason: reason}
	}
	return Choice{Type: QEMU, Reason: reason + ": using TCG (software emulation, slower)"}, nil
}

// probeKVM reports whether KVM works and, either way, why. An error is
// returned only when ctx ends.
func (p Prober) probeKVM(ctx context.Context) (bool, string, error) {
	dev := p.DevKVM
	if dev == "" {
		dev = DefaultDevKVM
	}
	if problem := checkDevice(dev); problem != "" {
		return false, problem, nil
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// -cpu host is what a KVM domain gets (host-passthrough): a host where
	// it fails must not get KVM domains either.
	r, err := runProbe(ctx, p.QEMU, "kvm", "host", ProbeImage(), timeout)
	if ctx.Err() != nil {
		return false, "", ctx.Err()
	}
	if err != nil {
		return false, "KVM present but the test guest could not be started: " + err.Error(), nil
	}
	switch {
	case r.ExitStatus == ProbeExitStatus:
		return true, fmt.Sprintf("KVM: a test guest reached 64-bit mode under %s in %s", dev, r.Elapsed.Round(time.Millisecond)), nil
	case r.TimedOut:
		return false, fmt.Sprintf("KVM present but a test guest did not run within %s (it hung %s)", timeout, stageWhere(r.Stages)), nil
	case r.ExitStatus == 0:
		// -no-reboot turns a guest reset (a triple fault) into a clean exit.
		return false, "KVM present but a test guest crashed " + stageWhere(r.Stages), nil
	}
	msg := fmt.Sprintf("KVM present but a test guest failed: QEMU exited with status %d", r.ExitStatus)
	if r.Signal != "" {
		msg = "KVM present but a test guest failed: QEMU was killed by " + r.Signal
	}
	if r.Error != "" {
		msg += " (" + r.Error + ")"
	}
	return false, msg, nil
}

// checkDevice opens the KVM device the way QEMU does and asks its API version.
func checkDevice(path string) string {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return path + " does not exist (no KVM module, or a VM without nested virtualisation)"
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return path + ": permission denied (join the kvm group to use KVM)"
	case err != nil:
		return fmt.Sprintf("%s cannot be opened: %v", path, err)
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return fmt.Sprintf("%s is not a KVM device: KVM_GET_API_VERSION: %v", path, err)
	}
	if v != kvmAPIVersion {
		return fmt.Sprintf("%s has KVM API version %d; QEMU needs %d", path, v, kvmAPIVersion)
	}
	return ""
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
