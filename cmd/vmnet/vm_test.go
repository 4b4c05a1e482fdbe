package main

import (
	"testing"

	"vmnet/internal/image"
)

// The domain learns from the image whether a guest agent can answer.
func TestFromImageAgent(t *testing.T) {
	tiny := fromImage(image.Image{Name: "tiny", Kernel: "/k", Initrd: "/i", ReadyLine: "VMNET-READY"})
	if !tiny.NoAgent || tiny.Ready.Console != "VMNET-READY" {
		t.Errorf("tiny: %+v, want NoAgent and the console line", tiny)
	}
	capstone := fromImage(image.Image{Name: "capstone", Kernel: "/k", Initrd: "/i", Disk: "/d", ReadyAgent: true})
	if capstone.NoAgent || !capstone.Ready.Agent {
		t.Errorf("capstone: %+v, want an agent", capstone)
	}
}
