package check

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// A VM given the host's address on br0: the host "reaches" it by pinging
// itself, and the VM "reaches" the host by pinging itself. Neither check
// may pass, and neither is even tried.
func TestCheckOfOwnAddressFails(t *testing.T) {
	w := healthyWorld()
	target := capstoneTarget()
	target.NICs[1].Address = a("192.0.2.1")                // the host's address on br0
	w.guest["ping -c 1 -W 2 -I eth1 192.0.2.1"] = says("") // the guest answers itself
	results := Run(context.Background(), w, w, target, BasicMatrix(target), Options{})
	res := map[string]Result{}
	for _, r := range results {
		res[r.ID] = r
	}
	for _, id := range []string{"ping:host->capstone:eth1", "ping:capstone->host:br0"} {
		r := res[id]
		switch {
		case r.Pass:
			t.Errorf("%s passed (%s): its target is its own source", id, r.Actual)
		case r.Actual != "target address 192.0.2.1 belongs to the source itself: the check proves nothing":
			t.Errorf("%s: actual %q", id, r.Actual)
		case r.Cause != CauseOwnAddress || !slices.Contains(Causes, r.Cause):
			t.Errorf("%s: cause %q, want %q (in Causes)", id, r.Cause, CauseOwnAddress)
		case !slices.ContainsFunc(r.Evidence, func(e string) bool { return strings.Contains(e, "192.0.2.1 is ") }):
			t.Errorf("%s: evidence %q does not say who holds 192.0.2.1", id, r.Evidence)
		}
	}
	for _, id := range []string{"ping:host->capstone:eth0", "ping:capstone->host:nat0"} {
		if !res[id].Pass {
			t.Errorf("%s failed: %s", id, res[id].Actual)
		}
	}
	for _, c := range w.calls {
		if c == "host ping 192.0.2.1" || c == "guest ping -c 1 -W 2 -I eth1 192.0.2.1" {
			t.Errorf("a check that proves nothing was run: %s", c)
		}
	}
}

func TestOwnAddress(t *testing.T) {
	target := capstoneTarget()
	for _, tc := range []struct {
		name string
		c    Check
		want string // a substring; "" for not the source's own
	}{
		{"host → the host's br0 address", Check{From: Place{Kind: OnHost}, Method: MethodPing, To: a("192.0.2.1")}, "the host's address on br0"},
		{"host → the host's nat0 address", Check{From: Place{Kind: OnHost}, Method: MethodTCP, To: a("198.51.100.1")}, "the host's address on nat0"},
		{"host → the VM", Check{From: Place{Kind: OnHost}, Method: MethodHTTP, To: a("192.0.2.10")}, ""},
		{"VM → its own eth0", Check{From: Place{Kind: OnVM}, Method: MethodPing, To: a("198.51.100.23")}, "capstone's address on eth0"},
		{"VM → its own app-net address", Check{From: Place{Kind: OnVM}, Method: MethodPing, To: a("10.89.0.1")}, "capstone's address on app-net"},
		{"VM → the host", Check{From: Place{Kind: OnVM}, Method: MethodPing, To: a("192.0.2.1")}, ""},
		{"container → itself", Check{From: Place{Kind: OnContainer, Container: "api"}, Method: MethodPing, To: a("10.89.0.3")}, "container api's address"},
		{"container → another", Check{From: Place{Kind: OnContainer, Container: "api"}, Method: MethodPing, To: a("10.89.0.2")}, ""},
		{"DNS answers are not targets", Check{From: Place{Kind: OnContainer, Container: "api"}, Method: MethodDNS, To: a("10.89.0.3")}, ""},
		{"no address", Check{From: Place{Kind: OnHost}, Method: MethodPing}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ownAddress(target, tc.c)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("ownAddress = %q, want %q", got, tc.want)
			}
		})
	}
}
