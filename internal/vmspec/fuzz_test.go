package vmspec

import (
	"encoding/json"
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
			var es Errors
			if errors.As(err, &es) && (!errors.Is(err, bridge.ErrInvalid) || len(es) == 0) {
				t.Fatalf("Errors without problems or not ErrInvalid: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse accepted a spec that Validate refuses: %v", err)
		}
		// Hash must cover exactly what was parsed: the spec written out again
		// (its JSON is YAML too, with the same field names) parses to a spec
		// with the same hash, and a spec that differs hashes differently.
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		again, err := Parse(out, "/specs")
		if err != nil {
			t.Fatalf("the accepted spec, written out, does not parse: %v\n%s", err, out)
		}
		if again.Hash() != s.Hash() {
			t.Fatalf("hash %s, but %s after a re-parse of\n%s", s.Hash(), again.Hash(), out)
		}
		changed := s
		changed.VCPUs = s.VCPUs%MaxVCPUs + 1
		if changed.Hash() == s.Hash() {
			t.Fatalf("vcpus %d and %d hash the same (%s)", s.VCPUs, changed.VCPUs, s.Hash())
		}
		renamed := s
		renamed.Name = s.Name + "x"
		if renamed.Hash() == s.Hash() {
			t.Fatalf("names %q and %q hash the same", s.Name, renamed.Name)
		}
	})
}
