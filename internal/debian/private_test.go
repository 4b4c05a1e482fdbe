package debian

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vmnet/internal/safe"
)

// writeRoot makes a file system root for ChooseMirrors: path -> content.
func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, text := range files {
		f := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// This machine's /etc/apt/sources.list.d/debian.sources, a mirror in place
// of deb.debian.org.
const debianSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

// An Ubuntu runner's sources: Ubuntu's archive, which has no bookworm.
const ubuntuSources = `Types: deb
URIs: http://azure.archive.ubuntu.com/ubuntu/
Suites: noble noble-updates noble-backports
Components: main universe restricted multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://azure.archive.ubuntu.com/ubuntu/
Suites: noble-security
Components: main universe restricted multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
`

func TestChooseMirrors(t *testing.T) {
	debianOS := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
	def := Mirrors{DefaultMirror, DefaultSecurityMirror}
	host := Mirrors{"http://mirror.example/debian", "http://mirror.example/debian-security"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		env   map[string]string
		want  Mirrors
	}{
		{"debian deb822", map[string]string{"etc/os-release": debianOS, "etc/apt/sources.list.d/debian.sources": debianSources}, nil, host},
		{"debian one-line", map[string]string{"etc/os-release": debianOS, "etc/apt/sources.list": "# old\n" +
			"deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n" +
			"deb-src http://src.example/debian bookworm main\n" +
			"deb http://mirror.example/debian-security bookworm-security main\n"}, nil, host},
		{"debian disabled and cdrom", map[string]string{"etc/os-release": debianOS, "etc/apt/sources.list.d/a.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n",
			"etc/apt/sources.list": "deb cdrom:[Debian 12]/ bookworm main\n"}, nil, def},
		{"debian without sources", map[string]string{"etc/os-release": debianOS}, nil, def},
		{"ubuntu", map[string]string{"etc/os-release": "NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n", "etc/apt/sources.list.d/ubuntu.sources": ubuntuSources}, nil, def},
		{"no os-release", nil, nil, def},
		{"env wins", map[string]string{"etc/os-release": debianOS, "etc/apt/sources.list.d/debian.sources": debianSources},
			map[string]string{EnvMirror: "https://m.example/debian/", EnvSecurityMirror: "https://s.example/debian-security"},
			Mirrors{"https://m.example/debian", "https://s.example/debian-security"}},
		{"env main only", nil, map[string]string{EnvMirror: "file:///srv/debian"}, Mirrors{"file:///srv/debian", DefaultSecurityMirror}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ChooseMirrors(func(k string) string { return tc.env[k] }, writeRoot(t, tc.files))
			if err != nil || got != tc.want {
				t.Errorf("ChooseMirrors = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"deb.debian.org/debian", "ftp://x.example/debian", "http://"} {
		_, err := ChooseMirrors(func(k string) string { return map[string]string{EnvMirror: bad}[k] }, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "$"+EnvMirror) {
			t.Errorf("%s=%q: %v, want an error naming the variable", EnvMirror, bad, err)
		}
	}
}

func TestMirrorLines(t *testing.T) {
	m := Mirrors{"http://m.example/debian", "http://m.example/debian-security"}
	k := "[signed-by=" + Keyring + "] "
	want := "deb " + k + "http://m.example/debian bookworm main\n" +
		"deb " + k + "http://m.example/debian bookworm-updates main\n" +
		"deb " + k + "http://m.example/debian-security bookworm-security main\n"
	if got := m.SourcesList(); got != want {
		t.Errorf("SourcesList:\n%s", cmp.Diff(want, got))
	}
	// The capstone recipe's lines, and two a recipe may name otherwise.
	got := m.Rewrite([]string{
		"deb http://deb.debian.org/debian bookworm main",
		"deb http://deb.debian.org/debian bookworm-updates main",
		"deb http://deb.debian.org/debian-security/ bookworm-security main",
		"deb [trusted=yes] http://local.example/repo ./",
		"deb http://other.example/debian bookworm contrib",
	})
	wantR := []string{
		"deb " + k + "http://m.example/debian bookworm main",
		"deb " + k + "http://m.example/debian bookworm-updates main",
		"deb " + k + "http://m.example/debian-security bookworm-security main",
		"deb [trusted=yes] http://local.example/repo ./",
		"deb " + k + "http://other.example/debian bookworm contrib",
	}
	if !cmp.Equal(got, wantR) {
		t.Errorf("Rewrite:\n%s", cmp.Diff(wantR, got))
	}
}

// Every file apt reads or writes is under the state's directory.
func TestAptOptionsStayInDir(t *testing.T) {
	dir := "/cache/.apt"
	opts := AptOptions(dir)
	seen := map[string]string{}
	for _, o := range opts {
		seen[o[0]] = o[1]
		if strings.HasPrefix(o[0], "Dir::") && filepath.IsAbs(o[1]) && !strings.HasPrefix(o[1], dir+"/") {
			t.Errorf("%s = %q is outside %s", o[0], o[1], dir)
		}
	}
	for _, k := range []string{"Dir::Etc", "Dir::Etc::parts", "Dir::Etc::sourcelist", "Dir::Etc::sourceparts",
		"Dir::Etc::preferences", "Dir::Etc::preferencesparts", "Dir::Etc::trusted", "Dir::Etc::trustedparts",
		"Dir::State", "Dir::State::status", "Dir::Cache", "Dir::Log", "APT::Architecture"} {
		if seen[k] == "" {
			t.Errorf("%s is not set: apt would take the host's", k)
		}
	}
	conf := AptConf(opts)
	if !strings.Contains(conf, "Dir::State::status \"/cache/.apt/state/status\";\n") || !strings.Contains(conf, "APT::Architectures:: \"amd64\";\n") {
		t.Errorf("apt.conf:\n%s", conf)
	}
}

// aptConfigDump is apt-config dump under APT_CONFIG=conf: KEY -> VALUE.
func aptConfigDump(t *testing.T, conf string) map[string]string {
	t.Helper()
	cmd := exec.Command("apt-config", "dump")
	cmd.Env = append(Env(), "APT_CONFIG="+conf)
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) {
		t.Skip("no apt-config here")
	}
	if err != nil {
		t.Fatalf("apt-config dump: %v", err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok {
			m[k] = strings.Trim(strings.TrimSuffix(v, ";"), "\"")
		}
	}
	return m
}

// apt itself reads the state's settings, and none of the host's
// /etc/apt/apt.conf.d: every key it knows is one of apt's defaults (with
// only Dir::Etc pointed at an empty directory) or one of vmnet's.
func TestPrivateStateAptConfig(t *testing.T) {
	if _, err := os.Stat(Keyring); err != nil {
		t.Skipf("no Debian archive keyring here (package debian-archive-keyring): %v", err)
	}
	dir := t.TempDir()
	conf, err := WritePrivateState(dir, Mirrors{"http://m.example/debian", "http://m.example/debian-security"})
	if err != nil {
		t.Fatal(err)
	}
	got := aptConfigDump(t, conf)
	for _, k := range []string{"Dir::Etc", "Dir::State", "Dir::Cache", "Dir::State::status"} {
		if !strings.HasPrefix(got[k], dir) {
			t.Errorf("apt-config: %s = %s, want under %s", k, got[k], dir)
		}
	}
	empty := filepath.Join(t.TempDir(), "defaults.conf")
	os.WriteFile(empty, []byte(fmt.Sprintf("Dir::Etc %q;\n", t.TempDir())), 0o644)
	defaults := aptConfigDump(t, empty)
	ours := map[string]bool{}
	for _, o := range AptOptions(dir) {
		ours[strings.TrimSuffix(o[0], "::")] = true
	}
	for k := range got {
		base := k
		if i := strings.LastIndex(k, "::"); i > 0 && !ours[k] {
			base = k[:i]
		}
		if _, ok := defaults[k]; !ok && !ours[k] && !ours[base] {
			t.Errorf("apt-config knows %s = %s: neither apt's default nor vmnet's (read from the host's config?)", k, got[k])
		}
	}
	data, _ := os.ReadFile(filepath.Join(dir, "etc/sources.list"))
	if !strings.Contains(string(data), "http://m.example/debian bookworm main") {
		t.Errorf("sources.list:\n%s", data)
	}
	// Unchanged files are not rewritten: the memo's fingerprint holds.
	before := aptFingerprint(Apt{State: dir}.aptState())
	time.Sleep(10 * time.Millisecond)
	if _, err := WritePrivateState(dir, Mirrors{"http://m.example/debian", "http://m.example/debian-security"}); err != nil {
		t.Fatal(err)
	}
	if aptFingerprint(Apt{State: dir}.aptState()) != before {
		t.Error("writing the same state again changed its fingerprint")
	}
}

// testLog is a Log that runs commands and keeps their output in the test log.
type testLog struct{ t *testing.T }

func (l testLog) Step(format string, a ...any) { l.t.Logf(format, a...) }
func (l testLog) Count(_ string, _ int64, _ func() int64, work func() error) error {
	return work()
}
func (l testLog) Run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, Env()
	out, err := cmd.CombinedOutput()
	l.t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, lastLine(string(out)))
	}
	return nil
}

// countLog is a testLog that counts the commands it runs.
type countLog struct {
	t    *testing.T
	runs int
}

func (l *countLog) Step(format string, a ...any) { l.t.Logf(format, a...) }
func (l *countLog) Count(label string, total int64, size func() int64, work func() error) error {
	return work()
}
func (l *countLog) Run(ctx context.Context, dir, name string, args ...string) error {
	l.runs++
	return testLog{l.t}.Run(ctx, dir, name, args...)
}

// envHiddenApt marks the test binary run inside a mount namespace whose
// /etc/apt and /var/lib/apt/lists are empty.
const envHiddenApt = "VMNET_TEST_HOST_APT_HIDDEN"

// The host's apt configuration plays no part: in a mount namespace where
// /etc/apt (sources, apt.conf.d, keys) and /var/lib/apt/lists are empty
// tmpfs, the host's apt knows no linux-image-amd64, yet a fresh private
// state fetches bookworm's lists and resolves the kernel through it.
func TestPrivateStateIgnoresHostApt(t *testing.T) {
	if os.Getenv(envHiddenApt) == "1" {
		resolveWithHostAptHidden(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace (unshare -m)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare here (util-linux)")
	}
	// unshare -m makes the namespace's mounts private: the host's stay as they are.
	cmd := exec.Command("unshare", "-m", "sh", "-c",
		`mount -t tmpfs vmnet-test /etc/apt && mount -t tmpfs vmnet-test /var/lib/apt/lists && exec "$@"`, "sh",
		os.Args[0], "-test.run=^TestPrivateStateIgnoresHostApt$", "-test.v")
	cmd.Env = append(os.Environ(), envHiddenApt+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in a mount namespace without the host's apt:\n%s", out)
	if err != nil {
		t.Fatalf("resolution with the host's apt hidden: %v", err)
	}
	if bytes.Contains(out, []byte("--- SKIP")) {
		t.Skip("skipped inside the namespace (see the log)")
	}
}

// resolveWithHostAptHidden is the namespace's half of
// TestPrivateStateIgnoresHostApt.
func resolveWithHostAptHidden(t *testing.T) {
	ctx := context.Background()
	for _, d := range []string{"/etc/apt", "/var/lib/apt/lists"} {
		if entries, _ := os.ReadDir(d); len(entries) != 0 {
			t.Fatalf("%s is not empty in the namespace: %d entries", d, len(entries))
		}
	}
	host := exec.Command("apt-cache", "show", "linux-image-amd64")
	host.Env = Env()
	if out, err := host.Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("the host's apt still knows linux-image-amd64:\n%s", out)
	}
	a := Apt{State: t.TempDir()}
	// Two builds refreshing at once: one apt-get update, the other waits
	// and takes it (apt alone would fail on its lists lock).
	logs := []*countLog{{t: t}, {t: t}}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range logs {
		safe.Go(&wg, "refresh", func() error { return a.Refresh(ctx, logs[i]) }, func(err error) { errs[i] = err })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Skipf("Debian's mirror is not reachable from here: %v", err)
	}
	if n := logs[0].runs + logs[1].runs; n != 1 {
		t.Errorf("two concurrent refreshes ran apt-get update %d times, want 1", n)
	}
	k, err := ResolveKernel(ctx, a, "linux-image-amd64")
	if err != nil {
		t.Fatal(err)
	}
	if !kernelImageRE.MatchString(k.Name) || k.Arch != "amd64" || len(k.SHA256) != 64 {
		t.Errorf("kernel = %+v, want a linux-image-VERSION-amd64 package", k)
	}
	t.Logf("resolved %s (%s) from the private state", k, k.Filename)
}
