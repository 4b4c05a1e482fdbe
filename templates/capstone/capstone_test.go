// Package capstone holds only tests: the capstone lab's guest files under
// guest/ are shell, Python, nginx, nftables and systemd, and these tests run
// them with the real tools (sh, Python, PostgreSQL 15, nginx,
// nft, systemd-analyze) in throwaway network namespaces. podman itself runs
// only in the guest; the scripts that drive it are tested against a podman
// stand-in that replays states the real one reports.
package capstone

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vmnet/internal/cloudinit"
)

const (
	guestDir = "guest"
	unitDir  = "guest/etc/systemd/system"
	appDir   = "guest/usr/local/lib/vmnet/app"
	sbinDir  = "guest/usr/local/sbin"
	secret   = "/etc/vmnet/secrets/db-password"
)

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
}

// guestFiles lists the files under guest/ (paths relative to this directory).
func guestFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(guestDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// shellScripts are the files that start with #!/bin/sh, here and under cloud-init/.
func shellScripts(t *testing.T) []string {
	t.Helper()
	var scripts []string
	for _, p := range append(guestFiles(t), "cloud-init/vmnet-app-rootfs") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(b, []byte("#!/bin/sh\n")) {
			scripts = append(scripts, p)
		}
	}
	return scripts
}

// TestShellScripts parses every shell script with sh -n (POSIX sh: the
// container rootfs has dash).
func TestShellScripts(t *testing.T) {
	scripts := shellScripts(t)
	if len(scripts) < 6 {
		t.Fatalf("found only %d shell scripts: %v", len(scripts), scripts)
	}
	for _, s := range scripts {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", s, err, out)
		}
		// Executed directly (ExecStart= or a container's command): the
		// contract's mode rule must make it executable.
		if mode := cloudinit.GuestFileMode(strings.TrimPrefix(s, guestDir)); strings.HasPrefix(s, guestDir) && mode != 0o755 {
			t.Errorf("%s is a script but gets mode %#o in the guest: name it *.sh or put it in sbin/", s, mode)
		}
	}
	// shellcheck lints them with every other script of the repository:
	// scripts/lint_test.go, which fails in CI when shellcheck is missing.
}

// TestAPIParses compiles api.py (without writing __pycache__ into the tree).
func TestAPIParses(t *testing.T) {
	needTools(t, "python3")
	out, err := exec.Command("python3", "-c", "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])",
		filepath.Join(appDir, "api.py")).CombinedOutput()
	if err != nil {
		t.Errorf("api.py: %v\n%s", err, out)
	}
}

// unit is one systemd unit file: every key's values per section, with
// continuation lines joined.
type unit map[string][]string

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(filepath.Join(unitDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section, pending := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if pending != "" {
			line = pending + " " + line
			pending = ""
		}
		if strings.HasSuffix(line, "\\") {
			pending = strings.TrimSuffix(line, "\\")
			continue
		}
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, _ := strings.Cut(line, "=")
			u[section+"."+k] = append(u[section+"."+k], strings.Join(strings.Fields(v), " "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u unit) one(key string) string {
	if len(u[key]) == 0 {
		return ""
	}
	return u[key][len(u[key])-1]
}

// TestContainerUnits checks the design of the three container units, one
// decision per line, so a change to a unit that breaks the contract fails here.
func TestContainerUnits(t *testing.T) {
	const mount = "-v /etc/vmnet/secrets/db-password:/run/secrets/db-password:ro"
	cases := []struct {
		name, after, health, command string
		secret                       bool
		extra                        []string
	}{
		{"db", "vmnet-app-net.service", "pg_isready", "/usr/local/lib/vmnet/app/db-entrypoint.sh", true,
			[]string{"-v /var/lib/vmnet/pgdata:/var/lib/postgresql/data", "--stop-signal=SIGINT"}},
		{"api", "vmnet-app-net.service", "http://127.0.0.1:5000/healthz", "/usr/bin/python3 /usr/local/lib/vmnet/app/api.py", true, nil},
		{"proxy", "vmnet-app-net.service", "http://127.0.0.1:8080/nginx-health", "/usr/local/lib/vmnet/app/proxy-entrypoint.sh", false,
			[]string{"-p 8080:8080"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := readUnit(t, "vmnet-app-"+c.name+".service")
			run := u.one("Service.ExecStart")
			for _, want := range append([]string{
				"/usr/bin/podman run ", " -d --rm --replace ", " --name " + c.name + " ", " --network app-net ",
				" --rootfs /var/lib/vmnet/app-rootfs:O ", " --sdnotify=conmon ", " --cidfile=%t/%N.cid ",
				" --health-interval=", " --health-retries=3 ", " --health-start-period=",
				" -v /usr/local/lib/vmnet/app:/usr/local/lib/vmnet/app:ro ",
			}, c.extra...) {
				if !strings.Contains(run+" ", want) {
					t.Errorf("ExecStart lacks %q:\n%s", want, run)
				}
			}
			if !strings.HasSuffix(run, " "+c.command) {
				t.Errorf("ExecStart does not run %s:\n%s", c.command, run)
			}
			if !regexp.MustCompile(`--health-cmd "[^"]*` + regexp.QuoteMeta(c.health)).MatchString(run) {
				t.Errorf("health check is not %s:\n%s", c.health, run)
			}
			if got := strings.Contains(run, mount); got != c.secret {
				t.Errorf("secret bind mount %q present = %v, want %v", mount, got, c.secret)
			}
			for key, want := range map[string]string{
				"Service.Type": "notify", "Service.NotifyAccess": "all", "Service.Restart": "always",
				"Unit.PartOf": "vmnet-app.target", "Unit.ConditionPathExists": secret,
				"Unit.ConditionPathIsDirectory": "/var/lib/vmnet/app-rootfs", "Install.WantedBy": "vmnet-app.target",
				"Unit.StartLimitIntervalSec": "0",
			} {
				if got := u.one(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			if !strings.Contains(u.one("Unit.After"), c.after) {
				t.Errorf("After = %q, want it to order after %s", u.one("Unit.After"), c.after)
			}
			// The three start at once (issue 12): api answers 503 without
			// db, nginx resolves api per request; an After= on another
			// container would serialise three slow podman runs again.
			for _, other := range []string{"db", "api", "proxy"} {
				if strings.Contains(u.one("Unit.After"), "vmnet-app-"+other+".service") {
					t.Errorf("After = %q orders %s after the %s container: they start at once", u.one("Unit.After"), c.name, other)
				}
			}
			if !strings.HasPrefix(u.one("Service.ExecStop"), "/usr/bin/podman stop --ignore") {
				t.Errorf("ExecStop = %q, want podman stop", u.one("Service.ExecStop"))
			}
		})
	}
}

// TestNoSecretInUnits: the password travels only as the bind-mounted file:
// no unit or script passes it through the environment or a command line.
func TestNoSecretInUnits(t *testing.T) {
	anywhere := regexp.MustCompile(`(?i)(PGPASSWORD|POSTGRES_PASSWORD|Environment=.*(pass|secret)|--pwprompt)`)
	podmanEnv := regexp.MustCompile(`\s(-e|--env|--env-file|--secret)[\s=]`)
	for _, p := range guestFiles(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if anywhere.MatchString(line) {
				t.Errorf("%s:%d hands a password over outside the secret file: %s", p, i+1, line)
			}
		}
	}
	for _, name := range []string{"db", "api", "proxy"} {
		run := readUnit(t, "vmnet-app-"+name+".service").one("Service.ExecStart")
		if podmanEnv.MatchString(run) {
			t.Errorf("vmnet-app-%s.service sets container environment or podman secrets: %s", name, run)
		}
	}
}

// TestEnableList: enable.txt names existing units, and every unit here with
// an [Install] section is in it.
func TestEnableList(t *testing.T) {
	b, err := os.ReadFile("enable.txt")
	if err != nil {
		t.Fatal(err)
	}
	units, err := cloudinit.ParseUnitList(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if _, err := os.Stat(filepath.Join(unitDir, u)); err != nil && u != "nftables.service" {
			t.Errorf("enable.txt names %s, which is not under %s", u, unitDir)
		}
	}
	entries, err := os.ReadDir(unitDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if len(readUnit(t, e.Name())["Install.WantedBy"]) > 0 && !slices.Contains(units, e.Name()) {
			t.Errorf("%s has an [Install] section but is not in enable.txt", e.Name())
		}
	}
	for _, want := range []string{"nftables.service", "vmnet-app.target", "vmnet-app-db.service", "vmnet-app-health.timer"} {
		if !slices.Contains(units, want) {
			t.Errorf("enable.txt lacks %s", want)
		}
	}
}

// TestSystemdVerify runs systemd-analyze verify on the units. podman and the
// guest's own scripts are not on this host, so "Command ... is not
// executable" for exactly those is expected; anything else fails. A broken
// unit proves the check can fail.
func TestSystemdVerify(t *testing.T) {
	needTools(t, "systemd-analyze")
	entries, err := os.ReadDir(unitDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(unitDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, e.Name())
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	missing := regexp.MustCompile(`^[\w.@-]+: Command (/usr/bin/podman|/usr/local/sbin/vmnet-[\w-]+) is not executable: No such file or directory$`)
	verify := func(files ...string) []string {
		out, _ := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, files...)...).CombinedOutput()
		var problems []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" && !missing.MatchString(line) {
				problems = append(problems, line)
			}
		}
		return problems
	}
	if p := verify(files...); len(p) > 0 {
		t.Errorf("systemd-analyze verify:\n%s", strings.Join(p, "\n"))
	}
	broken := filepath.Join(dir, "vmnet-broken.service")
	if err := os.WriteFile(broken, []byte("[Service]\nType=sometimes\nExecStart=relative/path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := verify(broken); len(p) == 0 {
		t.Error("systemd-analyze verify found nothing wrong with a broken unit")
	}
}

// TestContainerPackages: the list parses, holds what the contract needs,
// and every name is a package Debian has (apt's local lists, no download).
func TestContainerPackages(t *testing.T) {
	b, err := os.ReadFile("container-packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if f := strings.Fields(line); len(f) == 1 {
			pkgs = append(pkgs, f[0])
		} else if len(f) > 1 {
			t.Errorf("line %q: one package per line", line)
		}
	}
	for _, want := range []string{"postgresql-15", "python3-flask", "python3-psycopg2", "nginx-light", "iputils-ping", "libc-bin", "curl", "util-linux"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("container-packages.txt lacks %s", want)
		}
	}
	if _, err := exec.LookPath("apt-cache"); err != nil {
		t.Skip("apt-cache is not installed")
	}
	if err := exec.Command("apt-cache", "show", "--no-all-versions", "base-files").Run(); err != nil {
		t.Skip("apt's package lists are empty (apt-get update has not run)")
	}
	out, _ := exec.Command("apt-cache", append([]string{"show", "--no-all-versions"}, pkgs...)...).Output()
	for _, p := range pkgs {
		if !bytes.Contains(out, []byte("Package: "+p+"\n")) {
			t.Errorf("apt-cache show %s: not a Debian package here", p)
		}
	}
}

// cmdContext runs name with args under a deadline and returns its combined output.
func cmdContext(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: timed out after %s", name, strings.Join(args, " "), timeout)
	}
	return string(out), err
}

// mustRun runs a command that must succeed.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := cmdContext(t, 30*time.Second, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// newNetns makes a network namespace with lo up and removes it when the test ends.
func newNetns(t *testing.T, tag string) string {
	t.Helper()
	name := fmt.Sprintf("vmnet-capt-%s-%d", tag, os.Getpid())
	_ = exec.Command("ip", "netns", "del", name).Run() // a leftover of a killed run
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", name, err, out)
		}
	})
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// errTimeout is returned by waitFor when the condition never held.
var errTimeout = errors.New("timed out")

// waitFor polls cond every 200 ms until it returns nil or d passes.
func waitFor(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s: %w", errTimeout, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
