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
		{"LabName", func(s string) error { return LabName("lab", s) }, "lab",
			[]string{"office", "capstone", "duo", "a", "lab-2", strings.Repeat("a", MaxVMName)},
			[]string{"", "2lab", "lab-", "Office", "my lab", "a=b", "lab.x", strings.Repeat("a", MaxVMName+1)}},
		{"ImageName", ImageName, "image name",
			[]string{"tiny", "0day", "a-1", strings.Repeat("a", MaxImageName)},
			[]string{"", "-x", "Tiny", "a/b", "..", strings.Repeat("a", MaxImageName+1)}},
		{"SandboxName", SandboxName, "sandbox NAME",
			[]string{"lab", "0", "lab-1", strings.Repeat("x", MaxSandboxName)},
			[]string{"", "-lab", "lab-", "Lab", "lab_1", "ß", strings.Repeat("x", MaxSandboxName+1)}},
		{"NetworkName", func(s string) error { return NetworkName("nics[0].network", s) }, "nics[0].network",
			// every network name of the examples, templates, integration tests and docs
			[]string{"nat0", "iso0", "n0", "a", "default", "podnat", "podbr", "lan", "Lab.net_1-a", "0net",
				strings.Repeat("n", 50), strings.Repeat("n", 51), strings.Repeat("n", MaxNetworkName)},
			[]string{"", "-a", ".a", "_a", "a b", "a/b", "nät", "a\n", strings.Repeat("n", MaxNetworkName+1)}},
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

// TestNameProblems: each refusal says what is wrong in words the fix
// matches, and a limit is stated with the number the fix gives.
func TestNameProblems(t *testing.T) {
	for _, tc := range []struct {
		err       error
		want, fix string
	}{
		{VMName("name", strings.Repeat("a", MaxVMName+1)), `name: "` + strings.Repeat("a", MaxVMName+1) + `" is 64 characters long; at most 63 are allowed`, "1 to 63"},
		{VMName("name", "1a"), `"1a" does not start with a lowercase letter`, "starting with a letter"},
		{VMName("name", ""), "name is missing", "1 to 63"},
		{LabName("lab", "a=b"), `lab: "a=b" contains '='`, "for example office"},
		{ImageName(strings.Repeat("a", MaxImageName+1)), "use 1 to 32 lower-case letters", "tiny"},
		{SandboxName("lab-"), "use 1 to 20 characters", "lab1"},
		{NetworkName("network name", strings.Repeat("n", MaxNetworkName+1)), `network name "` + strings.Repeat("n", MaxNetworkName+1) + `": is 65 bytes long; vmnet allows at most 64`, "1 to 64"},
		{NetworkName("network name", "bad/name"), `network name "bad/name": contains '/', which is not allowed in a network name`, "for example nat0"},
		{NetworkName("network name", ""), `network name "": is empty`, "1 to 64"},
		{NetworkName("network name", ".a"), `starts with '.'; start it with a letter or digit`, "starting with a letter or digit"},
	} {
		var fe *errs.FieldError
		if !errors.As(tc.err, &fe) || !strings.Contains(tc.err.Error(), tc.want) || !strings.Contains(fe.Fix, tc.fix) {
			t.Errorf("got %v (%#v), want a FieldError containing %q with a fix containing %q", tc.err, fe, tc.want, tc.fix)
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
