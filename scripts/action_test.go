package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

// actionFile is action.yml as far as these tests read it.
type actionFile struct {
	Inputs  map[string]actionInput `yaml:"inputs"`
	Outputs map[string]struct {
		Value string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string       `yaml:"using"`
		Steps []actionStep `yaml:"steps"`
	} `yaml:"runs"`
}

// actionInput is one of action.yml's inputs.
type actionInput struct {
	Description string `yaml:"description"`
	Default     string `yaml:"default"`
}

// actionStep is one step of the composite action.
type actionStep struct {
	Name  string            `yaml:"name,omitempty"`
	ID    string            `yaml:"id,omitempty"`
	If    string            `yaml:"if,omitempty"`
	Uses  string            `yaml:"uses,omitempty"`
	Run   string            `yaml:"run,omitempty"`
	Shell string            `yaml:"shell,omitempty"`
	With  map[string]string `yaml:"with,omitempty"`
	Env   map[string]string `yaml:"env,omitempty"`
}

// readAction parses the repository's action.yml. It also returns the
// file's values again as YAML, without its comments, for the expressions
// in them to be searched.
func readAction(t *testing.T) (actionFile, []byte) {
	t.Helper()
	src, err := os.ReadFile("../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	if err := yaml.Unmarshal(src, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	var all any
	if err := yaml.Unmarshal(src, &all); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	values, err := yaml.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	return a, values
}

// lint runs actionlint (shellcheck over run: scripts too, when installed)
// over the named files of the repository at root; it returns each error as
// actionlint prints it.
func lint(t *testing.T, root string, files ...string) []string {
	t.Helper()
	opts := &actionlint.LinterOptions{Oneline: true, WorkingDir: root}
	if _, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = "shellcheck"
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	proj, err := actionlint.NewProject(root)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintFiles(files, proj)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

// TestWorkflowsLint runs actionlint over .github/workflows/*.yml. The
// capstone workflow uses the action as ./, so actionlint also reads
// action.yml and checks the workflow's with: and steps.*.outputs against
// its inputs and outputs.
func TestWorkflowsLint(t *testing.T) {
	root, _ := filepath.Abs("..")
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if !slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == "capstone.yml" }) {
		t.Fatalf("no .github/workflows/capstone.yml among %v", files)
	}
	for _, e := range lint(t, root, files...) {
		t.Error(e)
	}
}

// TestActionStepsLint lints the action's steps as actionlint lints a job:
// they are put into a reusable workflow whose inputs are the action's, so
// every expression (inputs.*, steps.*, github.action_path), each uses: and
// with:, and each run: (through shellcheck) is checked as for a workflow.
func TestActionStepsLint(t *testing.T) {
	a, _ := readAction(t)
	wf := map[string]any{
		"on": map[string]any{"workflow_call": map[string]any{"inputs": callInputs(a)}},
		"jobs": map[string]any{"action": map[string]any{
			"runs-on": "ubuntu-24.04", "outputs": callOutputs(a), "steps": a.Runs.Steps,
		}},
	}
	b, err := yaml.Marshal(wf)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, ".github", "workflows")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "action-steps.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range lint(t, root, file) {
		t.Errorf("action.yml's steps, as a job: %s", e)
	}
	if t.Failed() {
		t.Logf("the job linted:\n%s", b)
	}
}

// callInputs are the action's inputs as a reusable workflow's.
func callInputs(a actionFile) map[string]any {
	in := map[string]any{}
	for name, i := range a.Inputs {
		in[name] = map[string]any{"type": "string", "required": false, "default": i.Default, "description": i.Description}
	}
	return in
}

// callOutputs are the action's outputs as a job's.
func callOutputs(a actionFile) map[string]string {
	out := map[string]string{}
	for name, o := range a.Outputs {
		out[name] = o.Value
	}
	return out
}

// TestActionStructure checks what actionlint does not, action.yml not
// being a workflow: a composite action whose run steps each name a shell and
// run a script that exists, whose expressions name only declared inputs and
// step ids, whose inputs are each used, with the inputs and outputs issue 11
// asks for, and teardown last, always, unless keep.
func TestActionStructure(t *testing.T) {
	a, src := readAction(t)
	if a.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q, want composite", a.Runs.Using)
	}
	for _, want := range []string{"lab", "go-version", "junit", "keep", "accel"} {
		if _, ok := a.Inputs[want]; !ok {
			t.Errorf("action.yml has no input %q", want)
		}
	}
	for _, want := range []string{"result", "checks", "accel", "junit"} {
		if _, ok := a.Outputs[want]; !ok {
			t.Errorf("action.yml has no output %q", want)
		}
	}
	if d := a.Inputs["lab"].Default; d != "capstone" {
		t.Errorf("input lab defaults to %q, want capstone", d)
	}
	if d := a.Inputs["accel"].Default; d != "auto" {
		t.Errorf("input accel defaults to %q, want auto", d)
	}
	ids := checkSteps(t, a.Runs.Steps)
	checkReferences(t, string(src), a, ids)
	last := a.Runs.Steps[len(a.Runs.Steps)-1]
	if !strings.Contains(last.Run, "down.sh") || !strings.Contains(last.If, "always()") || !strings.Contains(last.If, "inputs.keep") {
		t.Errorf("the last step is %q (if: %q), want down.sh with if: always() && inputs.keep != 'true'", last.Name, last.If)
	}
}

// scriptRef is how a step runs one of the action's scripts.
var scriptRef = regexp.MustCompile(`\$GITHUB_ACTION_PATH/(scripts/action/[a-z]+\.sh)`)

// checkSteps checks each step: a run step names its shell and runs an
// existing script of scripts/action; Go comes from actions/setup-go@v5,
// from go.mod unless go-version says. It returns the steps' ids.
func checkSteps(t *testing.T, steps []actionStep) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for i, s := range steps {
		if s.ID != "" {
			ids[s.ID] = true
		}
		switch {
		case s.Uses == "actions/setup-go@v5":
			if !strings.Contains(s.With["go-version-file"], "go.mod") || !strings.Contains(s.With["go-version"], "inputs.go-version") {
				t.Errorf("setup-go's with: %v, want go-version from the input, else go-version-file go.mod", s.With)
			}
		case s.Uses != "":
			t.Errorf("step %d (%s) uses %s: only actions/setup-go@v5 is expected", i, s.Name, s.Uses)
		case s.Shell == "":
			t.Errorf("step %d (%s) has run: but no shell: (a composite action's run steps need one)", i, s.Name)
		default:
			m := scriptRef.FindStringSubmatch(s.Run)
			if m == nil {
				t.Errorf("step %d (%s) runs %q, not a script of scripts/action (the tests lint and run those)", i, s.Name, s.Run)
			} else if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
				t.Errorf("step %d (%s): %v", i, s.Name, err)
			}
		}
	}
	return ids
}

// exprRef finds inputs.NAME and steps.ID references in expressions.
var exprRef = regexp.MustCompile(`\b(inputs|steps)\.([A-Za-z0-9_-]+)`)

// checkReferences fails for an expression naming an input or a step id
// that does not exist, and for an input no step reads.
func checkReferences(t *testing.T, src string, a actionFile, ids map[string]bool) {
	t.Helper()
	used := map[string]bool{}
	for _, m := range exprRef.FindAllStringSubmatch(src, -1) {
		switch {
		case m[1] == "inputs":
			used[m[2]] = true
			if _, ok := a.Inputs[m[2]]; !ok {
				t.Errorf("action.yml reads inputs.%s, which it does not declare", m[2])
			}
		case !ids[m[2]]:
			t.Errorf("action.yml reads steps.%s, but no step has that id", m[2])
		}
	}
	for name := range a.Inputs {
		if !used[name] {
			t.Errorf("input %q is declared but no step reads it", name)
		}
	}
	for name, o := range a.Outputs {
		if !strings.Contains(o.Value, "steps.report.outputs."+name) {
			t.Errorf("output %s = %q, want the report step's output of that name", name, o.Value)
		}
	}
}
