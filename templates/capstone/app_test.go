package capstone

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	postgresBin = "/usr/lib/postgresql/15/bin"
	systemPy    = "/usr/bin/python3"
	// PATH for the processes the test starts: the system's tools, not a
	// developer's pyenv shims.
	systemPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// proc is a process the test started in a netns; stop ends it by pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// start runs args in netns ns with env; `ip netns exec` execs the command,
// so the pid is the program's own (postgres, nginx's master, Python).
func start(t *testing.T, ns, name string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append([]string{systemPath, "LANG=C.UTF-8"}, env...)
	cmd.Dir = os.TempDir()
	p := &proc{name: name, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(t, syscall.SIGTERM, 15*time.Second) })
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to d, then kills; it reports whether the
// process ended by itself in time.
func (p *proc) stop(t *testing.T, sig syscall.Signal, d time.Duration) bool {
	if p.exited() {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		t.Logf("%s did not stop on %v within %s: killing pid %d", p.name, sig, d, p.cmd.Process.Pid)
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// get fetches url from inside ns with curl: body and status code.
func get(t *testing.T, ns, url string) (string, int) {
	t.Helper()
	out, err := cmdContext(t, 15*time.Second, "ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", url)
	if err != nil {
		return out, 0
	}
	i := strings.LastIndex(out, "\n")
	code, _ := strconv.Atoi(out[i+1:])
	return out[:i], code
}

type apiAnswer struct {
	Service string `json:"service"`
	DB      struct {
		Version string `json:"version"`
		Now     string `json:"now"`
		Visits  int    `json:"visits"`
	} `json:"db"`
	Host  string `json:"host"`
	Error string `json:"error"`
}

// visit does GET / through the proxy and checks the contract's JSON.
func visit(t *testing.T, ns string, wantVisits int) {
	t.Helper()
	body, code := get(t, ns, "http://127.0.0.1:8080/")
	if code != 200 {
		t.Fatalf("GET / through nginx: %d %s", code, body)
	}
	var a apiAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatalf("GET /: not JSON (%v): %s", err, body)
	}
	host, _ := os.Hostname()
	if a.Service != "api" || a.Host != host || !strings.HasPrefix(a.DB.Version, "PostgreSQL 15") || a.DB.Visits != wantVisits {
		t.Errorf("GET / = %+v; want service api, host %q, a PostgreSQL 15 version, visits %d", a, host, wantVisits)
	}
	if _, err := time.Parse(time.RFC3339Nano, a.DB.Now); err != nil {
		t.Errorf("db.now %q is not a timestamp: %v", a.DB.Now, err)
	}
}

// TestApp runs the capstone's app from guest/ with the real PostgreSQL 15,
// Flask and nginx in a throwaway netns: db-entrypoint.sh (initdb with the
// secret file, then postgres as user postgres), api.py and
// proxy-entrypoint.sh with nginx.conf. The only change is the host names:
// db and api are 127.0.0.1 here (aardvark-dns serves them in the guest).
func TestApp(t *testing.T) {
	needRoot(t)
	needTools(t, "ip", "curl", "setpriv", postgresBin+"/initdb", "nginx", systemPy)
	if out, err := exec.Command(systemPy, "-c", "import flask, psycopg2").CombinedOutput(); err != nil {
		t.Skipf("python3-flask and python3-psycopg2 are not installed: %s", out)
	}
	if _, err := exec.Command("id", "postgres").Output(); err != nil {
		t.Skip("no user postgres (package postgresql-15)")
	}
	ns := newNetns(t, "app")

	// Not t.TempDir: postgres (the user) must reach the data directory.
	base, err := os.MkdirTemp("", "vmnet-capstone-app-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	password := randomHex(t) + "'\\\"$x" // quotes and a dollar must survive SQL and shell
	secretFile := filepath.Join(base, "db-password")
	if err := os.WriteFile(secretFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbEnv := []string{"PGDATA=" + filepath.Join(base, "pgdata"), "PGSOCKETDIR=" + filepath.Join(base, "sock"), "DB_PASSWORD_FILE=" + secretFile}
	entrypoint, _ := filepath.Abs(filepath.Join(appDir, "db-entrypoint.sh"))
	var started []*proc // for the log at the end
	defer func() {
		if t.Failed() || testing.Verbose() {
			for _, p := range started {
				t.Logf("%s (pid %d):\n%s", p.name, p.cmd.Process.Pid, p.out.String())
			}
		}
	}()
	startDB := func() *proc {
		db := start(t, ns, "db", dbEnv, "/bin/sh", entrypoint)
		started = append(started, db)
		if err := waitFor(60*time.Second, func() error {
			if db.exited() {
				return fmt.Errorf("the db entrypoint exited")
			}
			_, err := cmdContext(t, 5*time.Second, "ip", "netns", "exec", ns, postgresBin+"/pg_isready", "-q", "-h", "127.0.0.1")
			return err
		}); err != nil {
			t.Fatalf("PostgreSQL did not come up: %v\n%s", err, db.out.String())
		}
		return db
	}
	db := startDB()

	apiPath, _ := filepath.Abs(filepath.Join(appDir, "api.py"))
	api := start(t, ns, "api", []string{"DB_HOST=127.0.0.1", "DB_PASSWORD_FILE=" + secretFile}, systemPy, apiPath)
	started = append(started, api)
	if err := waitFor(30*time.Second, func() error {
		if _, code := get(t, ns, "http://127.0.0.1:5000/healthz"); code != 200 {
			return fmt.Errorf("healthz %d", code)
		}
		return nil
	}); err != nil {
		t.Fatalf("the api did not come up: %v\n%s\n%s", err, api.out.String(), db.out.String())
	}

	// nginx.conf with the host name api changed, and a resolv.conf like
	// podman's; the entrypoint turns it into the resolver line.
	conf, err := os.ReadFile(filepath.Join(appDir, "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "http://api:5000") {
		t.Fatal("nginx.conf does not proxy to http://api:5000")
	}
	confFile := filepath.Join(base, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(strings.ReplaceAll(string(conf), "http://api:5000", "http://127.0.0.1:5000")), 0o644); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(base, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("search dns.podman\nnameserver 10.89.0.1\nnameserver fd00::1%eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(base, "proxy")
	proxyPath, _ := filepath.Abs(filepath.Join(appDir, "proxy-entrypoint.sh"))
	proxy := start(t, ns, "proxy", []string{"NGINX_CONF=" + confFile, "RESOLV_CONF=" + resolv, "VMNET_PROXY_RUN=" + runDir}, "/bin/sh", proxyPath)
	started = append(started, proxy)
	if err := waitFor(30*time.Second, func() error {
		if body, code := get(t, ns, "http://127.0.0.1:8080/nginx-health"); code != 200 || strings.TrimSpace(body) != "ok" {
			return fmt.Errorf("nginx-health %d %q", code, body)
		}
		return nil
	}); err != nil {
		t.Fatalf("nginx did not come up: %v\n%s", err, proxy.out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(runDir, "resolver.conf")); string(b) != "resolver 10.89.0.1 valid=5s ipv6=off;\n" {
		// Only aardvark-dns, listed first: the guest's upstream servers do not know "api".
		t.Errorf("resolver.conf = %q", b)
	}

	visit(t, ns, 1)
	visit(t, ns, 2)
	for _, url := range []string{"http://127.0.0.1:8080/healthz", "http://127.0.0.1:5000/healthz"} {
		if body, code := get(t, ns, url); code != 200 || strings.Join(strings.Fields(body), "") != `{"db":true,"status":"ok"}` {
			t.Errorf("GET %s = %d %s", url, code, body)
		}
	}
	// SCRAM: the right password works (above), a wrong one does not.
	wrong := filepath.Join(base, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cmdContext(t, 20*time.Second, "ip", "netns", "exec", ns, "env", "PYTHONDONTWRITEBYTECODE=1",
		"DB_HOST=127.0.0.1", "DB_PASSWORD_FILE="+wrong, systemPy, "-c",
		"import sys; sys.path.insert(0, sys.argv[1]); import api; api.connect()", filepath.Dir(apiPath))
	if err == nil || !strings.Contains(out, "password authentication failed") {
		t.Errorf("a wrong password: %v\n%s", err, out)
	}

	// db down: the api says so (503) through nginx, and nginx stays healthy.
	if !db.stop(t, syscall.SIGINT, 30*time.Second) {
		t.Error("postgres did not stop on SIGINT (podman's --stop-signal)")
	}
	for _, url := range []string{"http://127.0.0.1:8080/healthz", "http://127.0.0.1:8080/"} {
		body, code := get(t, ns, url)
		if code != 503 || !strings.Contains(body, "database unavailable") && !strings.Contains(body, `"db":false`) {
			t.Errorf("with db down, GET %s = %d %s; want 503 from the api", url, code, body)
		}
	}
	if _, code := get(t, ns, "http://127.0.0.1:8080/nginx-health"); code != 200 {
		t.Errorf("with db down, /nginx-health = %d, want 200", code)
	}

	// db back with a new secret: the entrypoint sets the new password on
	// the existing data, the api reads the file per connection, the visits
	// go on from the same table.
	password = randomHex(t) + "'q\"" // no newline at the end this time
	if err := os.WriteFile(secretFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	db = startDB()
	visit(t, ns, 3)
	if !strings.Contains(db.out.String(), "using the existing data") {
		t.Errorf("second start did not reuse the data directory:\n%s", db.out.String())
	}

	// The secret is nowhere but in its file: not in any process's command
	// line or environment, not in any output.
	checkNoSecret(t, password, []*proc{db, api, proxy})

	// api down: nginx answers its own JSON 502; SIGTERM ends the api
	// promptly although it is PID 1 in its container.
	if !api.stop(t, syscall.SIGTERM, 10*time.Second) {
		t.Error("api.py did not stop on SIGTERM")
	}
	if body, code := get(t, ns, "http://127.0.0.1:8080/"); code != 502 || !strings.Contains(body, `"service": "proxy"`) {
		t.Errorf("with the api down, GET / = %d %s; want nginx's 502 JSON", code, body)
	}
	if !proxy.stop(t, syscall.SIGTERM, 10*time.Second) {
		t.Error("nginx did not stop on SIGTERM")
	}
	if !db.stop(t, syscall.SIGINT, 30*time.Second) {
		t.Error("postgres did not stop on SIGINT")
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// checkNoSecret looks for the password in every process's command line
// (any process could have been handed it) and in the environment and output
// of the test's own processes and their children.
func checkNoSecret(t *testing.T, password string, procs []*proc) {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), password) {
			t.Errorf("pid %d has the password on its command line: %q", pid, b)
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && strings.Contains(string(b), password) {
			t.Errorf("pid %d has the password in its environment", pid)
		}
	}
	for _, p := range procs {
		if strings.Contains(p.out.String(), password) {
			t.Errorf("%s printed the password", p.name)
		}
	}
}

// TestDBInitOnly runs db-entrypoint.sh --init-only as the image build does
// (vmnet-app-db-prepare): it initialises the data directory and exits
// without starting PostgreSQL, a second run leaves the data as it is, and
// an unknown argument is a usage error. The first start on prepared data
// (the password set from the secret) is TestApp's restart with a new secret.
func TestDBInitOnly(t *testing.T) {
	needRoot(t)
	needTools(t, "setpriv", postgresBin+"/initdb")
	if _, err := exec.Command("id", "postgres").Output(); err != nil {
		t.Skip("no user postgres (package postgresql-15)")
	}
	base, err := os.MkdirTemp("", "vmnet-capstone-init-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(base, "password")
	if err := os.WriteFile(secret, []byte(randomHex(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "data")
	entrypoint, _ := filepath.Abs(filepath.Join(appDir, "db-entrypoint.sh"))
	run := func(args ...string) (string, error) {
		cmd := exec.Command("/bin/sh", append([]string{entrypoint}, args...)...)
		cmd.Env = append(os.Environ(), "PGDATA="+data, "PGSOCKETDIR="+filepath.Join(base, "sock"), "DB_PASSWORD_FILE="+secret)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("--init-only"); err != nil || !strings.Contains(out, "first start") {
		t.Fatalf("--init-only: %v\n%s", err, out)
	}
	for _, f := range []string{"PG_VERSION", "pg_hba.conf"} {
		if _, err := os.Stat(filepath.Join(data, f)); err != nil {
			t.Errorf("after --init-only: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
		t.Error("--init-only left PostgreSQL running (postmaster.pid exists)")
	}
	if out, err := run("--init-only"); err != nil || !strings.Contains(out, "initialised already") {
		t.Errorf("second --init-only: %v\n%s", err, out)
	}
	if out, err := run("--bogus"); err == nil || !strings.Contains(out, "usage") {
		t.Errorf("an unknown argument: %v\n%s", err, out)
	}
}
