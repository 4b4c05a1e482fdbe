package report

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"vmnet/internal/check"
)

// cellSep matches a pipe that separates cells: one not escaped with a backslash.
var cellSep = regexp.MustCompile(`(^|[^\\])\|`)

// mdTable returns the table's rows (header, delimiter, one per check),
// each split into its cells, as GitHub's table extension reads them.
func mdTable(t *testing.T, md string) [][]string {
	t.Helper()
	var rows [][]string
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "|") {
			continue
		}
		if !strings.HasSuffix(l, " |") {
			t.Errorf("table row does not end in a pipe: %q", l)
		}
		marked := cellSep.ReplaceAllString(l, "$1\x00")
		cells := strings.Split(marked, "\x00")
		rows = append(rows, cells[1:len(cells)-1])
	}
	return rows
}

// TestMarkdownShape: a header of seven columns, GitHub's delimiter row, one
// row per check with seven cells, the summary and each failure's evidence.
func TestMarkdownShape(t *testing.T) {
	r := sample()
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	rows := mdTable(t, md)
	if len(rows) != 2+len(r.Results) {
		t.Fatalf("%d table rows, want header, delimiter and %d checks:\n%s", len(rows), len(r.Results), md)
	}
	for i, row := range rows {
		if len(row) != 7 {
			t.Errorf("row %d has %d cells, want 7: %q", i, len(row), row)
		}
	}
	for _, c := range rows[1] {
		if strings.TrimSpace(c) != "---" {
			t.Errorf("delimiter row %q is not GitHub's", rows[1])
		}
	}
	for i, res := range r.Results {
		row := rows[2+i]
		want := map[bool]string{true: "✅ pass", false: "❌ FAIL"}[res.Pass]
		if strings.TrimSpace(row[0]) != want || !strings.Contains(row[1], res.Source+" → ") ||
			strings.TrimSpace(row[6]) != mdCell(string(res.Cause)) {
			t.Errorf("row for %s = %q, want status %q, source → target and cause %q", res.ID, row, want, res.Cause)
		}
	}
	for _, want := range []string{"### vmnet check capstone (capstone matrix)\n", "❌ **3 of 6 checks failed in 4.213s**",
		"<details><summary>Evidence for 3 failed checks</summary>", "  - podman: container db is exited (code 137)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	b.Reset()
	if err := Markdown(&b, passing()); err != nil || !strings.Contains(b.String(), "✅ **all 2 checks passed") || strings.Contains(b.String(), "<details>") {
		t.Errorf("passing run: %v\n%s", err, b.String())
	}
}

// TestMarkdownHostileText: pipes, newlines, HTML and control characters
// from a guest stay inside their cell as text.
func TestMarkdownHostileText(t *testing.T) {
	r := passing()
	r.Results[0].Pass = false
	r.Results[0].Actual = "a | b\nline two <script>alert(1)</script> & `code` *bold* [link](x)\x1b[31m"
	r.Results[0].Hop = "br0|vnet1"
	r.Results[0].Cause = check.CauseTapNotAttached
	r.Results[0].Evidence = []string{"multi\nline | evidence"}
	var b bytes.Buffer
	if err := Markdown(&b, r); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	rows := mdTable(t, md)
	if len(rows) != 4 || len(rows[2]) != 7 {
		t.Fatalf("hostile text broke the table: %q\n%s", rows, md)
	}
	for _, bad := range []string{"<script>", "\x1b", "line two <", "a | b"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown carries %q unescaped:\n%s", bad, md)
		}
	}
	if !strings.Contains(rows[2][4], `a \| b<br>line two &lt;script&gt;`) || !strings.Contains(md, `  - multi<br>line \| evidence`) {
		t.Errorf("escaped text not as expected: %q\n%s", rows[2][4], md)
	}
}

// cmarkGFM renders md with cmark-gfm, GitHub's own Markdown renderer, with
// its table extension, as github.com renders a job summary. Without it the
// test skips, or fails under CI=true: scripts/deps.sh installs it.
func cmarkGFM(t *testing.T, md string) string {
	t.Helper()
	if _, err := exec.LookPath("cmark-gfm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("cmark-gfm is not installed, and CI must render the Markdown as GitHub does: scripts/deps.sh installs it")
		}
		t.Skip("cmark-gfm is not installed (scripts/deps.sh installs it, Debian package cmark-gfm): cannot render the Markdown as GitHub does")
	}
	cmd := exec.Command("cmark-gfm", "--unsafe", "-e", "table") // --unsafe keeps raw HTML, as GitHub keeps <br> and <details>
	cmd.Stdin = strings.NewReader(md)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cmark-gfm: %v", err)
	}
	return string(out)
}

// TestMarkdownRendersAsGitHubTable: GitHub's renderer makes one table of
// the report, a row per check with seven cells, and hostile text stays text.
func TestMarkdownRendersAsGitHubTable(t *testing.T) {
	h := passing()
	h.Results[0].Pass, h.Results[0].Cause = false, check.CauseTapNotAttached
	h.Results[0].Actual = "a | b\n<script>alert(1)</script> *x*"
	for name, r := range map[string]*check.Report{"failing": sample(), "passing": passing(), "long": long(), "hostile": h} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Markdown(&b, r); err != nil {
				t.Fatal(err)
			}
			html := cmarkGFM(t, b.String())
			body := html[strings.Index(html, "<tbody>")+1:]
			rows := strings.Split(body, "<tr>")[1:]
			if strings.Count(html, "<table>") != 1 || strings.Count(html, "<th>") != 7 || len(rows) != len(r.Results) {
				t.Fatalf("rendered: %d tables, %d headers, %d rows; want 1, 7, %d:\n%s",
					strings.Count(html, "<table>"), strings.Count(html, "<th>"), len(rows), len(r.Results), html)
			}
			for i, row := range rows {
				if n := strings.Count(row, "<td>"); n != 7 {
					t.Errorf("row %d has %d cells, want 7: %s", i, n, row)
				}
			}
			if strings.Contains(html, "<script>") || strings.Contains(html, "<em>") {
				t.Errorf("check text became HTML or emphasis:\n%s", html)
			}
			if name == "hostile" && !strings.Contains(html, "<td>a | b<br>&lt;script&gt;alert(1)&lt;/script&gt; *x*</td>") {
				t.Errorf("hostile text not kept as text in its cell:\n%s", html)
			}
		})
	}
}
