package scripts

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"vmnet/templates"
)

// builtinList is the list of built-in labs in the lab input's description:
// "A built-in lab (a, b, c; ...) or ...".
var builtinList = regexp.MustCompile(`built-in lab \(([^;)]*)[;)]`)

// TestActionLabInputNamesEveryBuiltin: the lab input's description lists
// exactly the built-in labs vmnet embeds (templates/labs), so a lab added
// or renamed there shows up as a failure here, not as a stale description.
func TestActionLabInputNamesEveryBuiltin(t *testing.T) {
	a, _ := readAction(t)
	d := a.Inputs["lab"].Description
	m := builtinList.FindStringSubmatch(d)
	if m == nil {
		t.Fatalf("input lab's description %q has no list \"built-in lab (a, b, ...)\"", d)
	}
	got := strings.Split(m[1], ", ")
	slices.Sort(got)
	if want := templates.LabNames(); !slices.Equal(got, want) {
		t.Errorf("input lab's description lists the built-in labs %v; vmnet has %v (templates/labs)", got, want)
	}
}
