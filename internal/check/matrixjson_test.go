package check

import (
	"encoding/json"
	"sort"
	"testing"
)

// matrixJSON is checks as indented JSON, every field of each (the
// unexported ones aside), for golden files that pin a plan exactly.
func matrixJSON(t *testing.T, checks []Check) string {
	t.Helper()
	b, err := json.MarshalIndent(checks, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestCapstoneMatrixJSON pins the capstone app's matrix for a fixed
// target, and a whole lab's plan with the app on a node, field by field:
// the app's description moved out of the check engine (issue 9) and the
// plan must not change with it.
func TestCapstoneMatrixJSON(t *testing.T) {
	checks := CapstoneMatrix(capstoneTarget())
	if len(checks) != 21 {
		t.Errorf("the capstone matrix has %d checks, want 21", len(checks))
	}
	golden(t, "capstone-matrix.json", matrixJSON(t, checks))
	runs := LabMatrix(officeLab(t), officeTargets())
	names := make([]string, 0, len(runs))
	for name := range runs {
		names = append(names, name)
	}
	sort.Strings(names)
	var all []Check
	for _, name := range names {
		all = append(all, runs[name]...)
	}
	golden(t, "office-lab-matrix.json", matrixJSON(t, all))
}
