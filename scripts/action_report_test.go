package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// upJSON is lab up -o json as report.sh reads it: a lab whose second check
// failed, under TCG.
const upJSON = `{"lab":"duo","outcome":"created","accel":{"type":"qemu","reason":"asked for tcg"},
"check":{"total":2,"passed":1,"failed":1,"checks":[]}}`

// runReport runs scripts/action/report.sh with RUNNER_TEMP, GITHUB_OUTPUT
// and GITHUB_STEP_SUMMARY in a temporary directory that holds files as
// up.sh leaves them (name -> content, under RUNNER_TEMP/vmnet); it returns
// the exit code, the outputs file and the summary.
func runReport(t *testing.T, files map[string]string) (int, string, string) {
	t.Helper()
	if _, err := exec.LookPath("jq"); err != nil {
		t.Skip("jq is not installed (scripts/deps.sh installs it)")
	}
	dir := t.TempDir()
	work := filepath.Join(dir, "vmnet")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", "action/report.sh")
	cmd.Env = append(os.Environ(), "RUNNER_TEMP="+dir, "GITHUB_OUTPUT="+filepath.Join(dir, "out"),
		"GITHUB_STEP_SUMMARY="+filepath.Join(dir, "sum"), "VMNET_LAB=duo")
	log, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	sum, _ := os.ReadFile(filepath.Join(dir, "sum"))
	t.Logf("report.sh: exit %d\n%s", code, log)
	return code, string(out), string(sum)
}

// TestReportFailedChecks: a lab up whose checks failed gives result=fail,
// its check count and accel=tcg, the Markdown table in the summary, and
// exit 1 after the report is written.
func TestReportFailedChecks(t *testing.T) {
	table := "### vmnet check duo (lab matrix)\n\n| Status | Source → Target |\n| --- | --- |\n| ❌ FAIL | host → left:eth0 |\n"
	code, out, sum := runReport(t, map[string]string{"up.json": upJSON, "up.rc": "1\n", "checks.md": table})
	for _, want := range []string{"result=fail\n", "checks=2\n", "accel=tcg\n", "junit=\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("outputs lack %q:\n%s", want, out)
		}
	}
	// The table says the accelerator; above it only the probe's reason.
	if code != 1 || !strings.Contains(sum, "## vmnet lab duo: fail") || !strings.Contains(sum, "Accelerator probe: `asked for tcg`\n\n"+table) ||
		strings.Contains(sum, "Accelerator: **tcg**") {
		t.Errorf("exit %d (want 1); summary:\n%s", code, sum)
	}
}

// TestReportStoppedBeforeChecks: with no JSON (lab up failed before its
// checks), the accelerator comes from lab up's log, and the summary shows
// the log's end instead of a table.
func TestReportStoppedBeforeChecks(t *testing.T) {
	log := "accelerator: kvm (a test guest ran under KVM)\nvmnet: image tiny is not built\n"
	code, out, sum := runReport(t, map[string]string{"up.json": "", "up.rc": "1\n", "up.log": log})
	if code != 1 || !strings.Contains(out, "result=fail\n") || !strings.Contains(out, "accel=kvm\n") || !strings.Contains(out, "checks=0\n") {
		t.Errorf("exit %d, outputs:\n%s", code, out)
	}
	if !strings.Contains(sum, "image tiny is not built") || !strings.Contains(sum, "(`a test guest ran under KVM`)") {
		t.Errorf("summary lacks the log's end or the accelerator's reason:\n%s", sum)
	}
}
