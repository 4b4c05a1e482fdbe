package integration

import (
	"encoding/json"
	"strings"
	"testing"
)

// capmacAttachment are the checks the api's macvlan attachment adds to the
// capstone's: the host reaches the api on its own br0 address (ping, the
// API's JSON from the database on 5000, a MAC of its own) and the parent VM
// does not (expected blocked).
var capmacAttachment = []string{"ping:host->capstone/api", "http:host->capstone/api:5000", "neigh:host->capstone/api", "ping:capstone->capstone/api"}

// capmacCapstone are capstone checks that the attachment must leave
// green: the proxy published, the db's and the api's ports closed on the
// VM's address, the VM and the proxy still finding the api on app-net.
var capmacCapstone = []string{"http:host->capstone:eth1:8080", "http:host->capstone:eth0:8080", "tcp:host->capstone:eth1:5432",
	"tcp:host->capstone:eth1:5000", "ping:capstone->api", "dns:proxy->api", "dns:api->db"}

// Issue 10's capstone-macvlan: the built-in lab comes up with every check
// green, the capstone's own and the api's macvlan ones; the host gets the
// API's JSON straight from 192.0.2.60:5000; after the api's unit restarts
// the container (a new one, on app-net alone at first) the drop-in
// attaches it again and the checks are green again; a second up changes
// nothing; lab down leaves nothing behind.
func TestCapstoneMacvlanLab(t *testing.T) {
	// With the other lab tests that boot their own sandbox: they run
	// together after the sequential tests, keeping CI under 30 minutes.
	t.Parallel()
	capstoneImage(t)
	s := newSandbox(t)
	up := labUpGreen(t, s, "capstone-macvlan")
	requirePassed(t, "capstone-macvlan", up, append(capmacAttachment, capmacCapstone...))
	if want := capstoneChecks(t) + len(capmacAttachment); up.Check.Total != want {
		t.Errorf("%d checks, want the capstone's %d and %d for the attachment", up.Check.Total, want-len(capmacAttachment), len(capmacAttachment))
	}
	if body := sb(t, s, "curl", "-sS", "-m", "20", "http://192.0.2.60:5000/"); body.code != 0 || !strings.Contains(body.stdout, `"version":"PostgreSQL 15`) {
		t.Errorf("curl the api on its macvlan address: exit %d: %s%s", body.code, body.stdout, body.stderr)
	}
	if !t.Failed() {
		t.Run("api restarted", func(t *testing.T) { capmacRestart(t, s) })
		t.Run("second up changes nothing", func(t *testing.T) {
			again, r := labUp(t, s, "capstone-macvlan", "--no-check")
			if r.code != 0 || again.Outcome != "unchanged" || len(again.Changes) != 0 {
				t.Errorf("second lab up: exit %d, outcome %q, changes %v", r.code, again.Outcome, again.Changes)
			}
		})
	}
	if down := sb(t, s, vmnetBin(t), "lab", "down", "capstone-macvlan"); down.code != 0 {
		t.Fatalf("lab down: exit %d\n%s%s", down.code, down.stdout, down.stderr)
	}
	labResidue(t, s)
}

// capmacRestart restarts the api's unit, which replaces the container, and
// requires lab check to find every check green again within two minutes
// (the drop-in attaches the new container with the same address and MAC).
func capmacRestart(t *testing.T, s string) {
	guest(t, s, "systemctl", "restart", "vmnet-app-api.service")
	r := sb(t, s, vmnetBin(t), "-o", "json", "lab", "check", "--converge", "2m", "capstone-macvlan")
	var c checkJSON
	var rounds struct {
		Rounds int `json:"rounds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("lab check JSON: %v\n%s\n%s", err, r.stdout, lastLines(r.stderr, 20))
	}
	json.Unmarshal([]byte(r.stdout), &rounds)
	t.Logf("lab check after the api's restart: %d rounds, %d of %d passed\n%s", rounds.Rounds, c.Passed, c.Total, lastLines(r.stderr, 12))
	for _, res := range c.Results {
		if !res.Pass {
			t.Errorf("after the api's restart: %s: %s; hop %s; cause %s", res.ID, res.Actual, res.Hop, res.Cause)
		}
	}
	if r.code != 0 || c.Total != capstoneChecks(t)+len(capmacAttachment) {
		t.Errorf("lab check after the api's restart: exit %d, %d of %d passed", r.code, c.Passed, c.Total)
	}
}
