// Package junitxsd validates a JUnit XML file with xmllint against the
// schemas vmnet's JUnit meets, which internal/report/testdata ships (its
// README says where each comes from): jenkins-junit.xsd, the Jenkins
// JUnit schema that test-report tools read, and junit.xsd, vmnet's
// stricter one. Tests use it: the report package's on generated reports,
// the integration tests' on the file a real run wrote.
package junitxsd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Schema names one XSD in internal/report/testdata.
type Schema string

// The schemas a vmnet JUnit file meets.
const (
	// Jenkins is the Jenkins JUnit schema (dtkit junit-4.xsd, MIT), shipped
	// verbatim: what Jenkins and the JUnit 5 team validate against.
	Jenkins Schema = "jenkins-junit.xsd"
	// Strict is vmnet's own, stricter schema: decimal times, an ISO 8601
	// timestamp, non-empty names, at most one outcome per test case.
	Strict Schema = "junit.xsd"
)

// All is every schema, the real one first.
var All = []Schema{Jenkins, Strict}

// ErrNoXmllint is returned when xmllint is not installed.
var ErrNoXmllint = errors.New("xmllint not installed: apt-get install libxml2-utils (scripts/deps.sh installs it)")

// Path is the schema's absolute path in the source tree.
func (s Schema) Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", string(s))
}

// Validate runs `xmllint --noout --schema S file` and returns xmllint's
// complaint ("" when the file is valid), or ErrNoXmllint.
func (s Schema) Validate(file string) (string, error) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		return "", ErrNoXmllint
	}
	if _, err := os.Stat(s.Path()); err != nil {
		return "", fmt.Errorf("schema %s: %w", s, err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", s.Path(), file).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return strings.TrimSpace(string(out)), nil
	}
	if err != nil {
		return "", fmt.Errorf("xmllint --schema %s %s: %w", s, file, err)
	}
	return "", nil
}

// ValidateAll validates file against every schema in All and returns the
// complaints, each headed by its schema, joined ("" when valid).
func ValidateAll(file string) (string, error) {
	var msgs []string
	for _, s := range All {
		msg, err := s.Validate(file)
		if err != nil {
			return "", err
		}
		if msg != "" {
			msgs = append(msgs, string(s)+": "+msg)
		}
	}
	return strings.Join(msgs, "\n"), nil
}
