package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// installHint names the Debian packages a sandbox needs.
const installHint = "install them with: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends " +
	"libvirt-daemon-system qemu-system-x86 dnsmasq-base iptables iproute2"

// cleanEnv is the environment of the setup script and the daemons: the
// caller's environment (a test's, a CI job's) has no business in libvirtd.
var cleanEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}

// tools are the programs a sandbox runs, by absolute path.
type tools struct {
	ip, nsenter, unshare, sh        string
	libvirtd, virtlogd, virsh, tail string
}

// findTools looks the programs up in PATH and then in the sbin directories,
// which a non-login root PATH may lack.
func findTools(daemons bool) (tools, error) {
	var t tools
	want := map[string]*string{"ip": &t.ip, "nsenter": &t.nsenter, "unshare": &t.unshare, "sh": &t.sh, "tail": &t.tail}
	if daemons {
		want["libvirtd"], want["virtlogd"], want["virsh"] = &t.libvirtd, &t.virtlogd, &t.virsh
	}
	var missing []string
	for name, dst := range want {
		p, err := lookTool(name)
		if err != nil {
			missing = append(missing, name)
			continue
		}
		*dst = p
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return t, errs.WithHint(fmt.Errorf("sandbox: programs not found: %s", strings.Join(missing, ", ")), installHint)
	}
	return t, nil
}

func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// run runs argv with the clean environment and returns its combined output;
// the error quotes the command and its output.
func run(ctx context.Context, env []string, argv ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	slog.Debug("sandbox: run", "argv", argv)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// enter returns argv prefixed to run inside both namespaces of l.
func (t tools) enter(l layout, argv ...string) []string {
	return append([]string{t.nsenter, "--mount=" + l.mntFile, "--net=" + l.netnsFile, "--"}, argv...)
}

// setupScript runs as the first process of the new mount namespace, already
// inside the sandbox's network namespace. $0 and $1 are the caller's mount and
// network namespace links: the script refuses to touch anything if it is still
// in either, so a mistake can never remount the host's /run or /sys.
const setupScript = `set -eu
# What this script makes (the overlay's upper directory is /etc/libvirt's
# root) has the modes of a host's, whatever the caller's umask.
umask 022
[ "$(readlink /proc/self/ns/mnt)" != "$0" ] || { echo "still in the host's mount namespace" >&2; exit 1; }
[ "$(readlink /proc/self/ns/net)" != "$1" ] || { echo "still in the host's network namespace" >&2; exit 1; }

# fresh DIR: an empty tmpfs over DIR with DIR's directory skeleton, modes and owners.
fresh() {
	d=$1
	[ -d "$d" ] || return 0
	skel=$(cd "$d" && find . -mindepth 1 -maxdepth 3 -type d -printf '%p %m %U %G\n')
	top=$(stat -c 'mode=%a,uid=%u,gid=%g' "$d")
	mount -t tmpfs -o "nosuid,nodev,$top" vmnet-sandbox "$d"
	printf '%s\n' "$skel" | while read -r p m u g; do
		[ -n "$p" ] || continue
		mkdir "$d/$p" && chown "$u:$g" "$d/$p" && chmod "$m" "$d/$p"
	done
}

# Drop the copies of the host's mounts under /run (netns and mount-ns files
# among them: a copy would keep another sandbox's namespace alive), then a
# fresh /run: no host D-Bus, systemd or libvirt sockets in sight.
findmnt -rn -o TARGET | grep -E '^/run(/|$)' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
mount -t tmpfs -o nosuid,nodev,mode=0755 vmnet-sandbox /run
mkdir -m 1777 /run/lock
mkdir -m 0755 /run/libvirt /run/vmnet-sandbox

# sysfs as seen from the sandbox's network namespace (what ip netns exec does).
umount -l /sys
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
# An empty tmpfs where the cgroup hierarchy would be: crun (host containers,
# podman) refuses a /sys/fs/cgroup that is neither tmpfs nor cgroup2.
mount -t tmpfs -o nosuid,nodev,noexec,mode=0755 vmnet-sandbox /sys/fs/cgroup

# The host's libvirt configuration stays visible; writes stay in the sandbox.
mkdir /run/vmnet-sandbox/etc-libvirt /run/vmnet-sandbox/etc-libvirt.work
mount -t overlay -o lowerdir=/etc/libvirt,upperdir=/run/vmnet-sandbox/etc-libvirt,workdir=/run/vmnet-sandbox/etc-libvirt.work vmnet-sandbox /etc/libvirt
for d in /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets /etc/libvirt/nodedev \
	/var/lib/libvirt /var/log/libvirt /var/cache/libvirt; do
	fresh "$d"
done

# vmnet's own state (VM overlays, console logs, seeds) lives and dies with the
# sandbox; the image cache (/var/cache/vmnet) stays shared so images build once.
mount -t tmpfs -o nosuid,nodev,mode=0755 vmnet-sandbox /var/lib/vmnet
`

// create makes the sandbox from nothing: state directory (the ownership
// marker) first, then the network namespace, the mount namespace, the daemons.
func create(ctx context.Context, tl tools, l layout, st *state) error {
	for _, d := range []string{"/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt", "/etc/libvirt"} {
		if _, err := os.Stat(d); err != nil {
			return errs.WithHint(fmt.Errorf("sandbox: %s is missing: libvirt is not installed", d), installHint)
		}
	}
	if err := fsperm.MkdirAll(StateDir, 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := makeStateMountpoint(); err != nil {
		return err
	}
	if err := os.Mkdir(l.dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	if err := os.Mkdir(l.nsDir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("sandbox: %w", err)
	}
	// unshare --mount=FILE needs FILE on a mount that does not propagate:
	// a private bind mount of the directory onto itself.
	if err := unix.Mount(l.nsDir, l.nsDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("sandbox: bind mount %s: %w", l.nsDir, err)
	}
	if err := unix.Mount("", l.nsDir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("sandbox: make %s private: %w", l.nsDir, err)
	}
	if err := os.WriteFile(l.mntFile, nil, 0o600); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if _, err := run(ctx, cleanEnv, tl.ip, "netns", "add", l.netns); err != nil {
		return fmt.Errorf("sandbox %q: create network namespace: %w", l.name, err)
	}
	if _, err := run(ctx, cleanEnv, tl.ip, "-n", l.netns, "link", "set", "lo", "up"); err != nil {
		return fmt.Errorf("sandbox %q: %w", l.name, err)
	}
	hostMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	if _, err := run(ctx, cleanEnv, tl.nsenter, "--net="+l.netnsFile, "--",
		tl.unshare, "--mount="+l.mntFile, "--propagation", "private", "--",
		tl.sh, "-c", setupScript, hostMnt, hostNet); err != nil {
		return fmt.Errorf("sandbox %q: set up mount namespace: %w", l.name, err)
	}
	st.Ready = true
	if err := writeState(l, *st); err != nil {
		return err
	}
	return startDaemons(ctx, tl, l, st)
}

// daemon is one of the two daemons a sandbox runs.
type daemon struct {
	name    string
	pidFile string // inside the sandbox's /run
	pid     *int
}

// startDaemons starts whichever of virtlogd and libvirtd is not running,
// records their pids and waits until libvirtd answers.
func startDaemons(ctx context.Context, tl tools, l layout, st *state) error {
	mntID, err := boundNS(l.mntFile)
	if err != nil {
		return fmt.Errorf("sandbox %q: mount namespace: %w", l.name, err)
	}
	for _, d := range []daemon{
		{"virtlogd", "/run/libvirt/virtlogd.pid", &st.VirtlogdPID},
		{"libvirtd", "/run/libvirt/libvirtd.pid", &st.LibvirtdPID},
	} {
		if inNS(*d.pid, mntID) {
			continue
		}
		bin := tl.virtlogd
		if d.name == "libvirtd" {
			bin = tl.libvirtd
		}
		// Warnings and errors go to a file in the sandbox's /var/log/libvirt, for the
		// error below and for people; -d daemonises once the daemon is set up.
		env := append(cleanEnv[:len(cleanEnv):len(cleanEnv)],
			"LIBVIRT_LOG_OUTPUTS=3:file:/var/log/libvirt/"+d.name+".log")
		// Under umask 022, as systemd starts them (its default UMask=), whatever
		// the caller's: under 077 libvirtd wrote dnsmasq's hosts file 0600, and
		// dnsmasq, reading it as nobody, ignored every DHCP reservation.
		argv := tl.enter(l, tl.sh, "-c", `umask 022 && exec "$0" "$@"`, bin, "-d", "-p", d.pidFile)
		if _, err := run(ctx, env, argv...); err != nil {
			return fmt.Errorf("sandbox %q: start %s: %w%s", l.name, d.name, err, logTail(tl, l, d.name))
		}
		pid, err := readPidFile(ctx, tl, l, d.pidFile, mntID)
		if err != nil {
			return fmt.Errorf("sandbox %q: start %s: %w%s", l.name, d.name, err, logTail(tl, l, d.name))
		}
		*d.pid = pid
		if err := writeState(l, *st); err != nil {
			return err
		}
		slog.Debug("sandbox: started", "name", l.name, "daemon", d.name, "pid", pid)
	}
	if err := waitReady(ctx, tl, l, st.LibvirtdPID, mntID); err != nil {
		return err
	}
	// libvirtd probes QEMU's capabilities (about 3.5 s under TCG here) at the
	// first domain it defines, and caches them on disk; a real host pays that
	// once. Pay it now, so the first vm up in a sandbox is as fast as any.
	if _, err := run(ctx, cleanEnv, tl.enter(l, tl.virsh, "-q", "-c", "qemu:///system", "domcapabilities", "--virttype", "qemu", "--arch", "x86_64")...); err != nil {
		slog.Debug("sandbox: warming QEMU capabilities failed", "name", l.name, "err", err)
	}
	return nil
}

// readPidFile reads a daemon's pid file inside the mount namespace and
// accepts the pid only if that process lives in the namespace.
func readPidFile(ctx context.Context, tl tools, l layout, path string, mntID nsID) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := run(ctx, cleanEnv, tl.nsenter, "--mount="+l.mntFile, "--", tl.tail, "-n", "1", path)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
		if err == nil && perr == nil && inNS(pid, mntID) {
			return pid, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no live daemon behind pid file %s (read %q)", path, strings.TrimSpace(string(out)))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// dialLibvirt connects to the libvirtd socket of the sandbox whose libvirtd
// is pid, through that process's root: no need to enter the mount namespace.
func dialLibvirt(pid int, timeout time.Duration) error {
	c, err := net.DialTimeout("unix", fmt.Sprintf("/proc/%d/root/run/libvirt/libvirt-sock", pid), timeout)
	if err != nil {
		return err
	}
	return c.Close()
}

// waitReady waits (at most readyTimeout) until libvirtd accepts a
// connection and answers a client: the socket listens before the drivers
// are loaded, and libvirtd accepts clients only after.
func waitReady(ctx context.Context, tl tools, l layout, pid int, mntID nsID) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var last error
	for {
		if !inNS(pid, mntID) {
			return fmt.Errorf("sandbox %q: libvirtd (pid %d) exited while starting%s", l.name, pid, logTail(tl, l, "libvirtd"))
		}
		if last = dialLibvirt(pid, time.Second); last == nil {
			_, last = run(ctx, cleanEnv, tl.enter(l, tl.virsh, "-q", "-c", "qemu:///system", "uri")...)
			if last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox %q: libvirtd (pid %d) did not answer on /run/libvirt/libvirt-sock within %s: %v%s",
				l.name, pid, readyTimeout, last, logTail(tl, l, "libvirtd"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of a daemon's log inside the sandbox,
// formatted to end an error message, or "" when there is none.
func logTail(tl tools, l layout, daemon string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tl.nsenter, "--mount="+l.mntFile, "--", tl.tail, "-n", "15", "/var/log/libvirt/"+daemon+".log")
	cmd.Env = cleanEnv
	out, err := cmd.Output()
	out = bytes.TrimSpace(out)
	if err != nil || len(out) == 0 {
		return ""
	}
	return "\nlast lines of " + daemon + ".log:\n" + string(out)
}

// teardown removes everything of sandbox l, whatever state it is in:
// processes, mounts, the network namespace, the state directory.
func teardown(ctx context.Context, l layout) error {
	netID, _ := boundNS(l.netnsFile)
	mntID, _ := boundNS(l.mntFile)
	st, _ := readState(l)
	if err := stopAll(ctx, netID, mntID, st); err != nil {
		return err
	}
	if err := unmountUnder(l.dir); err != nil {
		return err
	}
	// What ip netns delete does; done here so that a half-made namespace
	// file (not mounted) goes too.
	if err := unix.Unmount(l.netnsFile, unix.MNT_DETACH); err != nil &&
		!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete network namespace %s: %w", l.netns, err)
	}
	if err := os.Remove(l.netnsFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete network namespace %s: %w", l.netns, err)
	}
	// unmountUnder has just proved that nothing is mounted below l.dir, so
	// RemoveAll cannot wander into another filesystem.
	if err := os.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("remove %s: %w", l.dir, err)
	}
	return nil
}
