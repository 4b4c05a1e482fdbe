package integration

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// actionEnv is the environment of the action's scripts as GitHub's runner
// gives it, with its files under dir: RUNNER_TEMP, GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY, and the inputs action.yml passes on.
func actionEnv(t *testing.T, dir, sandbox string) []string {
	t.Helper()
	for _, f := range []string{"output", "summary"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return append(os.Environ(),
		"RUNNER_TEMP="+dir,
		"GITHUB_OUTPUT="+filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY="+filepath.Join(dir, "summary"),
		"VMNET_LAB=duo", "VMNET_ACCEL=auto", "VMNET_SANDBOX="+sandbox,
		"VMNET_BIN="+vmnetBin(t),
	)
}

// actionStep runs scripts/action/NAME.sh as a step of the action does and
// returns its exit code.
func actionStep(t *testing.T, env []string, name string) int {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", "action", name+".sh"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s.sh: %v", name, err)
	}
	t.Logf("%s.sh: exit %d after %s\n%s", name, code, time.Since(start).Round(time.Second), lastLines(string(out), 25))
	return code
}

// readOutputs parses a GITHUB_OUTPUT file of NAME=VALUE lines.
func readOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

// TestActionScripts runs the GitHub Action's vmnet steps (action.yml:
// prepare, up, report, down) as the runner would, with RUNNER_TEMP,
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY pointing at files of the test,
// against the real duo lab. The package-install step (deps.sh) and the
// /dev/kvm udev rule (kvm.sh) are not run: they change the machine itself
// (apt, /etc/udev), which tests here must not; build.sh is replaced by
// VMNET_BIN. The scripts run as root here, where the runner uses sudo.
// Then the summary must have a Markdown table with a row for every check,
// the outputs result=pass, the check count, the accelerator and the JUnit
// path (the file there), and down must leave no sandbox behind.
func TestActionScripts(t *testing.T) {
	need(t, "jq")
	tinyImage(t)
	b := make([]byte, 3)
	rand.Read(b)
	sandbox := "act-" + hex.EncodeToString(b)
	t.Cleanup(func() { exec.Command(vmnetBin(t), "sandbox", "down", sandbox).Run() })
	dir := t.TempDir()
	env := actionEnv(t, dir, sandbox)
	for _, step := range []string{"prepare", "up", "report"} {
		if code := actionStep(t, env, step); code != 0 {
			t.Fatalf("%s.sh exited %d", step, code)
		}
	}
	out := readOutputs(t, filepath.Join(dir, "output"))
	n := actionSummary(t, dir, out)
	if out["result"] != "pass" || out["checks"] != strconv.Itoa(n) || n == 0 {
		t.Errorf("outputs result=%q checks=%q, want pass and %d (the summary's rows)", out["result"], out["checks"], n)
	}
	if a := out["accel"]; a != "tcg" && a != "kvm" {
		t.Errorf("output accel=%q, want tcg or kvm", a)
	}
	if st, err := os.Stat(out["junit"]); out["junit"] != filepath.Join(dir, "vmnet-junit.xml") || err != nil || st.Size() == 0 {
		t.Errorf("output junit=%q (want %s, the default), the file: %v", out["junit"], filepath.Join(dir, "vmnet-junit.xml"), err)
	}
	if code := actionStep(t, env, "down"); code != 0 {
		t.Errorf("down.sh exited %d", code)
	}
	noSandbox(t, sandbox)
	if code := actionStep(t, env, "down"); code != 0 {
		t.Errorf("down.sh a second time (nothing left to remove) exited %d", code)
	}
}

// actionSummary checks the job summary: a heading with the lab and its
// result, and the Markdown check table with one row per check of lab up's
// JSON. It returns the number of rows.
func actionSummary(t *testing.T, dir string, out map[string]string) int {
	t.Helper()
	sum, err := os.ReadFile(filepath.Join(dir, "summary"))
	if err != nil {
		t.Fatal(err)
	}
	var up labUpJSON
	raw, err := os.ReadFile(filepath.Join(dir, "vmnet", "up.json"))
	if err == nil {
		err = json.Unmarshal(raw, &up)
	}
	if err != nil {
		t.Fatalf("lab up's JSON in the work directory: %v", err)
	}
	s := string(sum)
	if !strings.Contains(s, "## vmnet lab duo: pass") || !strings.Contains(s, "Accelerator: **"+strings.ToUpper(out["accel"])+"**") {
		t.Errorf("summary lacks the heading with lab, result and accelerator:\n%s", s)
	}
	if !strings.Contains(s, "| Status | Source → Target |") || !strings.Contains(s, "| --- |") {
		t.Errorf("summary has no Markdown check table:\n%s", s)
	}
	rows := strings.Count(s, "\n| ✅ pass |") + strings.Count(s, "\n| ❌ FAIL |")
	for _, res := range up.Check.Results {
		if !strings.Contains(s, "| "+res.Source+" → "+res.Target+" | "+res.Method+" |") {
			t.Errorf("summary has no row for check %s (%s → %s, %s)", res.ID, res.Source, res.Target, res.Method)
		}
	}
	if rows != up.Check.Total {
		t.Errorf("summary has %d check rows, lab up ran %d checks:\n%s", rows, up.Check.Total, s)
	}
	return rows
}

// noSandbox fails the test if sandbox s, or its network namespace, is still
// there: with them would go every domain, network, tap and lease of the lab.
func noSandbox(t *testing.T, s string) {
	t.Helper()
	r, err := exec.Command(vmnetBin(t), "-o", "json", "sandbox", "list").Output()
	if err != nil {
		t.Fatalf("sandbox list: %v", err)
	}
	var list []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(r, &list); err != nil {
		t.Fatalf("sandbox list JSON: %v\n%s", err, r)
	}
	for _, sb := range list {
		if sb.Name == s {
			t.Errorf("sandbox %s is still listed after down.sh", s)
		}
	}
	if ns := run(t, "ip", "netns", "list"); strings.Contains(ns, "vmnet-"+s) {
		t.Errorf("network namespace vmnet-%s is left after down.sh:\n%s", s, ns)
	}
}
