package valid

import (
	"errors"
	"strings"
	"testing"

	"vmnet/internal/errs"
)

// TestNames: each name rule accepts its examples and refuses the rest with an
// errs.FieldError that names the field, quotes the value when there is one,
// and carries a fix.
func TestNames(t *testing.T) {
	for _, tc := range []struct {
		rule  string
		check func(string) error
		field string
		ok    []string
		bad   []string
	}{
		{"VMName", func(s string) error { return VMName("name", s) }, "name",
			[]string{"web1", "a", "a-b", strings.Repeat("a", MaxVMName)},
			[]string{"", "1a", "a-", "Web", "a_b", "a.b", strings.Repeat("a", MaxVMName+1)}},
		{"ImageName", ImageName, "image name",
			[]string{"tiny", "0day", "a-1", strings.Repeat("a", MaxImageName)},
			[]string{"", "-x", "Tiny", "a/b", "..", strings.Repeat("a", MaxImageName+1)}},
		{"SandboxName", SandboxName, "sandbox NAME",
			[]string{"lab", "0", "lab-1", strings.Repeat("x", MaxSandboxName)},
			[]string{"", "-lab", "lab-", "Lab", "lab_1", "ß", strings.Repeat("x", MaxSandboxName+1)}},
		{"NetworkName", NetworkName, "network name",
			[]string{"nat0", "Lab.net_1-a", strings.Repeat("n", MaxNetworkName)},
			[]string{"", "-a", ".a", "a b", "a/b", "nät", strings.Repeat("n", MaxNetworkName+1)}},
		{"SpecNetworkName", func(s string) error { return SpecNetworkName("nics[0].network", s) }, "nics[0].network",
			[]string{"nat0", "Lab.net_1-a", strings.Repeat("n", MaxSpecNetworkName)},
			[]string{"", "-a", "a b", "a/b", strings.Repeat("n", MaxSpecNetworkName+1)}},
	} {
		for _, s := range tc.ok {
			if err := tc.check(s); err != nil {
				t.Errorf("%s(%q) = %v, want nil", tc.rule, s, err)
			}
		}
		for _, s := range tc.bad {
			err := tc.check(s)
			var fe *errs.FieldError
			if !errors.Is(err, errs.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field || fe.Value != s && s != "" || fe.Fix == "" {
				t.Errorf("%s(%q) = %v (%#v), want a FieldError on %s with the value and a fix", tc.rule, s, err, fe, tc.field)
			}
		}
	}
}

// TestSpecNetworkNamesAreNetworkNames: the spec's rule is the stricter one,
// so a network a spec names can always be made by net create.
func TestSpecNetworkNamesAreNetworkNames(t *testing.T) {
	for _, s := range []string{"nat0", "a", "A.b_c-d", strings.Repeat("n", MaxSpecNetworkName), "-a", "a b", "", strings.Repeat("n", MaxSpecNetworkName+1)} {
		if SpecNetworkName("f", s) == nil && NetworkName(s) != nil {
			t.Errorf("%q is a spec network name but not a net create one", s)
		}
	}
}

func TestIsDNSLabel(t *testing.T) {
	for s, want := range map[string]bool{"web1": true, "A-b": true, "": false, "-a": false, "a-": false, "a.b": false,
		strings.Repeat("a", 63): true, strings.Repeat("a", 64): false} {
		if got := IsDNSLabel(s); got != want {
			t.Errorf("IsDNSLabel(%q) = %v, want %v", s, got, want)
		}
	}
}
