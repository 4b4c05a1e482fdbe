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
// the lab's possible pairs' shape (two ends, a network of the lab).
func FuzzParsePair(f *testing.F) {
	l, err := lab.LoadRef("duo")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"host-left:br0", "left-right:br0", "left-right", "-:", "a-b-c:br0", "host-host:nat0", "left-right:nope"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePair(l, s)
		if err != nil {
			var fe *errs.FieldError
			if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "--pairs" {
				t.Fatalf("refusal %v is not a --pairs field error", err)
			}
			return
		}
		if _, ok := l.Networks[p.Net]; !ok {
			t.Fatalf("accepted %q crosses %q, not a network of the lab", s, p.Net)
		}
		if again, err := ParsePair(l, p.Name()); err != nil || again.Name() != p.Name() {
			t.Fatalf("%q → %q does not parse back: %v", s, p.Name(), err)
		}
	})
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
