package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockedByMode are the modes lab's expected-blocked checks, one set per
// network mode: what the mode must not let through.
var blockedByMode = map[string][]string{
	"none":           {"ping:modes/isolated->modes:eth1", "checks[4]:ping:modes/isolated->192.0.2.1"},
	"macvlan parent": {"ping:modes->modes/lanapi", "checks[3]:tcp:modes->modes/lanapi:80"},
	"ipvlan parent":  {"ping:modes->modes/natipv", "ping:modes->modes/routed"},
	"unpublished":    {"tcp:host->modes:eth1:80"},
	"pod":            {"tcp:host->modes:eth1:8000"},
}

// podSidecarPassing are pod-sidecar's checks that must be there and green:
// the sidecar reaches the app on the pod's localhost, the published port
// is open and the app's own port is closed from the host (expected
// blocked), derived and declared.
var podSidecarPassing = []string{
	"tcp:pods/sidecar->pods/app@127.0.0.1:8000", "tcp:host->pods:eth1:8080", "tcp:host->pods:eth1:8000",
	"checks[0]:tcp:pods/sidecar->127.0.0.1:8000", "checks[1]:http:pods/sidecar->127.0.0.1:8000",
	"checks[2]:http:host->pods:podbr:8080", "checks[3]:tcp:host->pods:podbr:8000",
}

// Issue 10's first, third and fourth acceptance: the built-in modes lab (one
// capstone VM with a container in each network mode) and the pod-sidecar
// lab come up at once, two lab up processes in one sandbox, each with
// every check green, the modes lab's including at least one
// expected-blocked check per mode; vmnet perf measures its bridge, host,
// macvlan and ipvlan containers; a second up changes nothing; containers
// added with restart policies and a registry image come up alone and
// behave as their policy says (modesRestartAndRegistry); lab down of both
// leaves nothing behind.
func TestModesLab(t *testing.T) {
	// With the other lab tests that boot their own sandbox: they run
	// together after the sequential tests, keeping CI under 30 minutes.
	t.Parallel()
	capstoneImage(t)
	s := newSandbox(t)
	var modes, pod labUpJSON
	start := time.Now()
	// Two goroutines, not two parallel subtests: a parallel subtest waits
	// for a free -parallel slot behind every other parallel test of the
	// package, and the two ups then came 22 minutes late and not at once.
	t.Run("modes and pod-sidecar up at once", func(t *testing.T) {
		var wg sync.WaitGroup
		ups := []*labUpJSON{&modes, &pod}
		errs := make([]error, len(ups))
		for i, name := range []string{"modes", "pod-sidecar"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				*ups[i], errs[i] = labUpGreenE(t, s, name)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
	t.Logf("both labs up and checked in %s", time.Since(start).Round(time.Second))
	if !t.Failed() {
		checkModesLab(t, modes)
		requirePassed(t, "pod-sidecar", pod, podSidecarPassing)
		t.Run("perf container pairs", func(t *testing.T) { perfModes(t, s) })
		t.Run("second up changes nothing", func(t *testing.T) {
			again, r := labUp(t, s, "modes", "--no-check")
			if r.code != 0 || again.Outcome != "unchanged" || len(again.Changes) != 0 {
				t.Errorf("second lab up: exit %d, outcome %q, changes %v", r.code, again.Outcome, again.Changes)
			}
		})
		t.Run("restart policies and a registry image", func(t *testing.T) { modesRestartAndRegistry(t, s) })
	}
	for _, name := range []string{"modes", "pod-sidecar"} {
		down := sb(t, s, vmnetBin(t), "lab", "down", name)
		if down.code != 0 {
			t.Fatalf("lab down %s: exit %d\n%s%s", name, down.code, down.stdout, down.stderr)
		}
	}
	labResidue(t, s)
}

// labUpGreen brings lab name up in sandbox s and fails unless it was
// created with every check green.
func labUpGreen(t *testing.T, s, name string) labUpJSON {
	t.Helper()
	up, err := labUpGreenE(t, s, name)
	if err != nil {
		t.Fatal(err)
	}
	return up
}

// labUpGreenE is labUpGreen for a test's own goroutines: it returns the
// failure instead of ending the test, and uses t only to log.
func labUpGreenE(t *testing.T, s, name string) (labUpJSON, error) {
	t.Helper()
	up, r, err := labUpE(t, s, name)
	if err != nil {
		return up, err
	}
	if r.code != 0 || up.Outcome != "created" || up.Check.Failed != 0 || up.Check.Total == 0 {
		return up, fmt.Errorf("lab up %s: exit %d, outcome %q, %d of %d checks passed\n%s", name, r.code, up.Outcome, up.Check.Passed, up.Check.Total, lastLines(r.stderr, 40))
	}
	t.Logf("lab up %s: %d checks green in %.1fs, ready after %.1fs", name, up.Check.Total, up.ChecksSeconds, up.Seconds)
	return up, nil
}

// requirePassed fails for each of ids that lab's up did not run or did
// not pass.
func requirePassed(t *testing.T, lab string, up labUpJSON, ids []string) {
	t.Helper()
	passed := map[string]bool{}
	for _, res := range up.Check.Results {
		passed[res.ID] = res.Pass
	}
	for _, id := range ids {
		if !passed[id] {
			t.Errorf("lab %s: the check %s is missing or failed", lab, id)
		}
	}
}

// checkModesLab: the modes lab's expected-blocked checks per mode and its
// positive ones passed, and it started its ten containers.
func checkModesLab(t *testing.T, up labUpJSON) {
	t.Helper()
	for mode, ids := range blockedByMode {
		requirePassed(t, "modes ("+mode+")", up, ids)
	}
	requirePassed(t, "modes", up, []string{"tcp:host->modes:eth1:8090", "ping:host->modes/lanapi", "tcp:modes/sidecar->modes/app@127.0.0.1:8000", "tcp:host->modes:eth1:8081", "ping:modes->modes/web",
		"ping:host->modes/natipv", "neigh:host->modes/natipv", "neigh:host->modes/lanapi",
		"ping:host->modes/routed", "tcp:host->modes/routed:80", "neigh:host->modes/routed"}) // ipvlan l3: by its route, no neighbour entry
	var containerSteps int
	for _, c := range up.Changes {
		if strings.Contains(c, "start container") {
			containerSteps++
		}
	}
	if containerSteps != 10 {
		t.Errorf("lab up started %d containers, want 10: %v", containerSteps, up.Changes)
	}
}

// perfModes: vmnet perf modes (2 s tests) gives each container network
// mode's pair (bridge, host, macvlan, ipvlan) a positive TCP throughput,
// with the bridge container pair the baseline the others are compared with.
func perfModes(t *testing.T, s string) {
	need(t, "iperf3")
	start := time.Now()
	r := sb(t, s, vmnetBin(t), "perf", "modes", "-o", "json", "--seconds", "2")
	t.Logf("perf modes: exit %d after %s\n%s", r.code, time.Since(start).Round(time.Second), r.stderr)
	var rep perfJSON
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("perf JSON: %v\n%s", err, r.stdout)
	}
	byMode := map[string]string{}
	for _, p := range rep.Pairs {
		switch {
		case p.Error != "":
			t.Errorf("%s: %s", p.Pair, p.Error)
		case p.TCP == nil || p.TCP.BitsPerSecond <= 0:
			t.Errorf("%s: no positive TCP throughput", p.Pair)
		default:
			t.Logf("%s (%s): TCP %.0f Mbit/s, ratio %v", p.Pair, p.Mode, p.TCP.BitsPerSecond/1e6, deref(p.Ratio))
			if p.ContainerMode != "" {
				byMode[p.ContainerMode] = p.Pair
			}
		}
	}
	for _, mode := range []string{"bridge", "host", "macvlan", "ipvlan"} {
		if byMode[mode] == "" {
			t.Errorf("no %s container pair with a positive TCP throughput: %s", mode, r.stdout)
		}
	}
	if rep.Baseline != "modes/peer-modes/web:front" || r.code != 0 {
		t.Errorf("perf modes: exit %d, baseline %q; want exit 0 and the container → container pair on front, modes/peer-modes/web:front", r.code, rep.Baseline)
	}
}

// deref is a ratio for a log line: its value, or -1 without one.
func deref(v *float64) float64 {
	if v == nil {
		return -1
	}
	return *v
}
