package capstone

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// podman runs only in the guest, so vmnet-app-wait and vmnet-app-health
// meet a stand-in here: podman, systemctl and curl scripts that answer from
// a state directory what the real ones report (podman inspect's fields,
// healthcheck run's exit code, systemctl is-active) and log what they were
// asked to do. The scripts under test are the real ones.
const fakePodman = `#!/bin/sh
# podman inspect --format FORMAT NAME | podman healthcheck run NAME
echo "podman $*" >>"$FAKE/calls"
case $1 in
inspect)
	# podman inspect --format FORMAT NAME...: a line per container found,
	# an error for each missing one and exit 125 when any is.
	f=$3 rc=0
	shift 3
	for name; do
		[ -f "$FAKE/$name" ] || { echo "Error: no such object: \"$name\"" >&2; rc=125; continue; }
		. "$FAKE/$name"
		printf '%s\n' "$f" | sed -e "s/{{.Name}}/$name/g" -e "s/{{.Id}}/$id/g" -e "s/{{.State.Running}}/$running/g" \
			-e "s/{{.State.Health.Status}}/$health/g" -e "s/{{.State.Health.FailingStreak}}/$streak/g"
	done
	exit $rc
	;;
healthcheck)
	. "$FAKE/$3"
	[ "$check" = 0 ] && exit 0
	echo unhealthy
	exit 1
	;;
*) echo "fake podman: $1 is not faked" >&2; exit 125 ;;
esac
`

const fakeSystemctl = `#!/bin/sh
echo "systemctl $*" >>"$FAKE/calls"
quiet= args=
for a; do
	case $a in
	-q | --quiet) quiet=1 ;;
	*) args="$args $a" ;;
	esac
done
# shellcheck disable=SC2086
set -- $args
case $1 in
is-active)
	shift
	rc=0
	for u; do
		state=$(cat "$FAKE/unit-$u" 2>/dev/null || echo inactive)
		[ -n "$quiet" ] || echo "$state"
		[ "$state" = active ] || rc=3
	done
	exit $rc
	;;
restart) exit 0 ;;
*) echo "fake systemctl: $1 is not faked" >&2; exit 1 ;;
esac
`

const fakeCurl = `#!/bin/sh
cat "$FAKE/curl-body"
exit "$(cat "$FAKE/curl-rc")"
`

// fakeGuest is the state directory and the PATH with the stand-ins first.
type fakeGuest struct {
	t          *testing.T
	dir, bin   string
	secret     string
	rootfs     string
	containers map[string]string
}

func newFakeGuest(t *testing.T) *fakeGuest {
	dir := t.TempDir()
	g := &fakeGuest{t: t, dir: filepath.Join(dir, "state"), bin: filepath.Join(dir, "bin"),
		secret: filepath.Join(dir, "db-password"), rootfs: filepath.Join(dir, "app-rootfs")}
	for _, d := range []string{g.dir, g.bin, g.rootfs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"podman": fakePodman, "systemctl": fakeSystemctl, "curl": fakeCurl} {
		if err := os.WriteFile(filepath.Join(g.bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(g.secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.curl(0, `{"db":{"now":"2026-11-26T05:00:00+00:00","version":"PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64-pc-linux-gnu","visits":7},"host":"0a1b2c3d4e5f","service":"api"}`)
	return g
}

func (g *fakeGuest) write(name, content string) {
	g.t.Helper()
	if err := os.WriteFile(filepath.Join(g.dir, name), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
}

// container sets what podman reports for name and systemd for its unit,
// and the files podman and conmon keep for it: the unit's cid file, the
// container's pidfile (a live PID, this test's, when running; one above
// pid_max when not) and its healthcheck.log.
func (g *fakeGuest) container(name, id, running, health string, check int, unit string) {
	g.write(name, "id="+id+" running="+running+" health="+health+" streak=3 check="+string(rune('0'+check))+"\n")
	g.write("unit-vmnet-app-"+name+".service", unit+"\n")
	g.write("vmnet-app-"+name+".cid", id)
	userdata := filepath.Join("storage/overlay-containers", id, "userdata")
	if err := os.MkdirAll(filepath.Join(g.dir, userdata), 0o755); err != nil {
		g.t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	if running != "true" {
		pid = "4194305"
	}
	g.write(filepath.Join(userdata, "pidfile"), pid)
	g.write(filepath.Join("storage/overlay-containers", id, "healthcheck.log"),
		`{"Status":"`+health+`","FailingStreak":3,"Log":[{"Start":"2026-12-02T23:11:30.27706647Z","ExitCode":0,"Output":""}]}`)
}

func (g *fakeGuest) curl(rc int, body string) {
	g.write("curl-rc", string(rune('0'+rc)))
	g.write("curl-body", body)
}

func (g *fakeGuest) calls() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "calls"))
	return string(b)
}

// run runs a script from sbin/ with the stand-ins; stdout, stderr, exit code.
func (g *fakeGuest) run(script string, args ...string) (string, string, int) {
	g.t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join(sbinDir, script)}, args...)...)
	cmd.Env = []string{"PATH=" + g.bin + ":/usr/bin:/bin", "FAKE=" + g.dir,
		"VMNET_SECRET_FILE=" + g.secret, "VMNET_APP_ROOTFS=" + g.rootfs,
		"VMNET_CID_DIR=" + g.dir, "VMNET_PODMAN_RUNROOT=" + filepath.Join(g.dir, "storage")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		g.t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestWaitScript(t *testing.T) {
	healthy := func(g *fakeGuest) {
		g.container("db", "1111111111111111", "true", "healthy", 0, "active")
		g.container("api", "2222222222222222", "true", "healthy", 0, "active")
		g.container("proxy", "3333333333333333", "true", "healthy", 0, "active")
	}
	refused := func(g *fakeGuest) { g.curl(7, "curl: (7) Failed to connect to 127.0.0.1 port 8080") }
	cases := []struct {
		name    string
		args    []string
		setup   func(*fakeGuest)
		code    int
		stdout  string
		stderr  string // a part of it
		maxTime time.Duration
	}{
		{name: "ready", args: []string{"30"}, setup: healthy, code: 0,
			stdout: "db: running (container 111111111111)\n" +
				"api: running (container 222222222222)\n" +
				"proxy: running (container 333333333333); GET http://127.0.0.1:8080/ answered from PostgreSQL 15.18, visits 7\n"},
		{name: "no argument", code: 2, stderr: "usage: vmnet-app-wait SECONDS"},
		{name: "not a number", args: []string{"3s"}, code: 2, stderr: "usage"},
		{name: "no secret", args: []string{"30"}, setup: func(g *fakeGuest) { healthy(g); _ = os.Remove(g.secret) },
			code: 1, stderr: "db-password is missing: write the lab's database password there first"},
		// When the proxy does not answer, the reason is the first container
		// that is not right, in the app's order.
		{name: "no rootfs", args: []string{"1"}, setup: func(g *fakeGuest) { healthy(g); refused(g); _ = os.Remove(g.rootfs) },
			code: 1, stderr: "timed out after 1s: the container rootfs"},
		{name: "no db container", args: []string{"1"}, setup: func(g *fakeGuest) {
			healthy(g)
			refused(g)
			_ = os.Remove(filepath.Join(g.dir, "db"))
			g.write("unit-vmnet-app-db.service", "activating\n")
		}, code: 1, stderr: "timed out after 1s: db: no container yet (unit vmnet-app-db.service is activating; see journalctl -u vmnet-app-db.service)"},
		{name: "api unhealthy", args: []string{"2"}, setup: func(g *fakeGuest) {
			healthy(g)
			g.curl(22, "curl: (22) The requested URL returned error: 502")
			g.container("api", "2222222222222222", "true", "unhealthy", 1, "active")
		}, code: 1, stderr: "timed out after 2s: api: running, health check fails (unhealthy; unit vmnet-app-api.service is active"},
		{name: "proxy exited", args: []string{"1"}, setup: func(g *fakeGuest) {
			healthy(g)
			refused(g)
			g.container("proxy", "3333333333333333", "false", "unhealthy", 1, "failed")
		}, code: 1, stderr: "proxy: container is not running (unit vmnet-app-proxy.service is failed"},
		{name: "not the api's JSON", args: []string{"1"}, setup: func(g *fakeGuest) {
			healthy(g)
			g.curl(0, "<html>welcome to nginx</html>")
		}, code: 1, stderr: "proxy: GET http://127.0.0.1:8080/ answered, but not with the api's JSON from PostgreSQL 15: <html>"},
		{name: "proxy refuses", args: []string{"1"}, setup: func(g *fakeGuest) {
			healthy(g)
			refused(g)
		}, code: 1, stderr: "proxy: GET http://127.0.0.1:8080/ failed: curl: (7)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGuest(t)
			if c.setup != nil {
				c.setup(g)
			}
			start := time.Now()
			stdout, stderr, code := g.run("vmnet-app-wait", c.args...)
			if code != c.code || (c.stdout != "" || code == 0) && stdout != c.stdout || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr containing %q", code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
			if code == 1 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("the reason is not one line:\n%s", stderr)
			}
			// While the app answers, podman is asked once (the IDs): each
			// podman call costs the guest a second of CPU under TCG.
			if calls := g.calls(); code == 0 && (strings.Count(calls, "podman ") != 1 || strings.Contains(calls, "healthcheck")) {
				t.Errorf("a ready app cost these podman calls:\n%s", calls)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

func TestHealthScript(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(*fakeGuest)
		restarts []string // units restarted, in order
		checks   []string // containers the script checked itself
		stdout   string   // a part of it
	}{
		// No podman run in a round while podman's timers run the checks:
		// under TCG one took 5 s of the guest's CPU, every 20 s.
		{name: "all healthy", setup: func(g *fakeGuest) {}},
		{name: "api missing, proxy unhealthy", setup: func(g *fakeGuest) {
			_ = os.Remove(filepath.Join(g.dir, "api"))
			_ = os.Remove(filepath.Join(g.dir, "vmnet-app-api.cid"))
			g.container("proxy", "3333", "true", "unhealthy", 1, "active")
		}, restarts: []string{"vmnet-app-proxy.service"}},
		{name: "api unhealthy", setup: func(g *fakeGuest) {
			g.container("api", "2222", "true", "unhealthy", 1, "active")
		}, restarts: []string{"vmnet-app-api.service"}, stdout: "api is unhealthy (3 failed checks in a row): restarting vmnet-app-api.service"},
		{name: "db first", setup: func(g *fakeGuest) {
			g.container("db", "1111", "true", "unhealthy", 1, "active")
			g.container("api", "2222", "true", "unhealthy", 1, "active")
		}, restarts: []string{"vmnet-app-db.service"}, stdout: "api is unhealthy too; waiting for db to come back first"},
		{name: "unit not active", setup: func(g *fakeGuest) {
			g.container("proxy", "3333", "true", "unhealthy", 1, "activating")
		}},
		{name: "container not running", setup: func(g *fakeGuest) {
			g.container("proxy", "3333", "false", "unhealthy", 1, "active")
		}},
		{name: "still starting", setup: func(g *fakeGuest) {
			g.container("db", "1111", "true", "starting", 1, "active")
		}},
		{name: "no podman timer", setup: func(g *fakeGuest) {
			for _, n := range []string{"db", "api", "proxy"} {
				_ = os.Remove(filepath.Join(g.dir, "unit-"+map[string]string{"db": "1111", "api": "2222", "proxy": "3333"}[n]+".timer"))
			}
		}, checks: []string{"db", "api", "proxy"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newFakeGuest(t)
			for name, id := range map[string]string{"db": "1111", "api": "2222", "proxy": "3333"} {
				g.container(name, id, "true", "healthy", 0, "active")
				g.write("unit-"+id+".timer", "active\n") // podman's transient health-check timer
			}
			c.setup(g)
			stdout, stderr, code := g.run("vmnet-app-health")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var restarts, checks []string
			if n := strings.Count("\n"+g.calls(), "\npodman "); n != len(c.checks) {
				t.Errorf("%d podman runs, want %d:\n%s", n, len(c.checks), g.calls())
			}
			for _, line := range strings.Split(g.calls(), "\n") {
				if u, ok := strings.CutPrefix(line, "systemctl restart --no-block "); ok {
					restarts = append(restarts, u)
				}
				if n, ok := strings.CutPrefix(line, "podman healthcheck run "); ok {
					checks = append(checks, n)
				}
			}
			if strings.Join(restarts, ",") != strings.Join(c.restarts, ",") || strings.Join(checks, ",") != strings.Join(c.checks, ",") {
				t.Errorf("restarted %q, checked %q; want %q, %q", restarts, checks, c.restarts, c.checks)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, c.stdout)
			}
		})
	}
}

// fakeNsenter stands in for nsenter and the setpriv and psql it runs in
// the db container: it logs its arguments, keeps what psql would read on
// stdin, and fails as psql does when the state says so.
const fakeNsenter = `#!/bin/sh
echo "nsenter $*" >>"$FAKE/calls"
cat >"$FAKE/psql-stdin"
if [ -f "$FAKE/psql-error" ]; then
	cat "$FAKE/psql-error" >&2
	exit 3
fi
`

func TestRekeyScript(t *testing.T) {
	const id = "4444444444444444aaaa"
	running := func(g *fakeGuest) {
		g.write("vmnet-app-db.cid", id)
		if err := os.MkdirAll(filepath.Join(g.dir, "storage/overlay-containers", id, "userdata"), 0o755); err != nil {
			t.Fatal(err)
		}
		g.write("storage/overlay-containers/"+id+"/userdata/pidfile", "4242")
		if err := os.WriteFile(filepath.Join(g.bin, "nsenter"), []byte(fakeNsenter), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(g.secret, []byte("n3w'pw\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		args   []string
		setup  func(*fakeGuest)
		code   int
		stdout string
		stderr string // a part of it
	}{
		{name: "rekeyed", args: []string{"5"}, setup: running, code: 0,
			stdout: "db: took the new password; GET http://127.0.0.1:8080/ answered from PostgreSQL 15 with it, visits 7\n"},
		{name: "no argument", code: 2, stderr: "usage: vmnet-app-rekey SECONDS"},
		{name: "not a number", args: []string{"1m"}, code: 2, stderr: "usage"},
		{name: "no secret", args: []string{"5"}, setup: func(g *fakeGuest) { running(g); _ = os.Remove(g.secret) },
			code: 1, stderr: "db-password is missing or empty"},
		{name: "no db container", args: []string{"5"}, setup: func(g *fakeGuest) { running(g); _ = os.Remove(filepath.Join(g.dir, "vmnet-app-db.cid")) },
			code: 1, stderr: "no db container: "},
		{name: "container gone", args: []string{"5"}, setup: func(g *fakeGuest) {
			running(g)
			_ = os.Remove(filepath.Join(g.dir, "storage/overlay-containers", id, "userdata/pidfile"))
		}, code: 1, stderr: "db container 444444444444 has no PID in "},
		{name: "psql refuses", args: []string{"5"}, setup: func(g *fakeGuest) {
			running(g)
			g.write("psql-error", "psql: error: connection to server on socket \"/run/postgresql/.s.PGSQL.5432\" failed\n")
		}, code: 1, stderr: "PostgreSQL did not take the new password: psql: error: connection to server"},
		{name: "api does not answer", args: []string{"1"}, setup: func(g *fakeGuest) {
			running(g)
			g.curl(22, "curl: (22) The requested URL returned error: 502")
		}, code: 1, stderr: "timed out after 1s: GET http://127.0.0.1:8080/ after the new password: curl: (22)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGuest(t)
			if c.setup != nil {
				c.setup(g)
			}
			stdout, stderr, code := g.run("vmnet-app-rekey", c.args...)
			if code != c.code || (c.stdout != "" || code == 0) && stdout != c.stdout || !strings.Contains(stderr, c.stderr) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s\nstderr containing %q", code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
			if code == 1 && strings.Count(stderr, "\n") != 1 {
				t.Errorf("the reason is not one line:\n%s", stderr)
			}
			calls := g.calls()
			if strings.Contains(calls, "podman") {
				t.Errorf("the rekey called podman (5 s under TCG):\n%s", calls)
			}
			if strings.Contains(calls, "n3w") {
				t.Errorf("the password is in an argument:\n%s", calls)
			}
			if code != 0 {
				return
			}
			want := "nsenter --target 4242 --mount --uts --ipc --net --pid -- setpriv --reuid=postgres --regid=postgres --init-groups -- psql -X -q -v ON_ERROR_STOP=1 -h /run/postgresql -d postgres\n"
			if calls != want {
				t.Errorf("calls:\n%s\nwant:\n%s", calls, want)
			}
			if sql, _ := os.ReadFile(filepath.Join(g.dir, "psql-stdin")); string(sql) != "ALTER ROLE postgres WITH PASSWORD 'n3w''pw';\n" {
				t.Errorf("psql read %q", sql)
			}
		})
	}
}
