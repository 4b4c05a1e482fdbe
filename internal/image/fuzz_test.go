package image

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzValidateName: an image name becomes a cache directory name. Accepted
// are exactly the documented names: 1 to 32 lower-case letters, digits and
// '-', starting with a letter or digit; a refusal quotes the name.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"tiny", "capstone", "a", "0day", "-x", "Tiny", "a_b", "a/b", "..", "", strings.Repeat("a", 32), strings.Repeat("a", 33), "tiny\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateName(s)
		want := len(s) >= 1 && len(s) <= 32 && s[0] != '-' && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
		if (err == nil) != want {
			t.Fatalf("ValidateName(%q) = %v; the documented rule says valid=%v", s, err, want)
		}
		if err != nil && !strings.Contains(err.Error(), strconv.Quote(s)) {
			t.Fatalf("ValidateName(%q): %v does not quote the name", s, err)
		}
	})
}
