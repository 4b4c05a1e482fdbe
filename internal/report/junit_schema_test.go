package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"vmnet/internal/check"
	"vmnet/internal/report/junitxsd"
)

// xmllint validates doc against every schema in junitxsd.All (the
// Jenkins JUnit schema and vmnet's stricter one) and returns the
// complaints, or "" when the document is valid. Without xmllint it skips,
// or fails under CI=true: scripts/deps.sh installs it.
func xmllint(t *testing.T, doc []byte) string {
	t.Helper()
	return validate(t, doc, junitxsd.All...)
}

// validate is xmllint against the given schemas only.
func validate(t *testing.T, doc []byte, schemas ...junitxsd.Schema) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, s := range schemas {
		msg, err := s.Validate(f)
		if errors.Is(err, junitxsd.ErrNoXmllint) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%v, and CI must validate the JUnit against its schema", err)
			}
			t.Skipf("%v: cannot validate JUnit against its schema", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if msg != "" {
			msgs = append(msgs, string(s)+": "+msg)
		}
	}
	return strings.Join(msgs, "\n")
}

// hostile is a run whose text is everything a guest may print.
func hostile() *check.Report {
	r := sample()
	r.Results[1].Evidence = append(r.Results[1].Evidence, "nft said ]]> and <b>&amp;</b>")
	r.Results[1].Actual = "ping: ]]> \x1b[0m\x00"
	return r
}

// TestJUnitValidatesAgainstSchema: what JUnit and JUnitAll write meets the
// schema test-report tools read, and its counts match its elements (what
// XSD 1.0 cannot check).
func TestJUnitValidatesAgainstSchema(t *testing.T) {
	empty := passing()
	empty.Results = nil
	lab2 := passing()
	lab2.VM = "router-lab"
	for name, reports := range map[string][]*check.Report{
		"failing": {sample()}, "passing": {passing()}, "long": {long()}, "hostile": {hostile()},
		"no checks": {empty}, "one suite per lab": {sample(), lab2},
	} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := JUnitAll(&b, reports...); err != nil {
				t.Fatal(err)
			}
			if msg := xmllint(t, b.Bytes()); msg != "" {
				t.Fatalf("JUnit output does not validate:\n%s\n%s", msg, b.String())
			}
			checkJUnitCounts(t, b.Bytes(), reports)
		})
	}
}

// checkJUnitCounts: one testsuite per report, tests and failures equal to
// the testcase and failure elements, at every level.
func checkJUnitCounts(t *testing.T, b []byte, reports []*check.Report) {
	t.Helper()
	var doc junitDoc
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Suites) != len(reports) {
		t.Fatalf("%d testsuites for %d reports", len(doc.Suites), len(reports))
	}
	tests, failures := 0, 0
	for i, s := range doc.Suites {
		f := 0
		for _, c := range s.Cases {
			if c.Failure != nil {
				f++
			}
		}
		if s.Tests != strconv.Itoa(len(s.Cases)) || s.Failures != strconv.Itoa(f) || s.Name != Title(reports[i]) {
			t.Errorf("suite %q: tests=%s failures=%s, has %d testcases and %d failures", s.Name, s.Tests, s.Failures, len(s.Cases), f)
		}
		tests, failures = tests+len(s.Cases), failures+f
	}
	if doc.Tests != strconv.Itoa(tests) || doc.Failures != strconv.Itoa(failures) {
		t.Errorf("testsuites: tests=%s failures=%s, has %d and %d", doc.Tests, doc.Failures, tests, failures)
	}
}

// TestJUnitSchemaIsStrict proves the schemas can fail: each broken
// document is refused by vmnet's strict schema, and those the Jenkins
// schema also forbids by it too (the rest it takes: its times, counts and
// timestamp are any string, and a test case may have several outcomes).
func TestJUnitSchemaIsStrict(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, sample()); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	for name, c := range map[string]struct {
		old, new string
		jenkins  bool // the Jenkins schema refuses it too
	}{
		"time with a comma":      {`time="3.001"`, `time="3,001"`, false},
		"negative count":         {`failures="3" errors="0" skipped`, `failures="-3" errors="0" skipped`, false},
		"timestamp with a space": {`timestamp="2026-11-26T05:00:00"`, `timestamp="2026-11-26 05:00:00"`, false},
		"test case without name": {`<testcase name="ping:host-&gt;capstone:eth0" `, `<testcase `, true},
		"two outcomes":           {`<failure message=`, `<skipped></skipped><failure message=`, false},
		"unknown element":        {`<properties>`, `<extra></extra><properties>`, true},
		"suite without time":     {`skipped="0" time="4.213"`, `skipped="0"`, false},
		"suite without tests":    {`<testsuite name="vmnet check capstone" tests="6" `, `<testsuite name="vmnet check capstone" `, true},
		"suite without name":     {`<testsuite name="vmnet check capstone" `, `<testsuite `, true},
		"output before outcome":  {`<failure message=`, `<system-out></system-out><failure message=`, true},
	} {
		bad := strings.Replace(good, c.old, c.new, 1)
		if bad == good {
			t.Fatalf("%s: %q is not in the JUnit output", name, c.old)
		}
		if msg := validate(t, []byte(bad), junitxsd.Strict); msg == "" {
			t.Errorf("%s: %s accepts a broken document", name, junitxsd.Strict)
		}
		if msg := validate(t, []byte(bad), junitxsd.Jenkins); (msg != "") != c.jenkins {
			t.Errorf("%s: %s refuses it: %v, want %v (%s)", name, junitxsd.Jenkins, msg != "", c.jenkins, msg)
		}
	}
}
