package accel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vmnet/internal/errs"
)

func TestProbeImageLayout(t *testing.T) {
	img := ProbeImage()
	if len(img) != 64<<10 {
		t.Fatalf("image is %d bytes, want 64 KiB", len(img))
	}
	// The reset vector far-jumps to 0xF000:0000, the start of the image.
	if got := img[0xfff0:0xfff5]; !bytes.Equal(got, []byte{0xea, 0x00, 0x00, 0x00, 0xf0}) {
		t.Errorf("reset vector = % x, want ea 00 00 00 f0", got)
	}
	checks := []struct {
		name string
		off  int
		want []byte
	}{
		{"start16 is cli", 0x00, []byte{0xfa}},
		{"start32 (target of the first far jump, 0xF0022) is mov $0x10,%ax", 0x22, []byte{0x66, 0xb8, 0x10, 0x00}},
		{"start64 (target of the second far jump, 0xF009D) prints L", 0x9d, []byte{0xb0, 'L', 0xe6, 0xe9}},
		{"the guest writes 0x31 to port 0xf4", 0xa1, []byte{0xb0, 0x31, 0xe6, 0xf4}},
		{"gdtr: limit 31, base 0xF00A8", 0xc8, []byte{0x1f, 0x00, 0xa8, 0x00, 0x0f, 0x00}},
		{"GDT 0x18 is a 64-bit code segment (L bit)", 0xa8 + 0x18, []byte{0xff, 0xff, 0, 0, 0, 0x9a, 0xaf, 0}},
		{"first far jump targets 0x08:0xF0022", 0x1a, []byte{0x66, 0xea, 0x22, 0x00, 0x0f, 0x00, 0x08, 0x00}},
		{"second far jump targets 0x18:0xF009D", 0x96, []byte{0xea, 0x9d, 0x00, 0x0f, 0x00, 0x18, 0x00}},
	}
	for _, c := range checks {
		if got := img[c.off : c.off+len(c.want)]; !bytes.Equal(got, c.want) {
			t.Errorf("%s: bytes at %#x = % x, want % x", c.name, c.off, got, c.want)
		}
	}
	if len(probeCode) != 0xce {
		t.Errorf("probe code is %#x bytes, want 0xce (up to the end of gdtr)", len(probeCode))
	}
	for i, b := range img[len(probeCode):0xfff0] {
		if b != 0 {
			t.Fatalf("byte %#x = %#x between code and reset vector, want 0", len(probeCode)+i, b)
		}
	}
	if ProbeExitStatus != 99 {
		t.Errorf("ProbeExitStatus = %d, want (0x31<<1)|1 = 99", ProbeExitStatus)
	}
}

// TestProbeImageMatchesSource proves the hand-written bytes are the
// assembly in testdata/probe.S.
func TestProbeImageMatchesSource(t *testing.T) {
	for _, tool := range []string{"as", "ld"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (package binutils): cannot assemble testdata/probe.S", tool)
		}
	}
	dir := t.TempDir()
	obj, bin := filepath.Join(dir, "probe.o"), filepath.Join(dir, "probe.bin")
	for _, args := range [][]string{
		{"as", "--64", "-o", obj, "testdata/probe.S"},
		{"ld", "-m", "elf_x86_64", "-Ttext=0", "--oformat", "binary", "-e", "0", "-o", bin, obj},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got := ProbeImage()
	if len(got) != len(want) {
		t.Fatalf("ProbeImage() is %d bytes, assembled probe.S is %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("ProbeImage() differs from probe.S at %#x: %#x, want %#x", i, got[i], want[i])
		}
	}
}

func TestStageWhere(t *testing.T) {
	for stages, want := range map[string]string{
		"":    "before its first instruction",
		"R":   "entering 32-bit protected mode",
		"RP":  "entering 64-bit long mode",
		"RPL": "after reaching 64-bit long mode",
		"X":   "at an unknown stage (X)",
	} {
		if got := stageWhere(stages); got != want {
			t.Errorf("stageWhere(%q) = %q, want %q", stages, got, want)
		}
	}
}

func TestErrorLine(t *testing.T) {
	for _, c := range []struct{ stderr, want string }{
		{"", ""},
		{"qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]\n", "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]"},
		{"w: warning\nqemu: error: failed to set MSR 0x10a to 0x69\nqemu: kvm.c:3183: Assertion failed.\n", "qemu: error: failed to set MSR 0x10a to 0x69"},
		{"one\ntwo\n\n", "two"},
		{strings.Repeat("x", 300), strings.Repeat("x", 200) + "..."},
	} {
		if got := errorLine(c.stderr); got != c.want {
			t.Errorf("errorLine(%q) = %q, want %q", c.stderr, got, c.want)
		}
	}
}

func TestProbeWithoutKVMDevice(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "kvm")
	cases := []struct {
		name, dev, problem string
	}{
		{"no device", missing, "does not exist"},
		{"not a KVM device", "/dev/null", "is not a KVM device"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A QEMU that does not exist proves the probe guest is not started.
			p := Prober{DevKVM: c.dev, QEMU: "/nonexistent/qemu"}
			got, err := p.Probe(ctx, WantAuto)
			if err != nil {
				t.Fatalf("Probe(auto) error: %v", err)
			}
			if got.Type != QEMU || !strings.Contains(got.Reason, c.problem) || !strings.HasSuffix(got.Reason, "using TCG (software emulation, slower)") {
				t.Errorf("Probe(auto) = %+v, want qemu with a reason saying %q and using TCG", got, c.problem)
			}
			_, err = p.Probe(ctx, WantKVM)
			var ue *UnusableError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.problem) || ue.Hint() == "" {
				t.Errorf("Probe(kvm) error = %v, want an *UnusableError saying %q with a hint", err, c.problem)
			}
		})
	}
}

func TestProbeWant(t *testing.T) {
	p := Prober{DevKVM: "/nonexistent/kvm", QEMU: "/nonexistent/qemu"}
	got, err := p.Probe(context.Background(), WantTCG)
	if err != nil || got.Type != QEMU || !strings.Contains(got.Reason, "--accel tcg") {
		t.Errorf("Probe(tcg) = %+v, %v; want qemu because it was asked for", got, err)
	}
	for _, want := range []string{"KVM", "hvf", "tcg ", "qemu"} {
		_, err := p.Probe(context.Background(), want)
		var fe *errs.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, errs.ErrInvalid) || fe.Field != "--accel" || fe.Hint() == "" {
			t.Errorf("Probe(%q) error = %v, want a --accel field error with a hint", want, err)
		}
	}
}

func needQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(DefaultQEMU); err != nil {
		t.Skipf("%s not installed (package qemu-system-x86): cannot run the probe guest", DefaultQEMU)
	}
}

// TestProbeGuestRunsUnderTCG proves the probe guest itself: under TCG, which
// works everywhere, it must reach long mode and make QEMU exit with 99.
func TestProbeGuestRunsUnderTCG(t *testing.T) {
	needQEMU(t)
	for _, cpu := range []string{"qemu64", "max"} {
		t.Run(cpu, func(t *testing.T) {
			r, err := runProbe(context.Background(), "", "tcg", cpu, ProbeImage(), 30*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if r.ExitStatus != ProbeExitStatus || r.Stages != "RPL" || r.TimedOut {
				t.Fatalf("probe guest under TCG: %+v, want exit status %d after stages RPL", r, ProbeExitStatus)
			}
			t.Logf("probe guest ran under TCG (-cpu %s) in %s", cpu, r.Elapsed)
		})
	}
}

// TestProbeGuestTimeout: a guest that never exits is killed at the timeout
// and reported as such, not as a failure of QEMU.
func TestProbeGuestTimeout(t *testing.T) {
	needQEMU(t)
	hang := make([]byte, probeImageSize)
	copy(hang[resetVector:], []byte{0xeb, 0xfe}) // jmp .
	start := time.Now()
	r, err := runProbe(context.Background(), "", "tcg", "qemu64", hang, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Stages != "" || r.Signal != "" {
		t.Errorf("hanging guest: %+v, want TimedOut with no stages", r)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("runProbe took %s with a 1s timeout", d)
	}
}

// TestProbeHost runs the real probe on this host. Which accelerator it
// picks depends on the host; the answers for auto and kvm must agree, and
// the second auto call must come from the cache.
func TestProbeHost(t *testing.T) {
	needQEMU(t)
	ctx := context.Background()
	p := Prober{Cache: filepath.Join(t.TempDir(), "accel.json")}
	start := time.Now()
	auto, err := p.Probe(ctx, WantAuto)
	if err != nil {
		t.Fatalf("Probe(auto): %v", err)
	}
	t.Logf("auto picked %s (cause %s) in %s; steps %q", auto, auto.Cause, time.Since(start), auto.Steps)
	if auto.Reason == "" || (auto.Type != KVM && auto.Type != QEMU) || auto.Cause == "" || auto.Cached {
		t.Fatalf("Probe(auto) = %+v", auto)
	}
	if auto.Type == QEMU && auto.Fix == "" {
		t.Errorf("Probe(auto) picked TCG without a fix: %+v", auto)
	}
	start = time.Now()
	again, err := p.Probe(ctx, WantAuto)
	if err != nil || again.Type != auto.Type || again.Cause != auto.Cause || (!again.Cached && auto.Cause != CauseNoDevice) {
		t.Errorf("second Probe(auto) = %+v, %v; want the first answer, from the cache", again, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second Probe(auto) took %s; the cache should answer at once", d)
	}
	kvm, err := p.Probe(ctx, WantKVM)
	deviceOK := CheckDevice(DefaultDevKVM).Cause == ""
	var ue *UnusableError
	switch {
	case deviceOK && (err != nil || kvm.Type != KVM || kvm.Cause != CauseAsked):
		t.Errorf("the device works but Probe(kvm) = %+v, %v; want KVM as asked", kvm, err)
	case !deviceOK && !errors.As(err, &ue):
		t.Errorf("the device fails but Probe(kvm) = %+v, %v; want an *UnusableError", kvm, err)
	}
}

func TestProbeCanceled(t *testing.T) {
	needQEMU(t)
	if _, err := os.Stat(DefaultDevKVM); err != nil {
		t.Skip("no /dev/kvm: the probe ends before it starts QEMU")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// No cache: with the host's cache filled in (any earlier vm up on this
	// boot), Probe answers from it and never starts the guest to cancel.
	if _, err := (Prober{}).Probe(ctx, WantAuto); !errors.Is(err, context.Canceled) {
		t.Errorf("Probe with a canceled context: %v, want context.Canceled", err)
	}
}
