package valid

import (
	"fmt"

	"vmnet/internal/errs"
)

// The limits of the names vmnet gives to things it makes.
const (
	// MaxVMName: a VM name is also the guest's hostname, so a DNS label.
	MaxVMName = 63
	// MaxImageName: an image name is a cache directory name.
	MaxImageName = 32
	// MaxSandboxName: a sandbox name goes into a netns name (vmnet-NAME)
	// and into paths under the state directory.
	MaxSandboxName = 20
	// MaxNetworkName is the longest name `vmnet net create` accepts.
	MaxNetworkName = 64
	// MaxSpecNetworkName is the longest network name a spec may use.
	MaxSpecNetworkName = 50
)

// VMName checks a VM name at field: it is the libvirt domain name, a
// directory name and the guest's hostname, so it must be a DNS label of 1 to
// MaxVMName lowercase letters, digits and '-', starting with a letter and not
// ending with '-'.
func VMName(field, name string) error {
	bad := func(value, problem string) error {
		return &errs.FieldError{Form: errs.PathForm, Field: field, Value: value, Problem: problem,
			Fix: "use 1 to 63 lowercase letters, digits and '-', starting with a letter, for example web1"}
	}
	switch {
	case name == "":
		return bad("", "is missing")
	case len(name) > MaxVMName:
		return bad(name, fmt.Sprintf("is %d characters long; at most %d are allowed", len(name), MaxVMName))
	case name[0] < 'a' || name[0] > 'z':
		return bad(name, "does not start with a lowercase letter")
	case name[len(name)-1] == '-':
		return bad(name, "ends with '-'")
	}
	for _, r := range name {
		if !lowerOrDigit(r) && r != '-' {
			return bad(name, fmt.Sprintf("contains %q; a hostname allows only lowercase letters, digits and '-'", r))
		}
	}
	return nil
}

// ImageName checks an image name: 1 to MaxImageName lowercase letters,
// digits and '-', starting with a letter or digit, because it becomes a
// directory name in the image cache.
func ImageName(name string) error {
	if isLowerWord(name, MaxImageName) {
		return nil
	}
	return &errs.FieldError{Field: "image name", Value: name,
		Problem: "is not an image name: use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit",
		Fix:     "name an image such as tiny"}
}

// SandboxName checks a sandbox name: 1 to MaxSandboxName characters from
// a-z, 0-9 and '-', starting and ending with a letter or digit. The name
// becomes a netns name and a directory name, and people type it often.
func SandboxName(name string) error {
	if isLowerWord(name, MaxSandboxName) && name[len(name)-1] != '-' {
		return nil
	}
	return &errs.FieldError{Field: "sandbox NAME", Value: name,
		Problem: "is not a sandbox name: use 1 to 20 characters from a-z, 0-9 and '-', starting and ending with a letter or digit",
		Fix:     `name it for example "lab1"`}
}

// NetworkName checks the name of a libvirt network that `vmnet net create`
// makes: 1 to MaxNetworkName letters, digits, '-', '_' and '.', starting
// with a letter or digit. libvirt takes almost anything, but the name also
// becomes part of the bridge name and of file names under /etc/libvirt.
func NetworkName(name string) error {
	return portableName("network name", name, MaxNetworkName, "vmnet", "a network name",
		"use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit, for example nat0")
}

// SpecNetworkName checks a network name at field of a VM spec or lab file:
// the characters of NetworkName, but at most MaxSpecNetworkName of them.
//
// Why two limits: both rules were written separately (spec files first, net
// create later) and each is pinned by its tests, so neither could change
// without changing what existing spec files or commands accept. The spec
// rule is the stricter, so every network a spec names can also be made by
// `vmnet net create` (and by vm up, which makes it through the same code).
// Merge them into one when accepting longer names in specs is wanted.
func SpecNetworkName(field, name string) error {
	const fix = "use 1 to 50 letters, digits, '-', '_' and '.', starting with a letter or digit, for example nat0"
	switch {
	case name == "":
		return &errs.FieldError{Form: errs.PathForm, Field: field, Problem: "is empty", Fix: fix}
	case len(name) > MaxSpecNetworkName:
		return &errs.FieldError{Form: errs.PathForm, Field: field, Value: name,
			Problem: fmt.Sprintf("is %d characters long; at most %d are allowed", len(name), MaxSpecNetworkName), Fix: fix}
	}
	if p := nameChars(name, "a network name"); p != "" {
		return &errs.FieldError{Form: errs.PathForm, Field: field, Value: name, Problem: p, Fix: fix}
	}
	return nil
}

// nameChars checks the characters that interface and network names share:
// letters, digits, '-', '_' and '.', starting with a letter or digit, so the
// name is one path element that needs no quoting anywhere. It returns the
// problem, or "" when there is none; what names the kind ("a network name").
func nameChars(name, what string) string {
	for i, r := range name {
		ok := lowerOrDigit(r) || r >= 'A' && r <= 'Z' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok && i == 0 {
			return fmt.Sprintf("starts with %q; start it with a letter or digit", r)
		}
		if !ok {
			return fmt.Sprintf("contains %q, which is not allowed in %s", r, what)
		}
	}
	return ""
}

// portableName is the check of interface and network names: not empty, at
// most max bytes (the limit set by whom), and nameChars' characters; a
// refusal is a FieldError on field with fix.
func portableName(field, name string, max int, limitBy, what, fix string) error {
	problem := ""
	switch {
	case name == "":
		problem = "is empty"
	case len(name) > max:
		problem = fmt.Sprintf("is %d bytes long; %s allows at most %d", len(name), limitBy, max)
	default:
		problem = nameChars(name, what)
	}
	if problem == "" {
		return nil
	}
	return &errs.FieldError{Field: field, Value: name, Problem: problem, Fix: fix}
}

// isLowerWord reports whether name is 1 to max characters from a-z, 0-9
// and '-', not starting with '-'.
func isLowerWord(name string, max int) bool {
	ok := name != "" && len(name) <= max && name[0] != '-'
	for _, r := range name {
		ok = ok && (lowerOrDigit(r) || r == '-')
	}
	return ok
}

// lowerOrDigit reports whether r is in a-z or 0-9.
func lowerOrDigit(r rune) bool { return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' }
