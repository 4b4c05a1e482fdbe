// Package report renders check results three ways: an aligned table for
// people (a failed check is followed by its hop, cause and evidence), JSON
// with stable field names for programs, and JUnit XML for CI systems
// (GitHub, GitLab and Jenkins read the testsuites/testsuite/testcase shape).
package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"vmnet/internal/check"
)

// Title names a run the way the command was typed: "vmnet check capstone",
// or "vmnet lab check office" for a lab's matrix.
func Title(r *check.Report) string {
	if r.Matrix == check.MatrixLab {
		return "vmnet lab check " + r.VM
	}
	return "vmnet check " + r.VM
}

// Summary is the last line of the table: "all 4 checks passed in 1.2s" or
// "3 of 21 checks failed in 4.2s".
func Summary(r *check.Report) string {
	d := seconds(r.Duration)
	if n := r.Failed(); n > 0 {
		return fmt.Sprintf("%d of %d checks failed in %ss", n, len(r.Results), d)
	}
	if r.Rounds > 1 {
		return fmt.Sprintf("all %d checks passed in %ss (converged after %ss, in round %d)", len(r.Results), d, seconds(r.ConvergedAfter), r.Rounds)
	}
	return fmt.Sprintf("all %d checks passed in %ss", len(r.Results), d)
}

// Accel names the accelerator the checked guests ran under as the action's
// output does: kvm, tcg, or unknown when no guest said; a lab whose nodes
// differ gets both, comma-separated.
func Accel(r *check.Report) string {
	if r.Accel == "" {
		return "unknown"
	}
	words := strings.Split(r.Accel, ",")
	for i, w := range words {
		if w == "qemu" { // libvirt's domain type for TCG
			words[i] = "tcg"
		}
	}
	return strings.Join(words, ",")
}

// accelLine is the accelerator for people, above a table: "TCG (software
// emulation)", "KVM", "unknown"; bold, when given, marks its name up.
func accelLine(r *check.Report, bold func(string) string) string {
	a := Accel(r)
	switch a {
	case "tcg":
		return bold("TCG") + " (software emulation)"
	case "unknown":
		return bold(a)
	}
	return bold(strings.ToUpper(a))
}

// Width is the most columns Table takes: it fits a 120-column terminal and
// a CI log's viewer.
const Width = 120

// minWrap is the narrowest EXPECT and ACTUAL get before the columns that
// name a check wrap too; minCell is the narrowest any wrapped column gets.
const (
	minWrap = 16
	minCell = 10
)

// maxCellLines is the most lines a wrapped cell takes; the rest is cut, with
// "…" (a failure's evidence, below its row, and the JSON have it whole).
const maxCellLines = 4

// Table writes one line per check (status, source → target, address,
// method, expected, actual, milliseconds); each failure is followed by its
// hop, cause and evidence, indented. It is at most Width columns wide: a
// cell too long for that wraps within its column (at most maxCellLines
// lines), and the detail lines wrap under their indent; the JSON form has
// every field whole, on one line.
func Table(w io.Writer, r *check.Report) error { return TableWidth(w, r, Width) }

// TableWidth is Table at most cols columns wide. Only a cols too small for
// the columns' headers and minCell gives longer lines.
func TableWidth(w io.Writer, r *check.Report, cols int) error {
	header := []string{"STATUS", "SOURCE → TARGET", "ADDRESS", "METHOD", "EXPECT", "ACTUAL", "MS"}
	rows := [][]string{header}
	for _, res := range r.Results {
		rows = append(rows, []string{
			status(res.Pass), res.Source + " → " + res.Target, res.Address, string(res.Method),
			res.Expect, res.Actual, fmt.Sprint(res.Duration.Milliseconds()),
		})
	}
	width := make([]int, len(header))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	fit(width, header, cols)
	var b strings.Builder
	for _, l := range wrap(fmt.Sprintf("%s (%s matrix)", Title(r), r.Matrix), cols) {
		b.WriteString(l + "\n")
	}
	b.WriteString("accelerator: " + accelLine(r, func(s string) string { return s }) + "\n")
	for i, row := range rows {
		cells := make([][]string, len(row))
		height := 0
		for j, cell := range row {
			cells[j] = clip(wrap(cell, width[j]), width[j])
			height = max(height, len(cells[j]))
		}
		for k := range height {
			var line strings.Builder
			for j := range row {
				text := ""
				if k < len(cells[j]) {
					text = cells[j][k]
				}
				pad := strings.Repeat(" ", width[j]-utf8.RuneCountInString(text))
				if j == len(row)-1 { // milliseconds, right-aligned, last
					line.WriteString(pad + text)
				} else {
					line.WriteString(text + pad + "  ")
				}
			}
			b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
		}
		if i == 0 || r.Results[i-1].Pass {
			continue
		}
		res := r.Results[i-1]
		indented(&b, fmt.Sprintf("hop: %s   cause: %s", res.Hop, res.Cause), 6, 8, cols)
		for _, e := range res.Evidence {
			indented(&b, "- "+e, 8, 10, cols)
		}
	}
	for _, l := range wrap(Summary(r), cols) {
		b.WriteString(l + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// fit narrows columns until the table (columns two spaces apart) is at most
// cols wide: first EXPECT and ACTUAL, which describe, the widest first, down
// to minWrap; only then SOURCE → TARGET and ADDRESS, which name the check,
// down to minCell. No column gets narrower than its header.
func fit(width []int, header []string, cols int) {
	total := 2 * (len(width) - 1)
	for _, w := range width {
		total += w
	}
	for _, stage := range []struct {
		columns []int
		floor   int
	}{{[]int{4, 5}, minWrap}, {[]int{1, 2, 4, 5}, minCell}} {
		for total > cols {
			widest := -1
			for _, j := range stage.columns {
				floor := max(stage.floor, utf8.RuneCountInString(header[j]))
				if width[j] > floor && (widest < 0 || width[j] > width[widest]) {
					widest = j
				}
			}
			if widest < 0 {
				break
			}
			width[widest]--
			total--
		}
	}
}

// indented writes text at indent spaces, wrapped at cols, its further lines
// at more.
func indented(b *strings.Builder, text string, indent, more, cols int) {
	lines := wrap(text, max(minCell, cols-indent))
	b.WriteString(strings.Repeat(" ", indent) + lines[0] + "\n")
	if len(lines) == 1 {
		return
	}
	for _, l := range wrap(strings.Join(lines[1:], " "), max(minCell, cols-more)) {
		b.WriteString(strings.Repeat(" ", more) + l + "\n")
	}
}

// clip keeps the first maxCellLines of lines (each at most n runes), the
// last ending in "…" when some are left out.
func clip(lines []string, n int) []string {
	if len(lines) <= maxCellLines {
		return lines
	}
	lines = lines[:maxCellLines]
	last := []rune(lines[maxCellLines-1])
	lines[maxCellLines-1] = string(last[:min(len(last), n-1)]) + "…"
	return lines
}

// wrap cuts s into lines of at most n runes, at the last space that fits,
// or inside a word longer than n. Spaces inside a line are kept as they are.
func wrap(s string, n int) []string {
	r := []rune(s)
	var out []string
	for len(r) > n {
		cut := n // no space: the word is cut
		for i := n; i > 0; i-- {
			if r[i] == ' ' {
				cut = i
				break
			}
		}
		out = append(out, strings.TrimRight(string(r[:cut]), " "))
		r = r[cut:]
		for len(r) > 0 && r[0] == ' ' {
			r = r[1:]
		}
	}
	return append(out, strings.TrimRight(string(r), " "))
}

func status(pass bool) string {
	if pass {
		return "ok"
	}
	return "FAIL"
}

// JSONReport is the JSON form of a run. Its field names are stable: programs
// may rely on them.
type JSONReport struct {
	VM         string    `json:"vm"`
	Matrix     string    `json:"matrix"`
	Accel      string    `json:"accel"` // kvm, tcg or unknown (Accel)
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	OK         bool      `json:"ok"`
	Total      int       `json:"total"`
	Passed     int       `json:"passed"`
	Failed     int       `json:"failed"`
	Rounds     int       `json:"rounds,omitempty"` // times the matrix ran (a lab check converging)
	// ConvergedMS is the time from the start until every check passed; 0
	// when they did not.
	ConvergedMS int64        `json:"converged_ms,omitempty"`
	Checks      []JSONResult `json:"checks"`
}

// JSONResult is one check in JSON. Hop, cause and evidence are empty for a
// check that passed.
type JSONResult struct {
	ID         string   `json:"id"`
	Source     string   `json:"source"`
	Target     string   `json:"target"`
	Address    string   `json:"address"`
	Method     string   `json:"method"`
	Expect     string   `json:"expect"`
	Pass       bool     `json:"pass"`
	Actual     string   `json:"actual"`
	DurationMS int64    `json:"duration_ms"`
	Hop        string   `json:"hop"`
	Cause      string   `json:"cause"`
	Evidence   []string `json:"evidence"`
}

// ToJSON converts a run to its JSON form.
func ToJSON(r *check.Report) JSONReport {
	out := JSONReport{
		VM: r.VM, Matrix: r.Matrix, Accel: Accel(r), Started: r.Started.UTC(), DurationMS: r.Duration.Milliseconds(),
		Total: len(r.Results), Failed: r.Failed(), Checks: []JSONResult{},
		Rounds: r.Rounds, ConvergedMS: r.ConvergedAfter.Milliseconds(),
	}
	out.Passed, out.OK = out.Total-out.Failed, out.Failed == 0
	for _, res := range r.Results {
		ev := res.Evidence
		if ev == nil {
			ev = []string{}
		}
		out.Checks = append(out.Checks, JSONResult{
			ID: res.ID, Source: res.Source, Target: res.Target, Address: res.Address, Method: string(res.Method),
			Expect: res.Expect, Pass: res.Pass, Actual: res.Actual, DurationMS: res.Duration.Milliseconds(),
			Hop: res.Hop, Cause: string(res.Cause), Evidence: ev,
		})
	}
	return out
}

// JSON writes the run as indented JSON.
func JSON(w io.Writer, r *check.Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // IDs have "->" in them
	enc.SetIndent("", "  ")
	return enc.Encode(ToJSON(r))
}

// JUnit XML, in the shape CI systems read: <testsuites> holding a
// <testsuite> per run, one <testcase> per check with name, classname and time in
// seconds, and a <failure message type> for each failed one.
type (
	junitSuites struct {
		XMLName  xml.Name     `xml:"testsuites"`
		Name     string       `xml:"name,attr"`
		Tests    int          `xml:"tests,attr"`
		Failures int          `xml:"failures,attr"`
		Errors   int          `xml:"errors,attr"`
		Time     string       `xml:"time,attr"`
		Suites   []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name       string          `xml:"name,attr"`
		Tests      int             `xml:"tests,attr"`
		Failures   int             `xml:"failures,attr"`
		Errors     int             `xml:"errors,attr"`
		Skipped    int             `xml:"skipped,attr"`
		Time       string          `xml:"time,attr"`
		Timestamp  string          `xml:"timestamp,attr"`
		Properties []junitProperty `xml:"properties>property"`
		Cases      []junitCase     `xml:"testcase"`
	}
	junitProperty struct {
		Name  string `xml:"name,attr"`
		Value string `xml:"value,attr"`
	}
	junitCase struct {
		Name      string        `xml:"name,attr"`
		Classname string        `xml:"classname,attr"`
		Time      string        `xml:"time,attr"`
		Failure   *junitFailure `xml:"failure,omitempty"`
		SystemOut *junitText    `xml:"system-out,omitempty"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",cdata"`
	}
	// junitText is CDATA, so the lines stay lines for people reading the file.
	junitText struct {
		Text string `xml:",cdata"`
	}
)

// JUnit writes the run as JUnit XML. The test case name is the check's
// stable ID and the class name is source→target, so CI history lines up
// from run to run even when a DHCP address changes; addresses, expected and
// actual results are in the body. It meets the Jenkins JUnit schema that
// test-report tools read and vmnet's stricter one (testdata/README.md).
func JUnit(w io.Writer, r *check.Report) error { return JUnitAll(w, r) }

// JUnitAll writes several runs (one per lab, say) as one JUnit file: a
// <testsuite> per run, a <testcase> per check, each failure's cause, hop
// and evidence in its <failure>, every time in seconds.
func JUnitAll(w io.Writer, reports ...*check.Report) error {
	doc := junitSuites{Name: "vmnet check", Suites: []junitSuite{}}
	var total time.Duration
	for _, r := range reports {
		s := junitSuiteOf(r)
		doc.Tests, doc.Failures = doc.Tests+s.Tests, doc.Failures+s.Failures
		doc.Suites = append(doc.Suites, s)
		total += r.Duration
	}
	if len(reports) == 1 {
		doc.Name = doc.Suites[0].Name
	}
	doc.Time = seconds(total)
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("render JUnit XML: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return err
	}
	return nil
}

// junitSuiteOf is one run as a <testsuite>, its text made safe for XML.
func junitSuiteOf(r *check.Report) junitSuite {
	suite := junitSuite{
		Name: Title(r), Tests: len(r.Results), Failures: r.Failed(), Time: seconds(r.Duration),
		Timestamp:  r.Started.UTC().Format("2006-01-02T15:04:05"),
		Properties: []junitProperty{{"vm", r.VM}, {"matrix", r.Matrix}, {"accel", Accel(r)}},
	}
	for _, res := range r.Results {
		c := junitCase{
			Name: res.ID, Classname: res.Source + "→" + res.Target, Time: seconds(res.Duration),
			SystemOut: &junitText{fmt.Sprintf("%s %s → %s (%s): expect %s, got %s\n", res.Method, res.Source, res.Target, res.Address, res.Expect, res.Actual)},
		}
		if !res.Pass {
			c.Failure = junitFailureOf(res)
		}
		c.Name, c.Classname = xmlSafe(c.Name), xmlSafe(c.Classname)
		c.SystemOut.Text = xmlSafe(c.SystemOut.Text)
		suite.Cases = append(suite.Cases, c)
	}
	return suite
}

// junitFailureOf is a failed check's <failure>: the cause as its type, a
// one-line message, and the address, expected and actual results, hop,
// cause and evidence as its text.
func junitFailureOf(res check.Result) *junitFailure {
	var b strings.Builder
	fmt.Fprintf(&b, "address: %s\nexpect: %s\nactual: %s\nhop: %s\ncause: %s\n", res.Address, res.Expect, res.Actual, res.Hop, res.Cause)
	if len(res.Evidence) > 0 {
		b.WriteString("evidence:\n")
		for _, e := range res.Evidence {
			fmt.Fprintf(&b, "  - %s\n", e)
		}
	}
	return &junitFailure{
		Message: xmlSafe(fmt.Sprintf("%s: expected %s, got %s (hop %s)", res.Cause, res.Expect, res.Actual, res.Hop)),
		Type:    xmlSafe(string(res.Cause)),
		Text:    xmlSafe(b.String()),
	}
}

// xmlSafe replaces what XML 1.0 cannot carry, even in CDATA (NUL, escape
// sequences and other control characters from a serial console), with U+FFFD.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r',
			r >= 0x20 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
			return r
		}
		return '\uFFFD'
	}, s)
}

// seconds renders a duration as seconds with millisecond precision, as
// JUnit's time attributes want.
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}
