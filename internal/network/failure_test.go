package network

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

var natSpec = Spec{Name: "n", Mode: ModeNAT, CIDR: netip.MustParsePrefix("198.51.100.0/24")}

// running is the state Ensure makes.
var running = fakeState{Exists: true, Persistent: true, Active: true, Autostart: true}

func fakeEnsure(t *testing.T, f *fakeLibvirt, s Spec) {
	t.Helper()
	if _, err := Ensure(context.Background(), f, s, noRoutes{}); err != nil {
		t.Fatalf("Ensure: %v", err)
	}
}

// A failure at each step of making a new network stops there: the result
// names what was done, the network is left as those steps made it, and a
// second run completes it.
func TestEnsureFailureLeavesWhatItSays(t *testing.T) {
	for _, tc := range []struct {
		fail    string
		changes []string
		left    fakeState
	}{
		{"DefineNetwork", nil, fakeState{}},
		{"Network.SetAutostart", []string{"define network n"}, fakeState{Exists: true, Persistent: true}},
		{"Network.Create", []string{"define network n", "set autostart"}, fakeState{Exists: true, Persistent: true, Autostart: true}},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			f := newFake()
			f.fail[tc.fail] = errInjected
			res, err := Ensure(context.Background(), f, natSpec, noRoutes{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("Ensure with %s failing: error %v, want the injected one", tc.fail, err)
			}
			var changes []string
			if res != nil {
				changes = res.Changes
			}
			if len(changes) != len(tc.changes) || len(tc.changes) > 0 && !reflect.DeepEqual(changes, tc.changes) {
				t.Errorf("changes reported %q, want %q", changes, tc.changes)
			}
			if got := f.state("n"); !reflect.DeepEqual(got, tc.left) {
				t.Errorf("state left %+v, want %+v", got, tc.left)
			}
			delete(f.fail, tc.fail)
			fakeEnsure(t, f, natSpec)
			if got := f.state("n"); !reflect.DeepEqual(got, running) {
				t.Errorf("after a second run: %+v, want %+v", got, running)
			}
		})
	}
}

// A redefinition that libvirt refuses leaves the network as it was.
func TestEnsureRedefineFailureKeepsTheNetwork(t *testing.T) {
	f := newFake()
	fakeEnsure(t, f, natSpec)
	before := f.nets["n"].config
	f.fail["DefineNetwork"] = errInjected
	moved := natSpec
	moved.CIDR = netip.MustParsePrefix("203.0.113.0/24")
	if _, err := Ensure(context.Background(), f, moved, noRoutes{}); !errors.Is(err, errInjected) {
		t.Fatalf("Ensure: error %v, want the injected one", err)
	}
	if got := f.state("n"); !reflect.DeepEqual(got, running) || f.nets["n"].config != before {
		t.Errorf("state %+v (definition changed: %v), want it as before", got, f.nets["n"].config != before)
	}
}

// A failed start says why when the cause is a missing tool libvirt runs.
func TestStartErrorProbesTools(t *testing.T) {
	cause := errors.New("internal error: child reported (status=125)")
	for _, tc := range []struct {
		name    string
		missing []string
		spec    Spec
		hint    string
	}{
		{"no firewall tool", []string{"iptables", "nft"}, natSpec, "iptables"},
		{"nft is enough", []string{"iptables"}, natSpec, "libvirtd's log"},
		{"no dnsmasq", []string{"dnsmasq"}, natSpec, "dnsmasq-base"},
		{"all there", nil, natSpec, "libvirtd's log"},
	} {
		have := func(tool string) bool {
			for _, m := range tc.missing {
				if m == tool {
					return false
				}
			}
			return true
		}
		err := startError(tc.spec, cause, have)
		var h interface{ Hint() string }
		if !errors.As(err, &h) || !strings.Contains(h.Hint(), tc.hint) {
			t.Errorf("%s: start error %v, want a hint with %q", tc.name, err, tc.hint)
		}
		if !errors.Is(err, cause) {
			t.Errorf("%s: start error %v does not wrap the cause", tc.name, err)
		}
	}
}

// A failure while deleting stops there and the result says what was done.
func TestDeleteFailureLeavesWhatItSays(t *testing.T) {
	for _, tc := range []struct {
		fail    string
		changes []string
		left    fakeState
	}{
		{"Network.Destroy", nil, running},
		{"Network.Undefine", []string{"stop network n"}, fakeState{Exists: true, Persistent: true, Autostart: true}},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			f := newFake()
			fakeEnsure(t, f, natSpec)
			f.fail[tc.fail] = errInjected
			res, err := Delete(f, "n")
			if !errors.Is(err, errInjected) {
				t.Fatalf("Delete with %s failing: error %v, want the injected one", tc.fail, err)
			}
			if res == nil || len(res.Changes) != len(tc.changes) || len(tc.changes) > 0 && !reflect.DeepEqual(res.Changes, tc.changes) {
				t.Errorf("result %+v, want changes %q", res, tc.changes)
			}
			if got := f.state("n"); !reflect.DeepEqual(got, tc.left) {
				t.Errorf("state left %+v, want %+v", got, tc.left)
			}
			delete(f.fail, tc.fail)
			if _, err := Delete(f, "n"); err != nil {
				t.Fatalf("second Delete: %v", err)
			}
			if got := f.state("n"); got.Exists {
				t.Errorf("after a second Delete: %+v, want it gone", got)
			}
		})
	}
}

// A reservation is written to the persistent definition first, then the
// live one: a failure at the live one leaves it half made, and a second
// run completes it rather than refusing it; a failure at the persistent
// one changes nothing.
func TestAddHostUpdateFailure(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	for _, tc := range []struct {
		fail         string
		config, live []netip.Addr
	}{
		{"Network.Update config", nil, nil},
		{"Network.Update live", []netip.Addr{ip}, nil},
		{"Network.Update", nil, nil},
	} {
		t.Run(tc.fail, func(t *testing.T) {
			f := newFake()
			fakeEnsure(t, f, natSpec)
			f.fail[tc.fail] = errInjected
			if _, err := AddHost(f, "n", "52:54:00:AA:00:01", ip, "g1"); !errors.Is(err, errInjected) {
				t.Fatalf("AddHost: error %v, want the injected one", err)
			}
			st := f.state("n")
			if !reflect.DeepEqual(st.Hosts, tc.config) || !reflect.DeepEqual(st.LiveHosts, tc.live) {
				t.Errorf("reservations left: config %v, live %v; want %v, %v", st.Hosts, st.LiveHosts, tc.config, tc.live)
			}
			delete(f.fail, tc.fail)
			changed, err := AddHost(f, "n", "52:54:00:aa:00:01", ip, "g1")
			if err != nil || !changed {
				t.Fatalf("second AddHost: changed %v, %v; want it to complete the reservation", changed, err)
			}
			st = f.state("n")
			if want := []netip.Addr{ip}; !reflect.DeepEqual(st.Hosts, want) || !reflect.DeepEqual(st.LiveHosts, want) {
				t.Errorf("after a second run: config %v, live %v; want %v in both", st.Hosts, st.LiveHosts, want)
			}
		})
	}
}

// RemoveHost with the live update failing leaves the live reservation,
// and a second run removes it.
func TestRemoveHostUpdateFailure(t *testing.T) {
	ip := netip.MustParseAddr("198.51.100.10")
	f := newFake()
	fakeEnsure(t, f, natSpec)
	if _, err := AddHost(f, "n", "52:54:00:aa:00:01", ip, ""); err != nil {
		t.Fatal(err)
	}
	f.fail["Network.Update live"] = errInjected
	if _, err := RemoveHost(f, "n", "52:54:00:aa:00:01"); !errors.Is(err, errInjected) {
		t.Fatalf("RemoveHost: error %v, want the injected one", err)
	}
	if st := f.state("n"); st.Hosts != nil || len(st.LiveHosts) != 1 {
		t.Errorf("left config %v, live %v; want none in config, one live", st.Hosts, st.LiveHosts)
	}
	delete(f.fail, "Network.Update live")
	if changed, err := RemoveHost(f, "n", "52:54:00:aa:00:01"); err != nil || !changed {
		t.Fatalf("second RemoveHost: changed %v, %v", changed, err)
	}
	if st := f.state("n"); st.Hosts != nil || st.LiveHosts != nil {
		t.Errorf("left config %v, live %v; want none", st.Hosts, st.LiveHosts)
	}
}

// When the stop that applies a new definition fails, the network keeps
// running the old one; a second run must still see the difference and
// restart it, not call the network unchanged.
func TestEnsureRedefineStopFailureIsRetried(t *testing.T) {
	f := newFake()
	fakeEnsure(t, f, natSpec)
	moved := natSpec
	moved.CIDR = netip.MustParsePrefix("203.0.113.0/24")
	f.fail["Network.Destroy"] = errInjected
	if _, err := Ensure(context.Background(), f, moved, noRoutes{}); !errors.Is(err, errInjected) {
		t.Fatalf("Ensure: error %v, want the injected one", err)
	}
	delete(f.fail, "Network.Destroy")
	res, err := Ensure(context.Background(), f, moved, noRoutes{})
	if err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	_, live, _ := ipv4(mustParse(f.nets["n"].live))
	if live.Masked() != moved.CIDR || res.Outcome != Changed {
		t.Errorf("after a second run the network runs %s (outcome %s, changes %q); want %s, changed", live.Masked(), res.Outcome, res.Changes, moved.CIDR)
	}
}
