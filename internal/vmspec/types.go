package vmspec

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"vmnet/internal/errs"
)

// Size is an amount of memory or disk in bytes, written with a binary unit:
// 256MiB, 2GiB (or QEMU's 256M, 2G, which mean the same).
type Size uint64

// Binary units, largest first so String picks the largest exact one.
var sizeUnits = []struct {
	names []string
	bytes uint64
}{
	{[]string{"TiB", "T"}, 1 << 40},
	{[]string{"GiB", "G"}, 1 << 30},
	{[]string{"MiB", "M"}, 1 << 20},
	{[]string{"KiB", "K"}, 1 << 10},
}

// sizeFix is the hint for every malformed size.
const sizeFix = "write a whole number with a binary unit, for example 256MiB, 2GiB or 512KiB"

// ParseSize parses a size such as 256MiB, 2GiB or 2G. A bare number is
// refused: it is too easy to mean MiB and get bytes.
func ParseSize(s string) (Size, error) {
	bad := func(problem string) error {
		return &FieldError{Form: errs.PathForm, Value: s, Problem: problem, Fix: sizeFix}
	}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, bad("is not a size")
	}
	if unit == "" {
		return 0, bad("has no unit")
	}
	if unit[0] == '.' || unit[0] == ',' {
		return 0, &FieldError{Form: errs.PathForm, Value: s, Problem: "has a fraction; sizes are whole numbers", Fix: "use a smaller unit, for example 1536MiB for 1.5GiB"}
	}
	for _, u := range sizeUnits {
		for _, name := range u.names {
			if unit == name {
				if n > (1<<63)/u.bytes {
					return 0, bad("is too large")
				}
				return Size(n * u.bytes), nil
			}
		}
	}
	if unit == "MB" || unit == "GB" || unit == "KB" || unit == "TB" {
		return 0, bad("has a decimal unit; vmnet sizes are binary")
	}
	return 0, bad("has an unknown unit " + strconv.Quote(unit))
}

// String writes s with the largest binary unit that divides it exactly.
func (s Size) String() string {
	for _, u := range sizeUnits {
		if uint64(s) >= u.bytes && uint64(s)%u.bytes == 0 {
			return strconv.FormatUint(uint64(s)/u.bytes, 10) + u.names[0]
		}
	}
	return strconv.FormatUint(uint64(s), 10) + "B"
}

// KiB returns s in KiB, rounded up (libvirt's unit).
func (s Size) KiB() uint64 { return (uint64(s) + 1023) / 1024 }

// MarshalText writes the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalYAML parses a size scalar.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Duration is a time.Duration written the Go way: 90s, 2m, 1m30s.
type Duration time.Duration

// durationFix is the hint for every malformed duration.
const durationFix = "write a duration with a unit, for example 90s, 2m or 1m30s"

// ParseDuration parses a duration such as 90s or 2m.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		problem := "is not a duration"
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			problem = "has no unit"
		}
		return 0, &FieldError{Form: errs.PathForm, Value: s, Problem: problem, Fix: durationFix}
	}
	return Duration(d), nil
}

// String writes the duration as time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML parses a duration scalar.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// FileMode is a file's permission bits, written in octal: "0644", 0755.
type FileMode fs.FileMode

// ParseFileMode parses octal permission bits such as 0644.
func ParseFileMode(s string) (FileMode, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil || m > 0o7777 {
		return 0, &FieldError{Form: errs.PathForm, Value: s, Problem: "is not an octal file mode",
			Fix: "write the permission bits in octal, for example \"0644\" or \"0755\""}
	}
	return FileMode(m), nil
}

// String writes the mode in octal with a leading zero.
func (m FileMode) String() string { return fmt.Sprintf("%#o", uint32(m)) }

// MarshalText writes the mode as String does.
func (m FileMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalYAML parses an octal mode scalar.
func (m *FileMode) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseFileMode(n.Value)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// DefaultReadyMarker is the console line (its start) that vmnet's images
// print once they are up.
const DefaultReadyMarker = "VMNET-READY"

// Ready says how vmnet knows the guest is up. At most one field is set;
// none means the image's default. In YAML it is either a word (console,
// agent, lease) or a mapping such as {console: VMNET-READY}.
type Ready struct {
	Console string `yaml:"console,omitempty" json:"console,omitempty"` // a console line starts with this
	Agent   bool   `yaml:"agent,omitempty" json:"agent,omitempty"`     // the QEMU guest agent answers
	Lease   bool   `yaml:"lease,omitempty" json:"lease,omitempty"`     // libvirt's DHCP gave the guest a lease
}

// readyWords are the one-word forms of Ready.
var readyWords = map[string]Ready{
	"console": {Console: DefaultReadyMarker},
	"agent":   {Agent: true},
	"lease":   {Lease: true},
}

// parseReadyWord parses the one-word form of ready.
func parseReadyWord(s string) (Ready, error) {
	r, ok := readyWords[s]
	if !ok {
		return Ready{}, &FieldError{Form: errs.PathForm, Value: s, Problem: "is not a readiness check",
			Fix: "use console (or {console: TEXT}), agent or lease"}
	}
	return r, nil
}

// IsZero reports whether no check is set (the image's default applies).
func (r Ready) IsZero() bool { return r == Ready{} }

// String describes the check for people.
func (r Ready) String() string {
	switch {
	case r.Console != "":
		return "console line " + strconv.Quote(r.Console)
	case r.Agent:
		return "guest agent"
	case r.Lease:
		return "DHCP lease"
	}
	return "image default"
}

// UnmarshalYAML accepts a word or a mapping.
func (r *Ready) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		v, err := parseReadyWord(n.Value)
		if err != nil {
			return err
		}
		*r = v
		return nil
	}
	type plain Ready // without this method, so Decode does not recurse
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = Ready(p)
	return nil
}
