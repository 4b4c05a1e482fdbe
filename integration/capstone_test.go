package integration

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"vmnet/internal/app/capstone"
	"vmnet/internal/check"
	"vmnet/internal/report/junitxsd"
	"vmnet/internal/vmspec"
	"vmnet/templates"
)

var (
	capstoneOnce sync.Once
	capstoneErr  error
)

// capstoneImage builds the capstone image once, in the host's namespace.
func capstoneImage(t testing.TB) {
	t.Helper()
	bin := vmnetBin(t)
	capstoneOnce.Do(func() {
		start := time.Now()
		out, err := exec.Command(bin, "image", "build", "capstone").CombinedOutput()
		if err != nil {
			capstoneErr = fmt.Errorf("vmnet image build capstone: %v\n%s", err, out)
			return
		}
		t.Logf("image build capstone: %s\n%s", time.Since(start).Round(time.Second), lastLines(string(out), 4))
	})
	if capstoneErr != nil {
		t.Fatal(capstoneErr)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// capstoneChecks is how many checks the capstone matrix declares for the
// capstone profile's NICs, counted by the planner itself rather than copied
// from a run: a check that silently drops out of a run makes the lab fail.
func capstoneChecks(t *testing.T) int {
	t.Helper()
	b, err := templates.Profile("capstone")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := vmspec.Parse(b, ".")
	if err != nil {
		t.Fatalf("the capstone profile: %v", err)
	}
	app := capstone.App()
	target := check.Target{Name: spec.Name, Spec: capstone.Name, App: &app}
	for i, n := range spec.NICs {
		target.NICs = append(target.NICs, check.NIC{Index: i, Guest: fmt.Sprintf("eth%d", i), Network: n.Network, Bridge: n.Bridge})
	}
	n := len(check.AppMatrix(target))
	if n == 0 {
		t.Fatal("the capstone matrix declares no checks")
	}
	return n
}

// checkJSON is what vmnet check -o json prints (the fields this test reads).
type checkJSON struct {
	Matrix  string     `json:"matrix"`
	Total   int        `json:"total"`
	Passed  int        `json:"passed"`
	Failed  int        `json:"failed"`
	Results []struct { // "checks" in vmnet's JSON
		ID     string `json:"id"`
		Source string `json:"source"`
		Target string `json:"target"`
		Method string `json:"method"`
		Pass   bool   `json:"pass"`
		Actual string `json:"actual"`
		Hop    string `json:"hop"`
		Cause  string `json:"cause"`
		Expect string `json:"expect"`
	} `json:"checks"`
}

func runCheck(t *testing.T, s string) (checkJSON, int) {
	t.Helper()
	r := sb(t, s, vmnetBin(t), "-o", "json", "check", "capstone")
	var c checkJSON
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatalf("check JSON: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	for _, res := range c.Results {
		if !res.Pass {
			t.Logf("failing check %s: %s → %s (%s): %s; hop %s; cause %s", res.ID, res.Source, res.Target, res.Method, res.Actual, res.Hop, res.Cause)
		}
	}
	return c, r.code
}

// guest runs a command in the capstone guest and fails the test unless it exits 0.
func guest(t testing.TB, s string, argv ...string) string {
	t.Helper()
	r := sb(t, s, append([]string{vmnetBin(t), "vm", "exec", "--timeout", "5m", "capstone", "--"}, argv...)...)
	if r.code != 0 {
		t.Fatalf("in the guest: %v: exit %d\n%s%s", argv, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// bootID is the guest kernel's random id of the current boot: a reboot changes it.
func bootID(t *testing.T, s string) string {
	t.Helper()
	id := strings.TrimSpace(guest(t, s, "cat", "/proc/sys/kernel/random/boot_id"))
	if len(id) != 36 {
		t.Fatalf("guest boot id %q is not a UUID", id)
	}
	return id
}

// The capstone lab end to end: up ends with every check green; broken hops
// are reported with the right cause; the stack comes back after a container
// crash and after a guest reboot; no password is readable by others on host
// or guest; the GitHub Action's scripts report the lab that is up; down
// leaves nothing, and the action's down removes the sandbox.
func TestCapstoneLab(t *testing.T) {
	capstoneImage(t)
	s := newSandbox(t)
	junit := filepath.Join(t.TempDir(), "capstone.xml")

	start := time.Now()
	r := sb(t, s, vmnetBin(t), "-o", "json", "vm", "up", "capstone", "--junit", junit)
	t.Logf("vm up capstone: exit %d after %s\n%s", r.code, time.Since(start).Round(time.Second), r.stderr)
	var up struct {
		Outcome string `json:"outcome"`
		Phases  []struct {
			Name    string  `json:"name"`
			Seconds float64 `json:"seconds"`
		} `json:"phases"`
		Check checkJSON `json:"check"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &up); err != nil {
		t.Fatalf("vm up JSON: %v\n%s", err, r.stdout)
	}
	for _, p := range up.Phases {
		t.Logf("phase %-45s %6.1fs", p.Name, p.Seconds)
	}
	want := capstoneChecks(t)
	if r.code != 0 || up.Check.Matrix != capstone.Name || up.Check.Total != want || up.Check.Passed != want || up.Check.Failed != 0 {
		t.Fatalf("vm up capstone: exit %d, matrix %q: %d of %d checks passed, %d failed; the capstone matrix declares %d\n%s",
			r.code, up.Check.Matrix, up.Check.Passed, up.Check.Total, up.Check.Failed, want, r.stdout)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if b, err := os.ReadFile(junit); err != nil || xml.Unmarshal(b, &suites) != nil || suites.Tests != up.Check.Passed || suites.Failures != 0 {
		t.Errorf("JUnit file: %v, %+v", err, suites)
	}
	if msg, err := junitxsd.ValidateAll(junit); err != nil || msg != "" {
		t.Errorf("JUnit file %s does not validate against the JUnit schemas: %v\n%s", junit, err, msg)
	}
	// The API's answer comes from the database, through the proxy.
	body := sb(t, s, "curl", "-sS", "--noproxy", "*", "--max-time", "10", "-w", "\nHTTP %{http_code}", "http://192.0.2.10:8080/")
	if body.code != 0 || !strings.HasSuffix(body.stdout, "HTTP 200") || !strings.Contains(strings.ReplaceAll(body.stdout, " ", ""), `"version":"PostgreSQL15`) {
		t.Errorf("GET http://192.0.2.10:8080/: exit %d: %s%s", body.code, body.stdout, body.stderr)
	}

	t.Run("no password readable by others", func(t *testing.T) { noPasswordLeak(t, s) })

	t.Run("stopped api is the failing hop", func(t *testing.T) {
		guest(t, s, "systemctl", "stop", "vmnet-app-api.service")
		c, code := runCheck(t, s)
		if code == 0 || c.Failed == 0 {
			t.Fatalf("check passed with the api stopped")
		}
		found := false
		for _, res := range c.Results {
			if !res.Pass && res.Method == "http" && res.Cause == "container not running" && strings.Contains(res.Hop, "api") {
				found = true
			}
		}
		if !found {
			t.Errorf("no failing HTTP check blames the api container: %+v", c.Results)
		}
		guest(t, s, "systemctl", "start", "vmnet-app.target")
		guest(t, s, "/usr/local/sbin/vmnet-app-wait", "180")
		if c, code := runCheck(t, s); code != 0 || c.Failed != 0 {
			t.Fatalf("checks after restarting the api: %d failed", c.Failed)
		}
	})

	t.Run("detached tap is the failing hop", func(t *testing.T) {
		tap := strings.TrimSpace(sb(t, s, "sh", "-c", "ip -o link show master br0 | sed -n 's/^[0-9]*: \\(vnet[0-9]*\\).*/\\1/p' | head -1").stdout)
		if tap == "" {
			t.Fatal("no tap on br0")
		}
		sb(t, s, "ip", "link", "set", tap, "nomaster")
		c, code := runCheck(t, s)
		sb(t, s, "ip", "link", "set", tap, "master", "br0")
		if code == 0 {
			t.Fatal("check passed with the tap detached")
		}
		found := false
		for _, res := range c.Results {
			if !res.Pass && res.Cause == "tap not attached" {
				found = true
			}
		}
		if !found {
			t.Errorf("no failing check says the tap is not attached")
		}
	})

	t.Run("the stack survives a container crash", func(t *testing.T) {
		guest(t, s, "podman", "kill", "api")
		time.Sleep(3 * time.Second)
		guest(t, s, "/usr/local/sbin/vmnet-app-wait", "180")
		if c, code := runCheck(t, s); code != 0 {
			t.Fatalf("checks after killing api: %d failed", c.Failed)
		}
	})

	t.Run("the stack survives a guest reboot", func(t *testing.T) {
		before := bootID(t, s)
		if r := sb(t, s, "virsh", "-c", "qemu:///system", "reboot", "capstone", "--mode", "agent"); r.code != 0 {
			t.Fatalf("virsh reboot capstone --mode agent: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		time.Sleep(10 * time.Second) // the agent of the old boot must be gone
		deadline := time.Now().Add(5 * time.Minute)
		for {
			r := sb(t, s, vmnetBin(t), "vm", "exec", "--timeout", "5m", "capstone", "--", "/usr/local/sbin/vmnet-app-wait", "240")
			if r.code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the app did not come back after a reboot: %s%s", r.stdout, r.stderr)
			}
			time.Sleep(5 * time.Second)
		}
		// The agent of the old boot may still have answered: only a new boot
		// id says that the guest really rebooted.
		if after := bootID(t, s); after == before {
			t.Fatalf("the guest did not reboot: boot id %s before and after virsh reboot", before)
		}
		if c, code := runCheck(t, s); code != 0 {
			t.Fatalf("checks after a reboot: %d failed", c.Failed)
		}
	})

	// The warm start (lab save, lab up --from-save) is BenchmarkCapstone's:
	// it times it, and asserts what this test would (warmStart).

	// down twice, then nothing is left in the sandbox.
	tornDown := false
	teardown := func(t *testing.T) {
		t.Helper()
		tornDown = true
		sbVmnet(t, s, "vm", "down", "capstone")
		sbVmnet(t, s, "vm", "down", "capstone")
		residue(t, s)
	}
	// Issue 11's acceptance 2: after the teardown above (vm down leaves
	// nothing in the sandbox), the action's scripts, as GitHub's runner
	// user, bring the capstone lab up again from nothing in this sandbox
	// (prepare's sandbox up and image build find them made; up boots a new
	// guest), write the summary and outputs with every check passing, and
	// the action's down (lab down, then sandbox down) leaves nothing.
	t.Run("the action's scripts on this lab", func(t *testing.T) {
		need(t, "jq")
		teardown(t)
		act := newActionRun(t, s, "capstone")
		act.upAndReport(t, "capstone", want)
		act.down(t, s)
	})
	if !tornDown { // the action's test was skipped, or failed before the teardown
		teardown(t)
	}
}

// leakScan is a shell script that looks for the text in the file $pw (the
// secret) and, when $canary names a file, for the text in that one too, in
// every regular file that the group or others may read under roots (tmpfs
// ones included: -xdev keeps each root on its own file system), and in every
// process's command line and environment. Each finding is one line, tagged
// "secret:" or "canary:". Secret and canary are looked for in one pass:
// under TCG a pass over the guest's files takes minutes. Neither text is
// ever put on a command line: grep reads them from their 0600 files.
//
// since, when not zero, limits the file pass to files whose inode changed
// (ctime, which no program can set back) after it: a file unchanged since
// the image was built cannot hold a password made for this lab. The script
// drops the limit, and says so, when the machine booted before since: then
// its clock is not to be trusted for this.
func leakScan(roots string, maxSize string, since time.Time) string {
	size := ""
	if maxSize != "" {
		size = "-size -" + maxSize
	}
	newer := ""
	if !since.IsZero() {
		newer = fmt.Sprintf(`since=%d
btime=$(sed -n 's/^btime //p' /proc/stat)
if [ "${btime:-0}" -le "$since" ]; then
  echo "note: booted at $btime, not after the image was built ($since): every file is searched"; since=
fi
`, since.Unix())
	}
	return newer + `test -s "$pw" || { echo "no secret in $pw" >&2; exit 3; }
set -- -f "$pw"; [ -z "${canary:-}" ] || set -- "$@" -f "$canary"
# tags FILE: which of the texts FILE holds.
tags() {
  grep -qsF -f "$pw" -- "$1" && echo secret
  [ -n "${canary:-}" ] && grep -qsF -f "$canary" -- "$1" && echo canary
  true
}
find ` + roots + ` -xdev \( -path /proc -o -path /sys \) -prune -o -type f -perm /044 ` + size + ` ${since:+-newerct "@$since"} -print0 2>/dev/null |
  xargs -0 grep -lsF "$@" -- 2>/dev/null | grep -vxF -e "$pw" ${canary:+-e "$canary"} | sort -u | while read -r f; do
    for tag in $(tags "$f"); do echo "$tag: file $(stat -c '%a %U:%G' "$f") $f"; done
  done
for p in /proc/[0-9]*; do
  for what in cmdline environ; do
    tr '\0' '\n' 2>/dev/null <"$p/$what" | grep -qF "$@" || continue
    for tag in secret canary; do
      pat=$pw; [ "$tag" = secret ] || pat=${canary:-}
      [ -n "$pat" ] && tr '\0' '\n' 2>/dev/null <"$p/$what" | grep -qF -f "$pat" &&
        echo "$tag: process ${p#/proc/} ($(cat "$p/comm" 2>/dev/null)): $what"
    done
  done
done
true
`
}

// The roots searched: the sandbox's state, logs and libvirt files, and every
// tmpfs; in the guest the whole root file system and its tmpfs.
const (
	hostLeakRoots  = "/var/lib/vmnet /var/log/libvirt /etc/libvirt /var/lib/libvirt /run /run/libvirt /tmp /dev/shm"
	guestLeakRoots = "/ /run /tmp /var/tmp /dev/shm"
)

// plantCanary is a script to run before leakScan: it makes a random text
// in a new 0600 file $canary and leaks it on purpose where leakScan must
// find it: a 0644 file in /tmp, a group-readable (0640) file in /run, a 0604
// file in /dev/shm, a process's command line and another's environment. All
// of it goes when the script ends.
const plantCanary = `set -e
canary=$(mktemp)
head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$canary"
c=$(cat "$canary")
leaks="/tmp/vmnet-canary.$$ /run/vmnet-canary.$$ /dev/shm/vmnet-canary.$$"
VMNET_CANARY="$c" sleep 600 </dev/null >/dev/null 2>&1 & env_pid=$!
sh -c 'while :; do sleep 1; done' "vmnet-canary $c" </dev/null >/dev/null 2>&1 & argv_pid=$!
trap 'kill $env_pid $argv_pid; rm -f -- "$canary" $leaks' EXIT
for f in $leaks; do printf 'x=%s\n' "$c" >"$f"; done
chmod 0644 /tmp/vmnet-canary.$$; chmod 0640 /run/vmnet-canary.$$; chmod 0604 /dev/shm/vmnet-canary.$$
set +e
`

// leaks runs plantCanary and leakScan with $pw=secret, fails the test
// unless the scan found every planted canary, and returns its secret: lines.
func leaks(t *testing.T, where, secret string, built time.Time, scan func(script string) (string, int)) []string {
	t.Helper()
	start := time.Now()
	out, code := scan("pw=" + secret + "\n" + plantCanary + leakScanFor(where, built))
	if code != 0 {
		t.Fatalf("leak scan %s: exit %d\n%s", where, code, out)
	}
	t.Logf("leak scan %s: %s", where, time.Since(start).Round(100*time.Millisecond))
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "note:") {
			t.Logf("leak scan %s: %s", where, line)
		}
	}
	for _, want := range []string{"canary: file 644 root:root /tmp/vmnet-canary.", "canary: file 640 root:root /run/vmnet-canary.",
		"canary: file 604 root:root /dev/shm/vmnet-canary.", "(sh): cmdline", "(sleep): environ"} {
		if !strings.Contains(out, want) {
			t.Errorf("the leak scan %s missed a planted canary (%q), so it proves nothing:\n%s", where, want, out)
		}
	}
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "secret:") {
			found = append(found, line)
		}
	}
	return found
}

// imageBuilt is when the newest cached build of image name was made: every
// file it holds changed last before then.
func imageBuilt(t *testing.T, name string) time.Time {
	t.Helper()
	var images []struct {
		Name  string    `json:"name"`
		Built time.Time `json:"built"`
	}
	out := vmnetJSON(t, vmnetBin(t), &images, "image", "list")
	var built time.Time
	for _, im := range images {
		if im.Name == name && im.Built.After(built) {
			built = im.Built
		}
	}
	if built.IsZero() {
		t.Fatalf("vmnet image list has no %s image with a build time:\n%s", name, out)
	}
	return built
}

// leakScanFor is leakScan with the roots of the host or of the guest; the
// guest's journal is searched for the secret too. In the guest only files
// changed after built (its image's build) are read: under TCG reading all of
// its 1.2 GiB took the 5-minute exec bound on a loaded CI machine. The host's
// files are all read (natively, in seconds).
func leakScanFor(where string, built time.Time) string {
	if where == "on the host" {
		return leakScan(hostLeakRoots, "", time.Time{}) // the VM's disk too: it holds the guest's copy, so only its owner may read it
	}
	return leakScan(guestLeakRoots, "20M", built) +
		`journalctl -b --no-pager 2>/dev/null | grep -cF -f "$pw" | grep -v '^0$' | sed 's/^/secret: journal lines: /' || true` + "\n"
}

// noPasswordLeak looks for the lab's DB password on the host side (inside
// the sandbox) and in the guest, and fails on any copy that the group or
// others may read, and on any process that has it in its command line or
// environment. The same pass must find a canary planted in each of those
// places, so an empty answer means something.
func noPasswordLeak(t *testing.T, s string) {
	secret := "/var/lib/vmnet/vms/capstone/secrets/db-password"
	st := sb(t, s, "stat", "-c", "%a %U", secret, filepath.Dir(secret))
	if f := strings.Fields(st.stdout); st.code != 0 || len(f) != 4 || f[0] != "600" || f[2] != "700" {
		t.Errorf("host secret modes: %q", st.stdout)
	}
	onHost := leaks(t, "on the host", secret, time.Time{}, func(script string) (string, int) {
		r := sb(t, s, "sh", "-c", script)
		return r.stdout + r.stderr, r.code
	})
	if len(onHost) > 0 {
		t.Errorf("the password is readable by others on the host:\n%s", strings.Join(onHost, "\n"))
	}
	inGuest := leaks(t, "in the guest", "/etc/vmnet/secrets/db-password", imageBuilt(t, "capstone"), func(script string) (string, int) {
		return guest(t, s, "sh", "-c", script), 0
	})
	if len(inGuest) > 0 {
		t.Errorf("the password is readable by others in the guest:\n%s", strings.Join(inGuest, "\n"))
	}
	// And the guest file itself: 0600 in a 0700 directory.
	if out := guest(t, s, "stat", "-c", "%a", "/etc/vmnet/secrets", "/etc/vmnet/secrets/db-password"); strings.Fields(out)[0] != "700" || strings.Fields(out)[1] != "600" {
		t.Errorf("guest secret modes: %q", out)
	}
}
