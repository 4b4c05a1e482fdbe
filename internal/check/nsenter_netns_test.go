package check

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ctrProcess starts a stand-in container in the netns lab's guest
// namespace: a process in its own mount, UTS, IPC and PID namespaces
// whose /etc/hosts (a bind mount in its mount namespace only) names
// hchk-db 10.89.0.2 and whose hostname is hchkctr. It returns the PID
// of that process and the first line of its cgroup file (what
// nsenterScript looks for the container ID in).
func ctrProcess(t *testing.T, l *netnsLab) (int, string) {
	t.Helper()
	requireRoot(t, "unshare", "nsenter", "getent", "hostname", "mount")
	hosts := filepath.Join(t.TempDir(), "hosts")
	must(t, os.WriteFile(hosts, []byte("10.89.0.2 hchk-db\n"), 0o644))
	cmd := exec.Command("ip", "netns", "exec", l.guestNS, "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--mount-proc",
		"sh", "-c", `mount --bind "$1" /etc/hosts && hostname hchkctr && exec sleep 120`, "hchkctr", hosts)
	must(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// ip execs unshare, which forks the container's first process.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		kids, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
		f := strings.Fields(string(kids))
		if len(f) == 0 {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + f[0] + "/comm")
		if strings.TrimSpace(string(comm)) != "sleep" {
			continue // still setting up its mounts
		}
		cg, err := os.ReadFile("/proc/" + f[0] + "/cgroup")
		must(t, err)
		pid, _ := strconv.Atoi(f[0])
		line, _, _ := strings.Cut(string(cg), "\n")
		return pid, line
	}
	t.Fatal("the stand-in container did not start within 10s")
	return 0, ""
}

// podmanless is the netns lab's host namespace as a guest without podman:
// a podman exec answers exit 125, so a fallback shows in the result.
type podmanless struct{ nsGuest }

func (g podmanless) Exec(ctx context.Context, argv []string, timeout time.Duration) (Output, error) {
	if argv[0] == "podman" {
		return Output{Code: 125, Stderr: "Error: podman is not here"}, nil
	}
	return g.nsGuest.Exec(ctx, argv, timeout)
}

// The nsenter script for real: a probe run through it from another
// namespace is in the container's network namespace, sees its hostname
// and resolves names through its own /etc/hosts (as getent resolves
// through a container's resolv.conf); given a PID that is not the
// container's, it refuses and the check goes to podman exec.
func TestNsenterIntoContainerInNetns(t *testing.T) {
	l := newNetnsLab(t)
	pid, cgroup := ctrProcess(t, l)
	guest := podmanless{nsGuest{ns: l.hostNS}}
	ctr := Container{Name: "hchkctr", State: "running", ID: cgroup, PID: pid}
	r := &runner{guest: guest, t: Target{Name: "h1", Agent: true, Containers: []Container{ctr}}, opt: Options{}.withDefaults(Target{Agent: true}), controls: newControls()}
	out, via, _, err := r.containerExec(context.Background(), "hchkctr", []string{"sh", "-c", "hostname; readlink /proc/self/ns/net; getent hosts hchk-db"})
	wantNet, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil || via != viaNsenter || out.Code != 0 {
		t.Fatalf("via %s: exit %d, %v: %s %s", via, out.Code, err, out.Stdout, out.Stderr)
	}
	if lines := strings.Split(strings.TrimSpace(out.Stdout), "\n"); len(lines) != 3 || lines[0] != "hchkctr" || lines[1] != wantNet || !strings.HasPrefix(lines[2], "10.89.0.2") {
		t.Errorf("inside the container: %q, want hchkctr, %s and hchk-db's address from its own /etc/hosts", lines, wantNet)
	}

	checks := []Check{{ID: "dns:hchkctr->hchk-db", Method: MethodDNS, From: Place{Kind: OnContainer, Container: "hchkctr"},
		Want: WantResolves, Name: "hchk-db", To: a("10.89.0.2"), NIC: -1}}
	if res := Run(context.Background(), nil, guest, r.t, checks, Options{}); !res[0].Pass {
		t.Errorf("%s through nsenter: %s", res[0].ID, res[0].Actual)
	}
	r.t.Containers[0].ID = "not-this-container"
	res := Run(context.Background(), nil, guest, r.t, checks, Options{})
	if res[0].Pass || !strings.HasPrefix(res[0].Actual, "podman exec failed (exit 125)") {
		t.Errorf("with a PID that is not the container's: pass %v, %q; want podman exec tried", res[0].Pass, res[0].Actual)
	}
}
