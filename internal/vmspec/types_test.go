package vmspec

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseSize(t *testing.T) {
	good := map[string]Size{"256MiB": 256 << 20, "256M": 256 << 20, "2GiB": 2 << 30, "2G": 2 << 30, "512KiB": 512 << 10, "1TiB": 1 << 40, "1 GiB": 1 << 30}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"": "is not a size", "MiB": "is not a size", "-1MiB": "is not a size", "1.5GiB": "has a fraction; sizes are whole numbers",
		"256": "has no unit", "2GB": "has a decimal unit; vmnet sizes are binary", "2gib": `has an unknown unit "gib"`,
		"99999999999999TiB": "is too large",
	}
	for in, want := range bad {
		_, err := ParseSize(in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Problem != want || fe.Fix == "" {
			t.Errorf("ParseSize(%q) error = %v, want problem %q", in, err, want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{256 << 20: "256MiB", 2 << 30: "2GiB", 1536 << 20: "1536MiB", 1 << 40: "1TiB", 1000: "1000B", 0: "0B", 3 << 10: "3KiB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", uint64(s), got, want)
		}
		if s != 0 && s%1024 == 0 {
			if back, err := ParseSize(s.String()); err != nil || back != s {
				t.Errorf("ParseSize(%q) = %v, %v; want %d", s.String(), back, err, uint64(s))
			}
		}
	}
	if got := Size(1025).KiB(); got != 2 {
		t.Errorf("KiB rounds %d, want 2", got)
	}
}

func TestParseDuration(t *testing.T) {
	if d, err := ParseDuration("1m30s"); err != nil || time.Duration(d) != 90*time.Second {
		t.Errorf("ParseDuration(1m30s) = %v, %v", d, err)
	}
	for in, want := range map[string]string{"90": "has no unit", "soon": "is not a duration", "": "is not a duration"} {
		_, err := ParseDuration(in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Problem != want {
			t.Errorf("ParseDuration(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestFileMode(t *testing.T) {
	for in, want := range map[string]FileMode{"0644": 0o644, "755": 0o755, "0o600": 0o600, "4755": 0o4755} {
		if got, err := ParseFileMode(in); err != nil || got != want {
			t.Errorf("ParseFileMode(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "rw", "0999", "17777"} {
		if _, err := ParseFileMode(in); err == nil {
			t.Errorf("ParseFileMode(%q) succeeded", in)
		}
	}
	if FileMode(0o644).String() != "0644" {
		t.Errorf("String = %s", FileMode(0o644))
	}
}

func TestReadyYAML(t *testing.T) {
	for in, want := range map[string]Ready{
		"console":              {Console: DefaultReadyMarker},
		"agent":                {Agent: true},
		"lease":                {Lease: true},
		"{console: BOOTED}":    {Console: "BOOTED"},
		"{agent: true}":        {Agent: true},
		"console: VMNET-READY": {Console: "VMNET-READY"},
	} {
		var r Ready
		if err := yaml.Unmarshal([]byte(in), &r); err != nil || r != want {
			t.Errorf("ready %q = %+v, %v; want %+v", in, r, err, want)
		}
	}
	var r Ready
	if err := yaml.Unmarshal([]byte("soon"), &r); err == nil {
		t.Error("ready: soon accepted")
	}
	if (Ready{}).String() != "image default" || (Ready{Agent: true}).String() != "guest agent" {
		t.Error("Ready.String")
	}
}
