package main

import (
	"strings"
	"testing"

	"vmnet/internal/lab"
)

// lab graph NAME draws a built-in lab that is not up from its file alone,
// with no libvirt needed; a name that is neither saved nor built in is
// invalid input naming the built-in labs.
func TestLabGraphByName(t *testing.T) {
	l, err := lab.LoadRef("duo")
	if err != nil {
		t.Fatal(err)
	}
	want, err := lab.Graph(l, nil, lab.FormatMermaid)
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "lab", "graph", "duo", "--format", "mermaid")
	if code != exitOK || out != string(want) || errs != "" {
		t.Errorf("lab graph duo: exit %d, stderr %q, stdout differs from the file's picture:\n%s", code, errs, out)
	}
	_, errs, code = runCLI(t, "lab", "graph", "nosuchlab", "--format", "dot")
	if code != exitUsage || !strings.Contains(errs, "capstone") {
		t.Errorf("lab graph nosuchlab: exit %d, stderr %q; want exit 2 naming the built-in labs", code, errs)
	}
}
