package vmspec

import (
	"encoding/json"
	"errors"
	"strings"
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

// isNameChar: a-z, 0-9 and '-', with mixed letters when upper is true and
// '_' and '.' when punct is true.
func isNameChar(c byte, upper, punct bool) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || upper && c >= 'A' && c <= 'Z' || punct && (c == '_' || c == '.')
}

// refusal fails the test unless err is a FieldError on field, with a fix:
// what every bad name must get.
func refusal(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.Is(err, bridge.ErrInvalid) || !errors.As(err, &fe) || fe.Field != field || fe.Fix == "" {
		t.Fatalf("refusal %v (%#v) is not an ErrInvalid FieldError on %s with a fix", err, fe, field)
	}
}

// FuzzValidateName: a VM name is the domain's name, a directory and the
// guest's hostname. Accepted are exactly DNS labels as documented: 1 to
// MaxNameLen lower-case letters, digits and '-', starting with a letter,
// not ending with '-'.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"tiny", "capstone", "web1", "tiny2", "a", "a-b", "1a", "a-", "-a", "Web", "a_b", "a.b", "", strings.Repeat("a", MaxNameLen), strings.Repeat("a", MaxNameLen+1), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		want := len(s) >= 1 && len(s) <= MaxNameLen && s[0] >= 'a' && s[0] <= 'z' && s[len(s)-1] != '-'
		for i := 0; want && i < len(s); i++ {
			want = isNameChar(s[i], false, false) || s[i] == '-'
		}
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err != nil {
			refusal(t, err, "name")
		}
	})
}

// FuzzValidateNetworkName: 1 to 64 letters, digits, '-', '_' and '.',
// starting with a letter or digit, as the error's fix says; nothing else.
// It is net create's rule (valid.NetworkName), so a spec names any network
// vmnet can make.
func FuzzValidateNetworkName(f *testing.F) {
	for _, s := range []string{"nat0", "default", "lab.net_1-a", "a", "-a", ".a", "a b", "a/b", "", strings.Repeat("n", 50), strings.Repeat("n", 51), strings.Repeat("n", 64), strings.Repeat("n", 65), "nät"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateNetworkName("requires.networks[0].name", s)
		want := len(s) >= 1 && len(s) <= 64 && isNameChar(s[0], true, false)
		for i := 1; want && i < len(s); i++ {
			want = isNameChar(s[i], true, true) || s[i] == '-'
		}
		if (err == nil) != want {
			t.Fatalf("ValidateNetworkName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err != nil {
			refusal(t, err, "requires.networks[0].name")
		}
	})
}
