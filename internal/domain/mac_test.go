package domain

import (
	"errors"
	"strings"
	"testing"
)

func TestMAC(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range []string{"tiny", "web1", "web2", "a"} {
		for i := range 4 {
			m := MAC(name, i)
			if m.String() != MAC(name, i).String() {
				t.Fatalf("MAC(%q, %d) not stable", name, i)
			}
			if !strings.HasPrefix(m.String(), "52:54:00:") || len(m) != 6 {
				t.Errorf("MAC(%q, %d) = %s, want 52:54:00:xx:xx:xx", name, i, m)
			}
			if seen[m.String()] {
				t.Errorf("MAC(%q, %d) = %s repeats", name, i, m)
			}
			seen[m.String()] = true
		}
	}
	// A change here changes every VM's MAC: guests lose leases and names.
	if got := MAC("tiny", 0).String(); got != "52:54:00:58:6e:9a" {
		t.Errorf("MAC(tiny, 0) = %s; the derivation changed", got)
	}
}

func TestCheckMACs(t *testing.T) {
	p, err := NewPlan(loadTiny(t), tinyImage, tcg, "/s")
	if err != nil {
		t.Fatal(err)
	}
	m0, m1 := MAC("tiny", 0).String(), MAC("tiny", 1).String()
	if err := CheckMACs(p, nil); err != nil {
		t.Errorf("no domains: %v", err)
	}
	if err := CheckMACs(p, map[string]string{m0: "tiny", strings.ToUpper(m1): "tiny", "52:54:00:00:00:01": "other"}); err != nil {
		t.Errorf("own MACs are not a clash: %v", err)
	}
	err = CheckMACs(p, map[string]string{strings.ToUpper(m1): "web"})
	var ce *MACClashError
	if !errors.As(err, &ce) || ce.NIC != 1 || ce.Domain != "web" || ce.MAC != m1 {
		t.Fatalf("clash with web: %v", err)
	}
	if want := `VM "tiny": nics[1] MAC ` + m1 + ` is already used by domain "web"`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if !strings.Contains(ce.Hint(), "nics[1].mac") {
		t.Errorf("hint = %q", ce.Hint())
	}
	p.NICs[1].MAC = p.NICs[0].MAC
	if err := CheckMACs(p, nil); !errors.As(err, &ce) || ce.Other != 0 || ce.NIC != 1 || !strings.Contains(err.Error(), "nics[0] and nics[1] both have MAC") {
		t.Errorf("duplicate within the plan: %v", err)
	}
}
