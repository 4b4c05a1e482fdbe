package vmspec

import (
	"errors"
	"testing"

	"vmnet/internal/bridge"
	"vmnet/templates"
)

// FuzzParse: the loader reads files users write. It must never panic, and
// what it accepts must be valid and hash the same way twice.
func FuzzParse(f *testing.F) {
	for _, name := range templates.ProfileNames() {
		b, _ := templates.Profile(name)
		f.Add(b)
	}
	f.Add([]byte(base + "ready: {console: X}\ndisks: [{size: 1GiB}]\n"))
	f.Add([]byte("name: a\nimage: tiny\nnics:\n  - &n {bridge: br0}\n  - <<: *n\n    address: 192.0.2.6/24\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("name: [a, {b: c}]\nmemory: 9999999999TiB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "/specs")
		if err != nil {
			// Whatever is wrong with a document is bad input (exit code 2).
			var es Errors
			if !errors.As(err, &es) || !errors.Is(err, bridge.ErrInvalid) || len(es) == 0 {
				t.Fatalf("not Errors with problems, or not ErrInvalid: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted a spec that Validate refuses: %v", err)
		}
		if s.Hash() != s.Hash() {
			t.Fatal("Hash is not stable")
		}
	})
}
