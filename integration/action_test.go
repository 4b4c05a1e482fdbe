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

// runnerUser makes a throwaway user as GitHub's runner has one: not root,
// with passwordless sudo (a drop-in in /etc/sudoers.d, as the runner
// images' is); the drop-in and the user (with its home) go when the test
// ends. It skips when useradd or sudo are missing.
func runnerUser(t *testing.T) string {
	t.Helper()
	need(t, "useradd", "userdel", "sudo", "visudo")
	b := make([]byte, 3)
	rand.Read(b)
	user := "ci-run-" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--create-home", "--user-group", "--shell", "/bin/bash", user).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", user, err, out)
	}
	dropIn := filepath.Join("/etc/sudoers.d", user) // no dot in the name: sudo skips such files
	t.Cleanup(func() {
		os.Remove(dropIn)
		if out, err := exec.Command("userdel", "--remove", user).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", user, err, out)
		}
	})
	if err := os.WriteFile(dropIn, []byte(user+" ALL=(ALL:ALL) NOPASSWD: ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("visudo", "-c", "-f", dropIn).CombinedOutput(); err != nil {
		t.Fatalf("visudo -c %s: %v\n%s", dropIn, err, out)
	}
	out, err := exec.Command("sudo", "-u", user, "--", "sh", "-c", "id -u; sudo -n id -u").CombinedOutput()
	if ids := strings.Fields(string(out)); err != nil || len(ids) != 2 || ids[0] == "0" || ids[1] != "0" {
		t.Fatalf("%s: want a non-root uid and root through sudo -n, got %v: %q", user, err, out)
	}
	return user
}

// actionRun is the action's steps as GitHub's runner runs them: as a
// non-root user with sudo (runnerUser), from a copy of scripts/action in
// that user's RUNNER_TEMP, with vmnet where build.sh leaves it
// ($RUNNER_TEMP/vmnet/vmnet), and GITHUB_OUTPUT and GITHUB_STEP_SUMMARY
// files of its own. The directory goes when the test ends.
type actionRun struct {
	user, dir string
	env       []string // the whole environment of a step, as the runner gives it
}

// newActionRun prepares a run of the action for lab in sandbox.
func newActionRun(t *testing.T, sandbox, lab string) *actionRun {
	t.Helper()
	a := &actionRun{user: runnerUser(t)}
	dir, err := os.MkdirTemp("", "ci-act-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a.dir = dir
	files := map[string]string{"output": "", "summary": ""}
	scripts, err := filepath.Glob(filepath.Join("..", "scripts", "action", "*.sh"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("the action's scripts: %v, %d found", err, len(scripts))
	}
	for _, sc := range scripts {
		files[filepath.Join("action", filepath.Base(sc))] = readFile(t, sc)
	}
	files[filepath.Join("vmnet", "vmnet")] = readFile(t, vmnetBin(t))
	a.writeOwned(t, files)
	home := "/home/" + a.user
	a.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "USER=" + a.user, "LOGNAME=" + a.user, "LANG=C.UTF-8",
		"RUNNER_TEMP=" + dir, "GITHUB_OUTPUT=" + filepath.Join(dir, "output"), "GITHUB_STEP_SUMMARY=" + filepath.Join(dir, "summary"),
		"VMNET_LAB=" + lab, "VMNET_ACCEL=auto", "VMNET_SANDBOX=" + sandbox}
	return a
}

// writeOwned writes files (path under a.dir -> content) owned by the
// runner's user, executable, in directories of that user (as the runner's
// checkout and RUNNER_TEMP are); a.dir itself too.
func (a *actionRun) writeOwned(t *testing.T, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(a.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test runs under umask 077 (TestMain): the user owns everything, so the modes do not matter.
	if out, err := exec.Command("chown", "-R", a.user+":"+a.user, a.dir).CombinedOutput(); err != nil {
		t.Fatalf("chown %s: %v\n%s", a.dir, err, out)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// step runs the action's step NAME (scripts/action/NAME.sh) as the
// runner's user, with only the runner's environment, and returns its exit
// code.
func (a *actionRun) step(t *testing.T, name string) int {
	t.Helper()
	start := time.Now()
	args := append([]string{"-u", a.user, "--", "env", "-i"}, a.env...)
	cmd := exec.Command("sudo", append(args, "bash", filepath.Join(a.dir, "action", name+".sh"))...)
	cmd.Dir = a.dir
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s.sh: %v", name, err)
	}
	t.Logf("%s.sh as %s: exit %d after %s\n%s", name, a.user, code, time.Since(start).Round(time.Second), lastLines(string(out), 25))
	return code
}

// upAndReport runs prepare, up and report, and checks the summary and the
// outputs: result=pass, a Markdown row for each of the lab's checks (want
// of them when want > 0), the accelerator, the JUnit file.
func (a *actionRun) upAndReport(t *testing.T, lab string, want int) {
	t.Helper()
	for _, step := range []string{"prepare", "up", "report"} {
		if code := a.step(t, step); code != 0 {
			// The job summary holds the check table with each failing
			// check's hop and cause: the step's own output does not.
			sum, _ := os.ReadFile(filepath.Join(a.dir, "summary"))
			t.Fatalf("%s.sh exited %d; the job summary:\n%s", step, code, sum)
		}
	}
	out := readOutputs(t, filepath.Join(a.dir, "output"))
	n := actionSummary(t, a.dir, lab, out)
	if out["result"] != "pass" || out["checks"] != strconv.Itoa(n) || n == 0 || want > 0 && n != want {
		t.Errorf("outputs result=%q checks=%q, want pass and %d (the summary's rows; the lab has %d)", out["result"], out["checks"], n, want)
	}
	if a := out["accel"]; a != "tcg" && a != "kvm" {
		t.Errorf("output accel=%q, want tcg or kvm", a)
	}
	if st, err := os.Stat(out["junit"]); out["junit"] != filepath.Join(a.dir, "vmnet-junit.xml") || err != nil || st.Size() == 0 {
		t.Errorf("output junit=%q (want %s, the default), the file: %v", out["junit"], filepath.Join(a.dir, "vmnet-junit.xml"), err)
	}
}

// down runs down.sh twice (the second time nothing is left) and fails
// unless the sandbox is gone.
func (a *actionRun) down(t *testing.T, sandbox string) {
	t.Helper()
	if code := a.step(t, "down"); code != 0 {
		t.Errorf("down.sh exited %d", code)
	}
	noSandbox(t, sandbox)
	if code := a.step(t, "down"); code != 0 {
		t.Errorf("down.sh a second time (nothing left to remove) exited %d", code)
	}
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
// prepare, up, report, down) as the runner would, from nothing: a non-root
// user with sudo (newActionRun), RUNNER_TEMP, GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY pointing at files of the test, against the real duo
// lab (TestCapstoneLab runs them on the capstone lab, after its teardown). The
// package-install step (deps.sh) and the /dev/kvm udev rule (kvm.sh) are
// not run: they change the machine itself (apt, /etc/udev), which tests here
// must not; build.sh is replaced by a copy of the vmnet under test. Then the
// summary must have a Markdown table with a row for every check, the
// outputs result=pass, the check count, the accelerator and the JUnit path
// (the file there), and down must leave no sandbox behind.
func TestActionScripts(t *testing.T) {
	need(t, "jq")
	tinyImage(t)
	b := make([]byte, 3)
	rand.Read(b)
	sandbox := "ci-act-" + hex.EncodeToString(b)
	t.Cleanup(func() { exec.Command(vmnetBin(t), "sandbox", "down", sandbox).Run() })
	a := newActionRun(t, sandbox, "duo")
	a.upAndReport(t, "duo", 0)
	a.down(t, sandbox)
}

// actionSummary checks the job summary: a heading with the lab and its
// result, and the Markdown check table with one row per check of lab up's
// JSON. It returns the number of rows.
func actionSummary(t *testing.T, dir, lab string, out map[string]string) int {
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
	if !strings.Contains(s, "## vmnet lab "+lab+": pass") || !strings.Contains(s, "Accelerator: **"+strings.ToUpper(out["accel"])+"**") {
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
	var list []struct {
		Name string `json:"name"`
	}
	vmnetJSON(t, vmnetBin(t), &list, "sandbox", "list")
	for _, sb := range list {
		if sb.Name == s {
			t.Errorf("sandbox %s is still listed after down.sh", s)
		}
	}
	if ns := run(t, "ip", "netns", "list"); strings.Contains(ns, "vmnet-"+s) {
		t.Errorf("network namespace vmnet-%s is left after down.sh:\n%s", s, ns)
	}
}
