package report

import (
	"fmt"
	"io"
	"strings"

	"vmnet/internal/check"
)

// Markdown writes the run as GitHub-flavoured Markdown, for a CI job's
// summary ($GITHUB_STEP_SUMMARY) or a pull request comment: a heading, the
// accelerator the guests ran under, one
// table row per check (status as an emoji and a word, so it reads without
// colour too; source → target; method; expect; actual; hop; cause), the
// summary line in bold, and each failure's evidence in a folded list.
// Cells are escaped: a check's text never breaks the table or becomes HTML.
func Markdown(w io.Writer, r *check.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s (%s matrix)\n\n", mdCell(Title(r)), mdCell(r.Matrix))
	fmt.Fprintf(&b, "Accelerator: %s\n\n", accelLine(r, func(s string) string { return "**" + mdCell(s) + "**" }))
	b.WriteString("| Status | Source → Target | Method | Expect | Actual | Hop | Cause |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, res := range r.Results {
		cells := []string{mdStatus(res.Pass), mdCell(res.Source + " → " + res.Target), mdCell(string(res.Method)),
			mdCell(res.Expect), mdCell(res.Actual), mdCell(res.Hop), mdCell(string(res.Cause))}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	mark := "✅"
	if r.Failed() > 0 {
		mark = "❌"
	}
	fmt.Fprintf(&b, "\n%s **%s**\n", mark, mdCell(Summary(r)))
	mdEvidence(&b, r)
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEvidence adds the failed checks' addresses and evidence, folded, so the
// table stays short on a page with many labs.
func mdEvidence(b *strings.Builder, r *check.Report) {
	n := r.Failed()
	if n == 0 {
		return
	}
	word := "checks"
	if n == 1 {
		word = "check"
	}
	fmt.Fprintf(b, "\n<details><summary>Evidence for %d failed %s</summary>\n\n", n, word)
	for _, res := range r.Results {
		if res.Pass {
			continue
		}
		fmt.Fprintf(b, "- **%s** (%s)\n", mdCell(res.ID), mdCell(res.Address))
		for _, e := range res.Evidence {
			fmt.Fprintf(b, "  - %s\n", mdCell(e))
		}
	}
	b.WriteString("\n</details>\n")
}

// mdStatus is a check's status as an emoji and a word.
func mdStatus(pass bool) string {
	if pass {
		return "✅ pass"
	}
	return "❌ FAIL"
}

// mdEscaper escapes what would end a table cell (|), start HTML (<, &) or
// change emphasis or links in GitHub's Markdown.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "&", "&amp;", "<", "&lt;", ">", "&gt;",
	"*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`,
	"\r\n", "<br>", "\n", "<br>", "\r", "<br>",
)

// mdCell makes s safe inside a table cell or a list item: escaped, one
// line, without the control characters a serial console leaves.
func mdCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return '\uFFFD'
		}
		if r == '\t' {
			return ' '
		}
		return r
	}, s)
	return mdEscaper.Replace(strings.TrimSpace(s))
}
