// Package scripts holds no Go code: its test lints every shell script of the
// repository (these scripts, .ci/run, the guest images' and the templates'
// scripts) with shellcheck.
package scripts

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// shells are the interpreters whose scripts shellcheck reads.
var shells = []string{"sh", "bash", "dash"}

// isShellScript reports whether a file's first line runs a shell: #!/bin/sh,
// #!/bin/bash, #!/usr/bin/env bash and the like.
func isShellScript(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	if !bytes.HasPrefix(line, []byte("#!")) {
		return false
	}
	f := strings.Fields(string(line[2:]))
	if len(f) == 0 {
		return false
	}
	interp := filepath.Base(f[0])
	if interp == "env" && len(f) > 1 {
		interp = f[1]
	}
	return slices.Contains(shells, interp)
}

// shellScripts lists the repository's shell scripts, found by their first
// line, relative to root.
func shellScripts(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != root && (n == ".git" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		head := make([]byte, 128)
		n, _ := f.Read(head)
		if isShellScript(head[:n]) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIsShellScript(t *testing.T) {
	for head, want := range map[string]bool{
		"#!/bin/sh\necho": true, "#!/usr/bin/env bash\n": true, "#!/bin/bash -e\n": true, "#! /bin/dash": true,
		"#!/usr/bin/python3\n": false, "#!/usr/sbin/nft -f\n": false, "echo #!/bin/sh\n": false, "#!\n": false, "": false,
	} {
		if got := isShellScript([]byte(head)); got != want {
			t.Errorf("isShellScript(%q) = %v, want %v", head, got, want)
		}
	}
}

// TestShellcheck lints every shell script in the repository. CI (CI=true)
// fails without shellcheck, which scripts/deps.sh installs: a lint that
// skips there would never run.
func TestShellcheck(t *testing.T) {
	root := ".."
	scripts := shellScripts(t, root)
	// The walk must find the scripts that are known to be there, or it
	// would lint nothing and pass.
	for _, want := range []string{"scripts/test.sh", "scripts/deps.sh", "scripts/lab.sh", ".ci/run", "images/tiny/init",
		"images/capstone/vmnet-net", "templates/capstone/guest/usr/local/sbin/vmnet-app-wait", "scripts/action/report.sh"} {
		if !slices.Contains(scripts, want) {
			t.Errorf("the script walk missed %s (found %v)", want, scripts)
		}
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("shellcheck is not installed, and CI must lint the shell scripts: scripts/deps.sh installs it")
		}
		t.Skip("shellcheck is not installed (scripts/deps.sh installs it): shell scripts not linted")
	}
	cmd := exec.Command("shellcheck", scripts...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", strings.Join(scripts, " "), err, out)
	}
	t.Logf("shellcheck: %d scripts clean", len(scripts))
}
