package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The guest-side probe scripts for real, with this machine's sh, bash,
// curl and getent, from the netns lab's host namespace (standing in for a
// VM) to its guest: open, refused and unanswered ports, an HTTP answer
// whose body matches or not, a blocked GET, names that resolve or not.
func TestGuestProbesInNetns(t *testing.T) {
	l := newNetnsLab(t)
	requireRoot(t, "sh", "bash", "curl", "timeout", "getent")
	vm := Place{Kind: OnVM}
	target := Target{Name: "h1vm", Agent: true}
	checks := []Check{
		{ID: "open", Method: MethodTCP, From: vm, Want: WantOpen, To: a("192.0.2.10"), Port: 5000, NIC: -1},
		{ID: "refused", Method: MethodTCP, From: vm, Want: WantClosed, To: a("192.0.2.10"), Port: 5432, NIC: -1},
		{ID: "dropped", Method: MethodTCP, From: vm, Want: WantClosed, To: a("192.0.2.99"), Port: 5432, NIC: -1},
		{ID: "must be open", Method: MethodTCP, From: vm, Want: WantOpen, To: a("192.0.2.10"), Port: 5432, NIC: -1},
		{ID: "body", Method: MethodHTTP, From: vm, Want: WantBody, Body: `"version": "PostgreSQL 15`, To: a("192.0.2.10"), Port: 8080, Address: "http://192.0.2.10:8080/", NIC: -1},
		{ID: "body mismatch", Method: MethodHTTP, From: vm, Want: WantBody, Body: "^<html>", To: a("192.0.2.10"), Port: 8080, Address: "http://192.0.2.10:8080/", NIC: -1},
		{ID: "http blocked", Method: MethodHTTP, From: vm, Want: WantNoHTTP, To: a("192.0.2.10"), Port: 5432, Address: "http://192.0.2.10:5432/", NIC: -1},
		{ID: "http not blocked", Method: MethodHTTP, From: vm, Want: WantNoHTTP, To: a("192.0.2.10"), Port: 8080, Address: "http://192.0.2.10:8080/", NIC: -1},
		{ID: "resolves", Method: MethodDNS, From: vm, Want: WantResolves, Name: "localhost", NIC: -1},
		{ID: "unresolved", Method: MethodDNS, From: vm, Want: WantUnresolved, Name: "h1-no-such-name.invalid", NIC: -1},
		{ID: "ping blocked", Method: MethodPing, From: vm, Want: WantNoReply, To: a("192.0.2.99"), NIC: -1},
		{ID: "ping not blocked", Method: MethodPing, From: vm, Want: WantNoReply, To: a("192.0.2.10"), NIC: -1},
	}
	want := map[string]bool{"open": true, "refused": true, "dropped": true, "body": true, "http blocked": true,
		"resolves": true, "unresolved": true, "ping blocked": true}
	start := time.Now()
	opt := Options{ConnectTimeout: time.Second, HTTPTimeout: 5 * time.Second}
	for _, r := range Run(context.Background(), nil, nsGuest{ns: l.hostNS}, target, checks, opt) {
		if r.Pass != want[r.ID] {
			t.Errorf("%s: pass %v (%s; %s), want %v", r.ID, r.Pass, r.Actual, r.Cause, want[r.ID])
		}
		if r.ID == "dropped" && r.Actual != "closed (no answer within 1s)" {
			t.Errorf("dropped: actual %q, want the probe's timeout", r.Actual)
		}
	}
	t.Logf("%d probes in %s", len(checks), time.Since(start).Round(time.Millisecond))
}

// Closed ports from the real host are tried at once: eight connects that
// each wait their full time limit take about one limit, not eight.
func TestClosedPortsAtOnceInNetns(t *testing.T) {
	l := newNetnsLab(t)
	var checks []Check
	for p := uint16(1); p <= 8; p++ {
		checks = append(checks, Check{ID: "tcp:192.0.2.99:" + strconv.Itoa(int(5000+p)), Method: MethodTCP,
			From: Place{Kind: OnHost}, Want: WantClosed, To: a("192.0.2.99"), Port: 5000 + p, NIC: -1})
	}
	limit := time.Second
	start := time.Now()
	for _, r := range Run(context.Background(), KernelHost{K: l.host}, noGuest{}, Target{Name: "h1"}, checks, Options{ConnectTimeout: limit}) {
		if !r.Pass {
			t.Errorf("%s: %s", r.ID, r.Actual)
		}
	}
	if d := time.Since(start); d > 3*limit {
		t.Errorf("8 unanswered connects took %s: they ran one after another (limit %s each)", d, limit)
	}
}

// busyboxGuest runs commands in a namespace with nothing but busybox's
// applets on PATH, as in the tiny image.
type busyboxGuest struct{ ns, dir string }

func (g busyboxGuest) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	argv = append([]string{"env", "PATH=" + g.dir, filepath.Join(g.dir, argv[0])}, argv[1:]...)
	return nsGuest{ns: g.ns}.Exec(ctx, argv, timeout)
}

// The same probes with busybox alone (tiny has no bash, curl or getent):
// the scripts' fallbacks to nc -e, wget -S and nslookup.
func TestGuestProbesBusybox(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("needs busybox (busybox-static) on PATH")
	}
	l := newNetnsLab(t)
	dir := t.TempDir()
	for _, applet := range []string{"sh", "timeout", "nc", "wget", "nslookup", "awk", "sed", "mktemp", "cat", "rm", "tail", "printf", "true"} {
		must(t, os.Symlink(bb, filepath.Join(dir, applet)))
	}
	vm := Place{Kind: OnVM}
	checks := []Check{
		{ID: "open", Method: MethodTCP, From: vm, Want: WantOpen, To: a("192.0.2.10"), Port: 5000, NIC: -1},
		{ID: "refused", Method: MethodTCP, From: vm, Want: WantClosed, To: a("192.0.2.10"), Port: 5432, NIC: -1},
		{ID: "dropped", Method: MethodTCP, From: vm, Want: WantClosed, To: a("192.0.2.99"), Port: 5432, NIC: -1},
		{ID: "body", Method: MethodHTTP, From: vm, Want: WantBody, Body: `"version": "PostgreSQL 15`, To: a("192.0.2.10"), Port: 8080, Address: "http://192.0.2.10:8080/", NIC: -1},
		{ID: "body mismatch", Method: MethodHTTP, From: vm, Want: WantBody, Body: "^<html>", To: a("192.0.2.10"), Port: 8080, Address: "http://192.0.2.10:8080/", NIC: -1},
		{ID: "http blocked", Method: MethodHTTP, From: vm, Want: WantNoHTTP, To: a("192.0.2.10"), Port: 5432, Address: "http://192.0.2.10:5432/", NIC: -1},
		{ID: "unresolved", Method: MethodDNS, From: vm, Want: WantUnresolved, Name: "h1-no-such-name.invalid", NIC: -1},
	}
	want := map[string]bool{"open": true, "refused": true, "dropped": true, "body": true, "http blocked": true, "unresolved": true}
	opt := Options{ConnectTimeout: time.Second, HTTPTimeout: 5 * time.Second}
	for _, r := range Run(context.Background(), nil, busyboxGuest{ns: l.hostNS, dir: dir}, Target{Name: "h1tiny", Agent: true}, checks, opt) {
		if r.Pass != want[r.ID] {
			t.Errorf("%s: pass %v (%s; %s), want %v", r.ID, r.Pass, r.Actual, r.Cause, want[r.ID])
		}
	}
}
