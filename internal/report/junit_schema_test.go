package report

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"vmnet/internal/check"
)

const junitSchema = "testdata/junit.xsd"

// xmllint validates doc against testdata/junit.xsd and returns its
// complaint, or "" when the document is valid.
func xmllint(t *testing.T, doc []byte) string {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (package libxml2-utils): cannot validate JUnit against its schema")
	}
	f := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", junitSchema, f).CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out))
	}
	return ""
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
				t.Fatalf("JUnit output does not validate against %s:\n%s\n%s", junitSchema, msg, b.String())
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

// TestJUnitSchemaIsStrict proves the schema can fail: each broken document
// is refused.
func TestJUnitSchemaIsStrict(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, sample()); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	for name, c := range map[string]struct{ old, new string }{
		"time with a comma":      {`time="3.001"`, `time="3,001"`},
		"negative count":         {`failures="3" errors="0" skipped`, `failures="-3" errors="0" skipped`},
		"timestamp with a space": {`timestamp="2026-11-26T05:00:00"`, `timestamp="2026-11-26 05:00:00"`},
		"test case without name": {`<testcase name="ping:host-&gt;capstone:eth0" `, `<testcase `},
		"two outcomes":           {`<failure message=`, `<skipped></skipped><failure message=`},
		"unknown element":        {`<properties>`, `<extra></extra><properties>`},
		"suite without time":     {`skipped="0" time="4.213"`, `skipped="0"`},
	} {
		bad := strings.Replace(good, c.old, c.new, 1)
		if bad == good {
			t.Fatalf("%s: %q is not in the JUnit output", name, c.old)
		}
		if msg := xmllint(t, []byte(bad)); msg == "" {
			t.Errorf("%s: the schema accepts a broken document", name)
		}
	}
}
