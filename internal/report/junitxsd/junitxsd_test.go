package junitxsd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestValidate: a minimal JUnit file meets both schemas, and one whose
// test case has no name is refused by each, with xmllint's complaint.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xml")
	bad := filepath.Join(dir, "bad.xml")
	doc := `<testsuites><testsuite name="s" tests="1" failures="0" errors="0" time="0.1" timestamp="2026-11-26T05:00:00"><testcase %s classname="c" time="0.1"/></testsuite></testsuites>`
	for f, attr := range map[string]string{good: `name="t"`, bad: ``} {
		if err := os.WriteFile(f, []byte(fmt.Sprintf(doc, attr)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range All {
		msg, err := s.Validate(good)
		if errors.Is(err, ErrNoXmllint) && os.Getenv("CI") != "true" {
			t.Skip(err)
		}
		if err != nil || msg != "" {
			t.Errorf("%s: a valid file: %v %s", s, err, msg)
		}
		if msg, err := s.Validate(bad); err != nil || msg == "" {
			t.Errorf("%s accepts a test case without a name (%v)", s, err)
		}
	}
	if msg, err := ValidateAll(good); err != nil || msg != "" {
		t.Errorf("ValidateAll: %v %s", err, msg)
	}
}

// TestMissingSchema names the schema file that is not there.
func TestMissingSchema(t *testing.T) {
	if _, err := Schema("nope.xsd").Validate(os.DevNull); err == nil {
		t.Error("a missing schema validated")
	}
}
