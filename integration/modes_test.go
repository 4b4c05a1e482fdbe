package integration

import (
	"strings"
	"testing"
)

// blockedByMode are the modes lab's expected-blocked checks, one set per
// network mode: what the mode must not let through.
var blockedByMode = map[string][]string{
	"none":           {"ping:modes/isolated->modes:eth1", "checks[4]:ping:modes/isolated->192.0.2.1"},
	"macvlan parent": {"ping:modes->modes/lanapi", "checks[3]:tcp:modes->modes/lanapi:80"},
	"ipvlan parent":  {"ping:modes->modes/natipv"},
	"unpublished":    {"tcp:host->modes:eth1:80"},
	"pod":            {"tcp:host->modes:eth1:8000"},
}

// Issue 10's first acceptance: the built-in modes lab (one capstone VM with
// a container in each network mode) comes up in a sandbox with every check
// green, including at least one expected-blocked check per mode; a second
// up changes nothing; lab down leaves nothing behind.
func TestModesLab(t *testing.T) {
	capstoneImage(t)
	s := newSandbox(t)
	up, r := labUp(t, s, "modes")
	if r.code != 0 || up.Outcome != "created" || up.Check.Failed != 0 || up.Check.Total == 0 {
		t.Fatalf("lab up modes: exit %d, outcome %q, %d of %d checks passed\n%s", r.code, up.Outcome, up.Check.Passed, up.Check.Total, lastLines(r.stderr, 40))
	}
	passed := map[string]bool{}
	for _, res := range up.Check.Results {
		passed[res.ID] = res.Pass
	}
	for mode, ids := range blockedByMode {
		for _, id := range ids {
			if !passed[id] {
				t.Errorf("%s: the expected-blocked check %s is missing or failed", mode, id)
			}
		}
	}
	for _, id := range []string{"tcp:host->modes:eth1:8090", "ping:host->modes/lanapi", "tcp:modes/sidecar->modes/app@127.0.0.1:8000", "tcp:host->modes:eth1:8081", "ping:modes->modes/web",
		"ping:host->modes/natipv", "neigh:host->modes/natipv", "neigh:host->modes/lanapi"} {
		if !passed[id] {
			t.Errorf("the positive check %s is missing or failed", id)
		}
	}
	var containerSteps int
	for _, c := range up.Changes {
		if strings.Contains(c, "start container") {
			containerSteps++
		}
	}
	if containerSteps != 8 {
		t.Errorf("lab up started %d containers, want 8: %v", containerSteps, up.Changes)
	}
	t.Logf("lab up modes: %d checks green in %.1fs, ready after %.1fs", up.Check.Total, up.ChecksSeconds, up.Seconds)

	t.Run("second up changes nothing", func(t *testing.T) {
		again, r := labUp(t, s, "modes", "--no-check")
		if r.code != 0 || again.Outcome != "unchanged" || len(again.Changes) != 0 {
			t.Errorf("second lab up: exit %d, outcome %q, changes %v", r.code, again.Outcome, again.Changes)
		}
	})

	down := sb(t, s, vmnetBin(t), "lab", "down", "modes")
	if down.code != 0 {
		t.Fatalf("lab down modes: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	labResidue(t, s)
}
