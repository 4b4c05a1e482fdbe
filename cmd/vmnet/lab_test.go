package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLabValidateAndGraph(t *testing.T) {
	const office = "../../examples/office.lab.yaml"
	out, errs, code := runCLI(t, "lab", "validate", office)
	if code != exitOK || out != "lab office: 2 nodes, 3 networks, 3 declared checks: valid\n" || errs != "" {
		t.Errorf("lab validate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	want, err := os.ReadFile("../../examples/office.mmd")
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code = runCLI(t, "lab", "graph", office, "--format", "mermaid")
	if code != exitOK || out != string(want) || errs != "" {
		t.Errorf("lab graph --format mermaid: exit %d, stderr %q, stdout differs from examples/office.mmd:\n%s", code, errs, out)
	}
	file := filepath.Join(t.TempDir(), "o.dot")
	out, errs, code = runCLI(t, "lab", "graph", office, "--format", "dot", "--file", file)
	got, _ := os.ReadFile(file)
	if code != exitOK || out != "" || errs != "" || len(got) == 0 || string(got[:6]) != "graph " {
		t.Errorf("lab graph --file: exit %d, stdout %q, stderr %q, file %q", code, out, errs, got)
	}
}
