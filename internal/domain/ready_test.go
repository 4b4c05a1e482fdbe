package domain

import (
	"errors"
	"strings"
	"testing"

	"vmnet/internal/bridge"
	"vmnet/internal/vmspec"
)

// ready: agent on an image without a guest agent is bad input, refused by
// the plan (before up makes anything), naming the field, the image and the fix.
func TestPlanAgentOnImageWithout(t *testing.T) {
	s := loadTiny(t)
	s.Ready = vmspec.Ready{Agent: true}
	img := tinyImage
	img.NoAgent = true
	_, err := NewPlan(s, img, tcg, "/s")
	var fe *vmspec.FieldError
	if !errors.As(err, &fe) || fe.Field != "ready" || fe.Value != "agent" {
		t.Fatalf("NewPlan error = %#v, want a FieldError on ready: agent", err)
	}
	if !errors.Is(err, bridge.ErrInvalid) {
		t.Errorf("%v is not bad input (exit 2)", err)
	}
	if !strings.Contains(err.Error(), "image tiny") || !strings.Contains(fe.Hint(), "leave ready out") || !strings.Contains(fe.Hint(), "VMNET-READY") {
		t.Errorf("error %q, hint %q: want the image and the fix", err, fe.Hint())
	}

	// The image's own readiness (a console line) is fine, and so is the
	// agent when the image has one or does not say.
	s.Ready = vmspec.Ready{}
	if _, err := NewPlan(s, img, tcg, "/s"); err != nil {
		t.Errorf("tiny with its default readiness: %v", err)
	}
	s.Ready = vmspec.Ready{Agent: true}
	if _, err := NewPlan(s, tinyImage, tcg, "/s"); err != nil {
		t.Errorf("ready: agent on an image that may have an agent: %v", err)
	}

	// No readiness in spec or image and no network NIC: the default, the
	// agent, cannot work either.
	s.Ready, s.NICs = vmspec.Ready{}, s.NICs[1:]
	img.Ready = vmspec.Ready{}
	if _, err := NewPlan(s, img, tcg, "/s"); !errors.As(err, &fe) || fe.Field != "ready" {
		t.Errorf("default agent on an image without one: %v", err)
	}
}
