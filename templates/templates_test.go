package templates

import (
	"errors"
	"slices"
	"testing"
)

func TestProfile(t *testing.T) {
	if !slices.Contains(ProfileNames(), "tiny") {
		t.Fatalf("ProfileNames() = %v, want it to contain tiny", ProfileNames())
	}
	for _, name := range ProfileNames() {
		b, err := Profile(name)
		if err != nil || len(b) == 0 {
			t.Errorf("Profile(%q) = %d bytes, %v", name, len(b), err)
		}
	}
	for _, name := range []string{"", "nope", "../templates", "profiles/tiny", "tiny.yaml", "/tiny"} {
		if _, err := Profile(name); !errors.Is(err, ErrNoProfile) {
			t.Errorf("Profile(%q) error = %v, want ErrNoProfile", name, err)
		}
	}
}
