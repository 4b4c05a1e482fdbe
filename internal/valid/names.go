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
	// MaxNetworkName is the longest libvirt network name, in a spec, a lab
	// or `vmnet net create`; NetworkName says why it is 64.
	MaxNetworkName = 64
)

// VMName checks a VM name at field: it is the libvirt domain name, a
// directory name and the guest's hostname, so it must be a DNS label of 1 to
// MaxVMName lowercase letters, digits and '-', starting with a letter and not
// ending with '-'.
func VMName(field, name string) error { return lowerLabel(field, name, "web1") }

// LabName checks a lab name at field, by VMName's rule: a lab's name is a
// hostname too, and it is the lab tag vmnet puts on everything it makes,
// which must survive XML attributes, JSON and a bridge's alias (fields split
// at spaces and '=').
func LabName(field, name string) error { return lowerLabel(field, name, "office") }

// lowerLabel is the rule of VMName and LabName; example goes in the fix.
func lowerLabel(field, name, example string) error {
	bad := func(value, problem string) error {
		return &errs.FieldError{Form: errs.PathForm, Field: field, Value: value, Problem: problem,
			Fix: "use 1 to 63 lowercase letters, digits and '-', starting with a letter, for example " + example}
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

// NetworkName checks a libvirt network name at field, wherever it is
// written: `vmnet net create` and `net delete`, a spec's nics[].network and
// requires.networks[].name, a lab's networks. The rule is 1 to
// MaxNetworkName (64) letters, digits, '-', '_' and '.', starting with a
// letter or digit: one path element that needs no quoting in a shell, an
// XML attribute or a file name under /etc/libvirt.
//
// Why 64: specs once allowed 50 and net create 64. Every network name the
// examples, templates/labs, integration tests and docs use is at most 6
// characters, so both limits accepted them all; 64 is the one that refuses
// nothing either place accepted, so a network already made with a longer
// name can still be deleted and named in a spec. Nothing downstream needs
// less: BridgeName shortens a long name to a 15-byte interface name, and
// libvirt's and dnsmasq's files take 255-byte names.
func NetworkName(field, name string) error {
	return portableName(field, name, MaxNetworkName, "vmnet", "a network name",
		"use 1 to 64 letters, digits, '-', '_' and '.', starting with a letter or digit, for example nat0")
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
