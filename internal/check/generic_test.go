package check

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
)

// TestDiagnosisWithoutApp: the hop-by-hop diagnosis is the same for checks
// that no app planned: a tiny VM's BasicMatrix and a TCP check of the kind
// a lab file declares, with br0 down or the tap out of br0, are blamed on
// that hop, as the capstone's checks are (TestDiagnosis).
func TestDiagnosisWithoutApp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(w *world)
		hop    string
		cause  Cause
	}{
		{"bridge down", func(w *world) {
			l := w.links["br0"]
			l.Up, l.OperState = false, "down"
			w.links["br0"] = l
		}, "host:br0", CauseBridgeDown},
		{"tap not attached", func(w *world) {
			l := w.links["vnet1"]
			l.Master = ""
			w.links["vnet1"] = l
		}, "tap vnet1", CauseTapNotAttached},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tiny := Target{Name: "tiny", Agent: true, NICs: capstoneTarget().NICs}
			w := healthyWorld()
			w.cutNIC(tiny, 1)
			tc.break_(w)
			ssh := netip.AddrPortFrom(tiny.NICs[1].Address, 22)
			w.dials[ssh] = fmt.Errorf("%w (dial timeout)", ErrNoAnswer)
			checks := append(BasicMatrix(tiny), Check{
				ID: "tcp:host->tiny:eth1:22", Source: "host", Target: "tiny:eth1", Address: ssh.String(), Method: MethodTCP,
				Expect: "open", From: Place{Kind: OnHost}, Want: WantOpen, To: ssh.Addr(), Port: 22, NIC: 1,
			})
			over1 := 0
			for _, r := range Run(context.Background(), w, w, tiny, checks, Options{}) {
				if r.NIC != 1 {
					if !r.Pass {
						t.Errorf("%s failed: %s (%s, %s)", r.ID, r.Actual, r.Hop, r.Cause)
					}
					continue
				}
				over1++
				if r.Pass || r.Hop != tc.hop || r.Cause != tc.cause {
					t.Errorf("%s: pass %v, hop %q, cause %q (%q); want hop %q, cause %q", r.ID, r.Pass, r.Hop, r.Cause, r.Evidence, tc.hop, tc.cause)
				}
			}
			if over1 != 3 {
				t.Errorf("%d checks over eth1, want 3 (both pings and the TCP check)", over1)
			}
		})
	}
}

// TestLabDiagnosisWithoutApp: in a lab, the node without an app (office's
// client) gets the same diagnosis for its derived and its declared checks
// when its tap leaves the bridge.
func TestLabDiagnosisWithoutApp(t *testing.T) {
	o := newOfficeWorld(t)
	l := o.host.links["vnet2"]
	l.Master = ""
	o.host.links["vnet2"] = l
	noAnswer := fmt.Errorf("ping: %w", ErrNoAnswer)
	o.host.pings[a("192.0.2.20")] = noAnswer
	o.client.guest["ping -c 1 -W 2 -I eth0 192.0.2.1"] = exit(1, "")
	o.client.guest["ping -c 1 -W 2 -I eth0 192.0.2.10"] = exit(1, "")
	o.client.guest[probeArgv(tcpScript, "vmnet-tcp", "192.0.2.10", "8080", "2")] = exit(probeNoAnswer, "")
	o.client.guest[probeArgv(httpScript, "vmnet-http", "http://192.0.2.10:8080/", "10")] = exit(probeNoAnswer, "")
	res, ids := o.run(t)
	for _, id := range []string{"ping:host->client:eth0", "ping:client->host:lan", "checks[0]:ping:client->web:lan",
		"checks[1]:http:client->web:lan:8080", "checks[3]:tcp:client->web:lan:8080"} {
		r, ok := res[id]
		if !ok {
			t.Errorf("%s: no such result; have %v", id, ids)
			continue
		}
		if r.Pass || r.Hop != "tap vnet2" || r.Cause != CauseTapNotAttached {
			t.Errorf("%s: pass %v, hop %q, cause %q (%q); want tap vnet2, %q", id, r.Pass, r.Hop, r.Cause, r.Evidence, CauseTapNotAttached)
		}
	}
}
