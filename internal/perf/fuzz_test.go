package perf

import (
	"errors"
	"strings"
	"testing"

	"vmnet/internal/errs"
	"vmnet/internal/lab"
)

// FuzzParsePair: --pairs never panics; a refusal is invalid input naming
// --pairs; a pair it accepts names itself back the same way and is one of
// the lab's possible pairs' shape (two ends, a network of the lab or a
// podman network of a container end). Against the duo lab (VMs) and the
// modes lab (containers in every mode, NODE/CONTAINER ends).
func FuzzParsePair(f *testing.F) {
	var labs []lab.Lab
	for _, name := range []string{"duo", "modes"} {
		l, err := lab.LoadRef(name)
		if err != nil {
			f.Fatal(err)
		}
		labs = append(labs, l)
	}
	for _, s := range []string{"host-left:br0", "left-right:br0", "left-right", "-:", "a-b-c:br0", "host-host:nat0", "left-right:nope",
		"modes-modes/plain:podman", "host-modes/lanapi:br0", "modes/web-modes/plain:front", "modes/-/:podman", "host-modes/:br0", "modes-modes/web:front"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range labs {
			fuzzPair(t, l, s)
		}
	})
}

// fuzzPair is FuzzParsePair's check of s against one lab.
func fuzzPair(t *testing.T, l lab.Lab, s string) {
	p, err := ParsePair(l, s)
	if err != nil {
		var fe *errs.FieldError
		if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "--pairs" {
			t.Fatalf("refusal %v is not a --pairs field error", err)
		}
		return
	}
	if _, ok := l.Networks[p.Net]; !ok && p.NetKind != ModePodmanNet {
		t.Fatalf("accepted %q crosses %q, not a network of lab %s", s, p.Net, l.Name)
	}
	if p.NetKind == ModePodmanNet && p.ContainerMode != "bridge" {
		t.Fatalf("accepted %q on podman network %q without a bridge container", s, p.Net)
	}
	if again, err := ParsePair(l, p.Name()); err != nil || again != p {
		t.Fatalf("%q → %q does not parse back: %+v, %v", s, p.Name(), again, err)
	}
}

// FuzzParseRate: --udp-rate never panics; what it accepts is a positive,
// finite number of bits per second no more than MaxUDPRate, and a refusal
// names the flag.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"100M", "1G", "1.5K", "0", "-1M", "1e309", "M", "10m", "", strings.Repeat("7", 301)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			var fe *errs.FieldError
			if !errors.As(err, &fe) || fe.Field != "--udp-rate" {
				t.Fatalf("refusal %v does not name --udp-rate", err)
			}
			return
		}
		if !(v > 0) || v > MaxUDPRate {
			t.Fatalf("%q accepted as %v bits per second", s, v)
		}
	})
}
