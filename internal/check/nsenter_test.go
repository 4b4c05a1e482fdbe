package check

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// The full IDs and init PIDs podman gives the capstone's containers in
// nsWorld.
var ctrIDs = map[string]string{
	"db":    "354f29a0db025cecd5cb562cb8613d3fdab539adc2086a34b40a9d9e4c7bbbd6",
	"api":   "3d4beed18fb257d38ebdcbe846720499b88a8e56f965587c5cfed01d12f4b88a",
	"proxy": "d68710f1227da69036878df8f2fe503e530ee3833a08402baf6433fd5b6a0842",
}

var ctrPIDs = map[string]int{"db": 490, "api": 610, "proxy": 790}

// nsWorld is the healthy capstone with each container's ID and PID known:
// every podman exec the fake guest answers is answered the same through
// nsenter. It returns the world and the target.
func nsWorld() (*world, Target) {
	w, tg := healthyWorld(), capstoneTarget()
	for i := range tg.Containers {
		c := &tg.Containers[i]
		c.ID, c.PID = ctrIDs[c.Name], ctrPIDs[c.Name]
	}
	for k, ans := range w.guest {
		rest, ok := strings.CutPrefix(k, "podman exec ")
		if !ok {
			continue
		}
		name, probe, _ := strings.Cut(rest, " ")
		w.guest[nsKey(tg, name, probe)] = ans
	}
	return w, tg
}

// nsKey is the fake guest's key for probe (argv joined by spaces) run in
// container name through nsenter.
func nsKey(tg Target, name, probe string) string {
	for _, c := range tg.Containers {
		if c.Name == name {
			return strings.Join(nsenterArgv(c, strings.Fields(probe)), " ")
		}
	}
	panic("no container " + name)
}

func guestCalls(w *world, prefix string) []string {
	var out []string
	for _, c := range w.calls {
		if strings.HasPrefix(c, "guest "+prefix) {
			out = append(out, c)
		}
	}
	return out
}

// nsenterArgv for a running container with a known PID: the script, its
// name, the PID and the full ID, then the probe's own argv unchanged; the
// script enters all five namespaces and the container's root.
func TestNsenterArgv(t *testing.T) {
	c := Container{Name: "db", State: "running", ID: ctrIDs["db"], PID: 490}
	got := nsenterArgv(c, []string{"ping", "-c", "1", "-W", "2", "192.0.2.1"})
	want := []string{"sh", "-c", nsenterScript, "vmnet-nsenter", "490", ctrIDs["db"], "ping", "-c", "1", "-W", "2", "192.0.2.1"}
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("nsenterArgv = %q\nwant %q", got, want)
	}
	if !strings.Contains(nsenterScript, `exec nsenter --target "$p" --net --mount --uts --ipc --pid --root --wd -- "$@"`) {
		t.Errorf("the script does not enter net, mount (with the root), uts, ipc and pid:\n%s", nsenterScript)
	}
	for _, c := range []Container{
		{Name: "db", State: "running", ID: ctrIDs["db"]},                     // no PID
		{Name: "db", State: "running", PID: 490},                             // no ID
		{Name: "db", State: "exited (code 137)", ID: ctrIDs["db"], PID: 490}, // stopped
	} {
		if got := nsenterArgv(c, []string{"true"}); got != nil {
			t.Errorf("%+v: nsenterArgv = %q, want nil (podman exec)", c, got)
		}
	}
}

// With the PIDs known, every check from a container enters its
// namespaces: no podman exec at all, and all 21 checks pass.
func TestContainerChecksUseNsenter(t *testing.T) {
	w, tg := nsWorld()
	for _, r := range Run(context.Background(), w, w, tg, CapstoneMatrix(tg), Options{}) {
		if !r.Pass {
			t.Errorf("%s failed: %s (%s, %s, %q)", r.ID, r.Actual, r.Hop, r.Cause, r.Evidence)
		}
	}
	if pe := guestCalls(w, "podman exec"); len(pe) > 0 {
		t.Errorf("podman exec ran with the PIDs known: %q", pe)
	}
	if n := len(guestCalls(w, "sh -c "+nsenterScript)); n != 8 {
		t.Errorf("%d nsenter probes, want 8 (6 pings, 2 lookups)", n)
	}
}

// A container podman gave no PID for is checked with podman exec, as before.
func TestContainerWithoutPIDUsesPodmanExec(t *testing.T) {
	w, tg := nsWorld()
	tg.Containers[0].PID = 0 // db
	for _, r := range Run(context.Background(), w, w, tg, CapstoneMatrix(tg), Options{}) {
		if !r.Pass {
			t.Errorf("%s failed: %s", r.ID, r.Actual)
		}
	}
	pe := guestCalls(w, "podman exec")
	if len(pe) != 2 || !strings.HasPrefix(pe[0], "guest podman exec db ") || !strings.HasPrefix(pe[1], "guest podman exec db ") {
		t.Errorf("podman exec calls %q, want db's two pings only", pe)
	}
}

// A guest without nsenter: the first check finds out, the rest go
// straight to podman exec, and all pass.
func TestNoNsenterFallsBackOnce(t *testing.T) {
	w, tg := nsWorld()
	for k := range w.guest {
		if strings.HasPrefix(k, "sh -c "+nsenterScript) {
			w.guest[k] = exit(119, nsMarker+" no nsenter")
		}
	}
	// One guest command at a time: the first to find out is the only one.
	for _, r := range Run(context.Background(), w, w, tg, CapstoneMatrix(tg), Options{Parallel: 1}) {
		if !r.Pass {
			t.Errorf("%s failed: %s", r.ID, r.Actual)
		}
	}
	if n := len(guestCalls(w, "sh -c "+nsenterScript)); n != 1 {
		t.Errorf("nsenter tried %d times, want once", n)
	}
	if n := len(guestCalls(w, "podman exec")); n != 8 {
		t.Errorf("%d podman execs, want 8", n)
	}
}

// api stopped after Discover read its PID: the script finds the PID is
// not api's any more, podman exec then fails (125) and podman says api
// exited, so api is the failing hop with its cause, as with podman exec
// alone.
func TestStoppedContainerAfterDiscoverIsTheHop(t *testing.T) {
	w, tg := nsWorld()
	for k := range w.guest {
		if strings.HasPrefix(k, "sh -c "+nsenterScript+" vmnet-nsenter "+strconv.Itoa(ctrPIDs["api"])+" ") {
			w.guest[k] = exit(118, nsMarker+" pid 610 is not container "+ctrIDs["api"])
		}
	}
	execFails(w, "api")
	w.guest["podman container exists api"] = says("")
	w.guest["podman container inspect api"] = says(`[{"Name":"api","State":{"Status":"exited","Running":false,"ExitCode":137}}]`)
	res := map[string]Result{}
	for _, r := range Run(context.Background(), w, w, tg, CapstoneMatrix(tg), Options{}) {
		res[r.ID] = r
	}
	for _, id := range []string{"ping:api->capstone", "ping:api->host:br0", "dns:api->db"} {
		r := res[id]
		if r.Pass || r.Hop != "capstone/api" || r.Cause != CauseContainerNotRunning || !strings.Contains(strings.Join(r.Evidence, "; "), "exited (code 137) now") {
			t.Errorf("%s: pass %v, hop %q, cause %q, evidence %q; want capstone/api, %s", id, r.Pass, r.Hop, r.Cause, r.Evidence, CauseContainerNotRunning)
		}
		if !strings.Contains(r.Actual, "podman exec failed (exit 125)") {
			t.Errorf("%s: actual %q, want podman exec's failure", id, r.Actual)
		}
	}
	for _, id := range []string{"ping:db->capstone", "dns:proxy->api"} {
		if !res[id].Pass {
			t.Errorf("%s failed: %s", id, res[id].Actual)
		}
	}
}

// What counts as the script (or nsenter) refusing, as opposed to the
// probe's own outcome.
func TestNsenterRefused(t *testing.T) {
	for _, tc := range []struct {
		name               string
		out                Output
		refused, noNsenter bool
	}{
		{"no nsenter", Output{Code: 119, Stderr: nsMarker + " no nsenter\n"}, true, true},
		{"not the container", Output{Code: 118, Stderr: nsMarker + " pid 610 is not container x\n"}, true, false},
		{"nsenter could not enter", Output{Code: 1, Stderr: "nsenter: cannot open /proc/610/ns/net: No such file or directory\n"}, true, false},
		{"ping: no reply", Output{Code: 1, Stdout: "1 packets transmitted, 0 received"}, false, false},
		{"119 without the marker", Output{Code: 119}, false, false},
		{"the marker with a probe's status", Output{Code: 3, Stderr: nsMarker}, false, false},
		{"passed", Output{}, false, false},
	} {
		r, n := nsenterRefused(tc.out)
		if r != tc.refused || n != tc.noNsenter {
			t.Errorf("%s: refused %v, no nsenter %v; want %v, %v", tc.name, r, n, tc.refused, tc.noNsenter)
		}
	}
}

// A guest agent that stops answering fails a container's check through
// nsenter as it does through podman exec: the guest is unreachable, and
// the check says what it could not run.
func TestNsenterGuestUnreachable(t *testing.T) {
	w, tg := nsWorld()
	w.guestDown = true
	for _, r := range Run(context.Background(), w, w, tg, CapstoneMatrix(tg), Options{}) {
		if r.From.Kind != OnContainer {
			continue
		}
		if r.Pass || r.Cause != CauseGuestUnreachable || !strings.HasPrefix(r.Actual, "could not run nsenter in the guest") {
			t.Errorf("%s: pass %v, %q, cause %q; want guest unreachable, naming nsenter", r.ID, r.Pass, r.Actual, r.Cause)
		}
	}
}
