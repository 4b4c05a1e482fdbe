package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// A check from a container runs its probe inside the container's
// namespaces. podman exec does that, but under TCG each one costs seconds
// (podman starts, takes its locks, then conmon and crun make an exec
// session); nsenter into the namespaces of the container's init process,
// whose PID Discover already read from podman, takes a fraction of a
// second. It enters the network namespace (the container's address,
// routes and firewall path), the mount namespace with the container's root
// and working directory (its own /etc/resolv.conf, pointing at
// aardvark-dns, its /etc/hosts and its tools) and its UTS, IPC and PID
// namespaces, so a probe sees what the container's own processes see. It
// runs as root with root's capabilities rather than as the container's
// user: a probe may then send what that user could not (a raw ICMP
// socket), which the checks want, as they test the path, not the
// container's privileges.
//
// nsenterScript makes sure the PID is still that container's before it
// enters: a container that stopped or restarted since Discover has no
// process with that PID in its cgroup (podman puts each container in a
// cgroup named after its full ID; the script reads the first line of the
// PID's cgroup file with the shell's read, not grep: under TCG, with the
// app's health checks running, every process the probe starts costs a
// tenth of a second or more). When nsenter is missing or the PID is
// not the container's, the script says so with a marker on stderr and an
// exit status of its own, and the check runs with podman exec instead,
// whose failure (exit 125 for a stopped container) diagnosis reads.
const nsenterScript = `p=$1 id=$2; shift 2
if ! command -v nsenter >/dev/null 2>&1; then echo "` + nsMarker + ` no nsenter" >&2; exit ` + nsNoNsenter + `; fi
g=; read -r g 2>/dev/null <"/proc/$p/cgroup"
case $g in *"$id"*) ;; *) echo "` + nsMarker + ` pid $p is not container $id" >&2; exit ` + nsNotContainer + `;; esac
exec nsenter --target "$p" --net --mount --uts --ipc --pid --root --wd -- "$@"`

// nsenterScript's own outcomes: its marker and exit statuses, which no
// probe uses (probes exit 0-5, 124, 126, 127 or 128+signal).
const (
	nsMarker       = "@@vmnet-nsenter@@"
	nsNoNsenter    = "119"
	nsNotContainer = "118"
)

// viaPodman and viaNsenter say how a container check's probe ran, for its
// messages.
const (
	viaPodman  = "podman exec"
	viaNsenter = "nsenter"
)

// nsenterArgv is the guest command that runs argv in container c's
// namespaces, or nil when c has no known init PID or ID (podman did not
// say, or it does not run).
func nsenterArgv(c Container, argv []string) []string {
	if !c.Running() || c.PID <= 0 || c.ID == "" {
		return nil
	}
	return append([]string{"sh", "-c", nsenterScript, "vmnet-nsenter", strconv.Itoa(c.PID), c.ID}, argv...)
}

// podmanExecArgv is the guest command that runs argv in container name
// with podman exec.
func podmanExecArgv(name string, argv []string) []string {
	return append([]string{"podman", "exec", name}, argv...)
}

// nsenterRefused reports whether nsenterScript did not run the probe (it
// found no nsenter, or the PID no longer the container's), and whether
// that means the guest has no nsenter at all. nsenter failing to enter a
// namespace (the process ended between the script's check and the
// entry) exits 1 with its own name first on stderr, which a probe's exit
// 1 ("no reply") never has.
func nsenterRefused(o Output) (refused, noNsenter bool) {
	marked := strings.Contains(o.Stderr, nsMarker)
	switch {
	case marked && strconv.Itoa(o.Code) == nsNoNsenter:
		return true, true
	case marked && strconv.Itoa(o.Code) == nsNotContainer:
		return true, false
	case o.Code == 1 && strings.HasPrefix(o.Stderr, "nsenter: "):
		return true, false
	}
	return false, false
}

// containerExec runs argv in container name: with nsenter when its PID
// is known and the guest has nsenter, else (or when nsenter refuses) with
// podman exec. It returns what ran last and how.
func (r *runner) containerExec(ctx context.Context, name string, argv []string) (Output, string, []string, error) {
	if c, ok := r.container(name); ok && !r.noNsenter.Load() {
		if ns := nsenterArgv(c, argv); ns != nil {
			out, err := r.guest.Exec(ctx, ns, r.opt.ExecTimeout)
			if err != nil {
				return out, viaNsenter, ns, err
			}
			refused, missing := nsenterRefused(out)
			if !refused {
				return out, viaNsenter, ns, nil
			}
			if missing {
				r.noNsenter.Store(true) // no use trying again in this guest
			}
		}
	}
	pe := podmanExecArgv(name, argv)
	out, err := r.guest.Exec(ctx, pe, r.opt.ExecTimeout)
	return out, viaPodman, pe, err
}

// container is the target's container name, as Discover found it.
func (r *runner) container(name string) (Container, bool) {
	for _, c := range r.t.Containers {
		if c.Name == name {
			return c, true
		}
	}
	return Container{}, false
}

// execFailed is the Actual of a probe that could not run in its place
// (exit 125 or more: podman's own failure, or a tool missing there).
func execFailed(o observation) string {
	return fmt.Sprintf("%s failed (exit %d): %s", o.ran(), o.code, firstLine(o.stderr+o.stdout))
}

// ran names what ran the probe: podman exec or nsenter for a container,
// the guest's shell otherwise.
func (o observation) ran() string {
	if o.via == "" {
		return "the guest's command"
	}
	return o.via
}
