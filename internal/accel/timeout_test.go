package accel

import (
	"testing"
	"time"
)

// TestTimeoutScalesWithTheAccelerator pins the rule: the KVM budget under
// KVM, ten times it under TCG, and TCG's budget for an unknown type.
func TestTimeoutScalesWithTheAccelerator(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		base time.Duration
		want time.Duration
	}{
		{KVM, BootKVM, 30 * time.Second},
		{QEMU, BootKVM, 5 * time.Minute},
		{"", BootKVM, 5 * time.Minute},
		{KVM, ProvisionKVM, 5 * time.Minute},
		{QEMU, ProvisionKVM, 50 * time.Minute},
		{KVM, 7 * time.Second, 7 * time.Second},
		{QEMU, 7 * time.Second, 70 * time.Second},
	} {
		if got := Timeout(tc.typ, tc.base); got != tc.want {
			t.Errorf("Timeout(%q, %s) = %s, want %s", tc.typ, tc.base, got, tc.want)
		}
	}
	if got := Timeout(QEMU, BootKVM) / Timeout(KVM, BootKVM); got != TCGSlowdown {
		t.Errorf("TCG/KVM boot ratio = %d, want %d", got, TCGSlowdown)
	}
}

// TestConvergeScalesWithTheAccelerator pins lab up's default rerun window:
// 30 s under KVM, 2 min under TCG and for an unknown accelerator.
func TestConvergeScalesWithTheAccelerator(t *testing.T) {
	for typ, want := range map[string]time.Duration{KVM: 30 * time.Second, QEMU: 2 * time.Minute, "": 2 * time.Minute} {
		if got := Converge(typ); got != want {
			t.Errorf("Converge(%q) = %s, want %s", typ, got, want)
		}
	}
}
