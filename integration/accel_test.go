package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// The accelerator probe's answer is shared by the host and every sandbox
// on one boot: a sandbox has its own /run, and an answer kept there made
// the first up in every new sandbox wait the probe's 5 s again (the tiny
// boot benchmark's whole gap to bare QEMU on this machine). After vmnet
// doctor on the host has probed, doctor in a new sandbox answers from the
// cache.
func TestAccelAnswerSharedWithSandboxes(t *testing.T) {
	bin := vmnetBin(t)
	if out, err := exec.Command(bin, "doctor").CombinedOutput(); err != nil && !strings.Contains(string(out), "kvm") {
		t.Fatalf("doctor on the host: %v\n%s", err, out)
	}
	s := newSandbox(t)
	r := sb(t, s, bin, "doctor")
	var kvm string
	for _, line := range strings.Split(r.stdout+r.stderr, "\n") {
		if strings.HasPrefix(line, "kvm ") {
			kvm = line
		}
	}
	if !strings.Contains(kvm, "cached in") {
		t.Errorf("doctor in a new sandbox probed again instead of using the host's answer:\n%s", kvm)
	}
}
