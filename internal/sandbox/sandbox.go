// Package sandbox makes a private "host" for tests and demos: a network
// namespace with no link or route to the outside, plus a persistent mount
// namespace with its own libvirtd and virtlogd and their own state. Commands
// run inside it see an ordinary host with an empty libvirt.
//
// Debian packages it needs (install with
// DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ...):
//
//	libvirt-daemon-system qemu-system-x86 dnsmasq-base iptables iproute2
//
// libvirt-daemon-system pulls in libvirt-daemon, libvirt-daemon-driver-qemu
// and libvirt-clients (virsh). unshare, nsenter, mount, umount, findmnt (util-linux,
// mount), find (findutils) and sh are essential packages and always present.
//
// Layout of a sandbox NAME:
//
//	/run/netns/vmnet-NAME            network namespace (ip netns add), only lo, up
//	/run/vmnet/sandbox/NAME/         ownership marker and state.json (daemon pids)
//	/run/vmnet/sandbox/NAME/ns/      private bind mount of itself
//	/run/vmnet/sandbox/NAME/ns/mnt   the mount namespace (unshare --mount=FILE)
//
// Inside the mount namespace: a fresh tmpfs on /run (so the host's D-Bus,
// systemd, netns and libvirt sockets are out of sight: the sandbox's libvirtd
// cannot reach a firewalld that would write rules in the host's namespace),
// sysfs remounted from inside the network namespace (so libvirt's writes under
// /sys/class/net reach the sandbox's links, never the host's), an overlay on
// /etc/libvirt (host configuration visible, writes kept in the sandbox) and
// empty tmpfs copies of /etc/libvirt/{qemu,storage,secrets,nodedev},
// /var/lib/libvirt (images included), /var/log/libvirt and /var/cache/libvirt
// with the host's directory skeleton, modes and owners.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
	"vmnet/internal/valid"
)

// StateDir holds one directory per sandbox; its existence marks the sandbox as vmnet's.
const StateDir = "/run/vmnet/sandbox"

// EnvVar is set to the sandbox name in the environment of commands run by Exec.
const EnvVar = "VMNET_SANDBOX"

// MaxNameLen is the longest sandbox name accepted.
const MaxNameLen = valid.MaxSandboxName

const (
	netnsDir    = "/run/netns"
	netnsPrefix = "vmnet-"
	// readyTimeout bounds the wait for a new libvirtd to answer.
	readyTimeout = 30 * time.Second
)

// ErrNotFound is matched (errors.Is) by the error for a sandbox that does not exist.
var ErrNotFound = errors.New("sandbox does not exist")

// Change says what Up did.
type Change string

// What Up did.
const (
	Created   Change = "created"   // made from nothing
	Recreated Change = "recreated" // a half-made sandbox was removed and made again
	Repaired  Change = "repaired"  // namespaces were intact, missing daemons were started
	Unchanged Change = "unchanged" // already healthy
)

// Result describes a sandbox after Up.
type Result struct {
	Name        string `json:"name"`
	Change      Change `json:"change"`
	NetNS       string `json:"netns"`        // e.g. "vmnet-lab", for ip -n
	MountNS     string `json:"mount_ns"`     // the file that holds the mount namespace
	LibvirtdPID int    `json:"libvirtd_pid"` // pid of the sandbox's libvirtd
	VirtlogdPID int    `json:"virtlogd_pid"` // pid of the sandbox's virtlogd
}

// Info describes one sandbox for List.
type Info struct {
	Name          string `json:"name"`
	State         string `json:"state"` // running, degraded (a daemon is down) or broken (a namespace is missing)
	NetNS         string `json:"netns"`
	NetNSPresent  bool   `json:"netns_present"`
	MountNSBound  bool   `json:"mount_ns_present"`
	LibvirtdPID   int    `json:"libvirtd_pid"`
	LibvirtdAlive bool   `json:"libvirtd_alive"`
	VirtlogdPID   int    `json:"virtlogd_pid"`
	VirtlogdAlive bool   `json:"virtlogd_alive"`
}

// Stdio is what Exec connects to the command. Nil fields mean /dev/null.
// *os.File values are passed to the command as they are (a terminal stays a terminal).
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ValidateName checks a sandbox name: 1 to MaxNameLen characters from a-z, 0-9
// and '-', starting and ending with a letter or digit (valid.SandboxName). A
// refusal is an errs.FieldError, so it matches errs.ErrInvalid (exit 2).
func ValidateName(name string) error { return valid.SandboxName(name) }

// layout is where a sandbox's pieces live.
type layout struct {
	name      string
	dir       string // StateDir/NAME
	nsDir     string // StateDir/NAME/ns, a private bind mount
	mntFile   string // StateDir/NAME/ns/mnt
	stateFile string // StateDir/NAME/state.json
	netns     string // vmnet-NAME
	netnsFile string // /run/netns/vmnet-NAME
}

func layoutFor(name string) layout {
	dir := filepath.Join(StateDir, name)
	return layout{
		name:      name,
		dir:       dir,
		nsDir:     filepath.Join(dir, "ns"),
		mntFile:   filepath.Join(dir, "ns", "mnt"),
		stateFile: filepath.Join(dir, "state.json"),
		netns:     netnsPrefix + name,
		netnsFile: filepath.Join(netnsDir, netnsPrefix+name),
	}
}

// state is what StateDir/NAME/state.json records.
type state struct {
	// Ready is true once every mount inside the mount namespace is in place.
	Ready       bool `json:"ready"`
	LibvirtdPID int  `json:"libvirtd_pid,omitempty"`
	VirtlogdPID int  `json:"virtlogd_pid,omitempty"`
}

func readState(l layout) (state, error) {
	var st state
	b, err := os.ReadFile(l.stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		// A torn write from a killed run: treat as not ready, so Up remakes it.
		slog.Debug("sandbox: unreadable state file", "file", l.stateFile, "err", err)
		return state{}, nil
	}
	return st, nil
}

func writeState(l layout, st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := fsperm.WriteFileAtomic(l.stateFile, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write sandbox state: %w", err)
	}
	return nil
}

// status is what inspect found.
type status struct {
	dirExists     bool
	netnsExists   bool // the file /run/netns/vmnet-NAME exists
	netID         nsID // zero unless the netns file is a bound namespace
	mntID         nsID // zero unless the mount-ns file is a bound namespace
	st            state
	libvirtdAlive bool
	virtlogdAlive bool
	socketOK      bool
}

func (s status) nsOK() bool { return s.dirExists && s.netID.valid() && s.mntID.valid() }

func (s status) healthy() bool {
	return s.nsOK() && s.st.Ready && s.libvirtdAlive && s.virtlogdAlive && s.socketOK
}

func inspect(l layout) (status, error) {
	var s status
	if _, err := os.Stat(l.dir); err == nil {
		s.dirExists = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return s, err
	}
	if _, err := os.Lstat(l.netnsFile); err == nil {
		s.netnsExists = true
		s.netID, _ = boundNS(l.netnsFile)
	}
	if !s.dirExists {
		return s, nil
	}
	s.mntID, _ = boundNS(l.mntFile)
	st, err := readState(l)
	if err != nil {
		return s, err
	}
	s.st = st
	if s.mntID.valid() {
		s.libvirtdAlive = inNS(st.LibvirtdPID, s.mntID)
		s.virtlogdAlive = inNS(st.VirtlogdPID, s.mntID)
		if s.libvirtdAlive {
			s.socketOK = dialLibvirt(st.LibvirtdPID, time.Second) == nil
		}
	}
	return s, nil
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errs.WithHint(errors.New("sandbox: root privileges are required (namespaces, mounts)"),
			"run vmnet as root (for example with sudo)")
	}
	return nil
}

// Up makes sandbox name, or repairs it, and returns when its libvirtd answers.
// A second Up of a healthy sandbox changes nothing (Change Unchanged).
func Up(ctx context.Context, name string) (Result, error) {
	if err := ValidateName(name); err != nil {
		return Result{}, err
	}
	if err := requireRoot(); err != nil {
		return Result{}, err
	}
	tl, err := findTools(true)
	if err != nil {
		return Result{}, err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()

	l := layoutFor(name)
	s, err := inspect(l)
	if err != nil {
		return Result{}, fmt.Errorf("inspect sandbox %q: %w", name, err)
	}
	res := Result{Name: name, NetNS: l.netns, MountNS: l.mntFile}
	switch {
	case !s.dirExists && s.netnsExists:
		return res, errs.WithHint(fmt.Errorf("sandbox %q: network namespace %q exists but was not made by vmnet", name, l.netns),
			fmt.Sprintf("choose another sandbox name, or delete that namespace with: ip netns delete %s", l.netns))
	case s.healthy():
		res.Change = Unchanged
	case s.nsOK() && s.st.Ready:
		if err := startDaemons(ctx, tl, l, &s.st); err != nil {
			return res, err
		}
		res.Change = Repaired
	default:
		res.Change = Created
		if s.dirExists {
			slog.Debug("sandbox: removing a half-made sandbox before making it again", "name", name)
			if err := teardown(ctx, l); err != nil {
				return res, fmt.Errorf("clean half-made sandbox %q: %w", name, err)
			}
			res.Change = Recreated
		}
		s.st = state{}
		if err := create(ctx, tl, l, &s.st); err != nil {
			if cerr := teardown(context.WithoutCancel(ctx), l); cerr != nil {
				err = fmt.Errorf("%w (and cleaning up failed too: %v)", err, cerr)
			}
			// create may have made /var/lib/vmnet: a failed up leaves the
			// host as it was (a later down of this name finds no sandbox).
			removeStateMountpoint()
			return res, err
		}
	}
	res.LibvirtdPID, res.VirtlogdPID = s.st.LibvirtdPID, s.st.VirtlogdPID
	return res, nil
}

// Down stops everything running in sandbox name (its libvirtd first, then by
// pid every process in its namespaces: dnsmasq, QEMU, virtlogd, commands left
// by Exec), removes both namespaces and its state directory. Down of a sandbox
// that does not exist succeeds. A namespace vmnet-NAME without vmnet's state
// directory is not vmnet's and is left alone.
func Down(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := requireRoot(); err != nil {
		return err
	}
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	l := layoutFor(name)
	if _, err := os.Stat(l.dir); errors.Is(err, os.ErrNotExist) {
		// Nothing of this sandbox is left, but a mount point a sandbox made may
		// be (a vmnet killed during up): the last down removes it anyway.
		removeStateMountpoint()
		return nil
	}
	if err := teardown(ctx, l); err != nil {
		return fmt.Errorf("remove sandbox %q: %w", name, err)
	}
	removeStateMountpoint()
	return nil
}

// vmStateDir is the mount point of each sandbox's private VM state; the
// marker says a sandbox created it on the host, so the last Down removes it
// and the host is left as it was.
const (
	vmStateDir       = "/var/lib/vmnet"
	vmStateDirMarker = StateDir + "/.created-var-lib-vmnet"
)

// makeStateMountpoint creates /var/lib/vmnet when it is missing and remembers that.
func makeStateMountpoint() error {
	if _, err := os.Stat(vmStateDir); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := fsperm.Mkdir(vmStateDir, 0o755); err != nil { // as a package would make it, whatever the umask
		return fmt.Errorf("sandbox: %w", err)
	}
	return os.WriteFile(vmStateDirMarker, nil, 0o600)
}

// removeStateMountpoint removes /var/lib/vmnet when a sandbox made it and no
// sandbox is left (in another mount namespace it is still a mount point, and
// removing it there would detach that sandbox's state). Best effort.
func removeStateMountpoint() {
	if _, err := os.Stat(vmStateDirMarker); err != nil {
		return
	}
	entries, err := os.ReadDir(StateDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() {
			return // another sandbox
		}
	}
	if err := os.Remove(vmStateDir); err == nil || errors.Is(err, os.ErrNotExist) {
		os.Remove(vmStateDirMarker)
	}
}

// Exists reports whether sandbox name exists, whole or half-made.
func Exists(name string) (bool, error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	_, err := os.Stat(layoutFor(name).dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// NotFoundError is the error for a sandbox that does not exist; it matches
// ErrNotFound and carries a hint for the user.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("sandbox %q does not exist", e.Name) }

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// Hint says how to make the sandbox.
func (e *NotFoundError) Hint() string { return "make it with: vmnet sandbox up " + e.Name }

// Exec runs argv inside sandbox name (both namespaces, the caller's working
// directory, the caller's environment plus VMNET_SANDBOX=name) and returns the
// command's exit code (128+N when killed by signal N). err is non-nil only when
// the command could not be run, or ctx ended it.
func Exec(ctx context.Context, name string, argv []string, stdio Stdio) (int, error) {
	if err := ValidateName(name); err != nil {
		return -1, err
	}
	if len(argv) == 0 {
		return -1, errors.New("sandbox exec: no command given")
	}
	if err := requireRoot(); err != nil {
		return -1, err
	}
	tl, err := findTools(false)
	if err != nil {
		return -1, err
	}
	l := layoutFor(name)
	s, err := inspect(l)
	if err != nil {
		return -1, fmt.Errorf("inspect sandbox %q: %w", name, err)
	}
	switch {
	case !s.dirExists:
		return -1, &NotFoundError{Name: name}
	case !s.nsOK() || !s.st.Ready:
		return -1, errs.WithHint(fmt.Errorf("sandbox %q is half-made (a namespace or mount is missing)", name),
			"repair it with: vmnet sandbox up "+name)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	// nsenter leaves the command in / of the new mount namespace; cd there by
	// path so the directory is resolved inside the sandbox, and refuse rather
	// than run somewhere else when it is not there.
	args := append([]string{"--mount=" + l.mntFile, "--net=" + l.netnsFile, "--",
		"/bin/sh", "-c", `cd -- "$0" || exit 125; exec "$@"`, cwd}, argv...)
	cmd := exec.CommandContext(ctx, tl.nsenter, args...)
	cmd.Env = append(withoutEnv(os.Environ(), EnvVar), EnvVar+"="+name)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	slog.Debug("sandbox: exec", "name", name, "argv", argv)
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if ctx.Err() != nil {
			return code, fmt.Errorf("sandbox %q: %s: %w", name, argv[0], ctx.Err())
		}
		return code, nil
	default:
		return -1, fmt.Errorf("sandbox %q: run %s: %w", name, argv[0], err)
	}
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// List describes every sandbox, sorted by name. It takes no lock and changes nothing.
func List() ([]Info, error) {
	if err := requireRoot(); err != nil {
		return nil, err // only root can see which namespaces the daemons are in
	}
	ents, err := os.ReadDir(StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var out []Info
	for _, e := range ents {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		l := layoutFor(e.Name())
		s, err := inspect(l)
		if err != nil {
			return nil, fmt.Errorf("inspect sandbox %q: %w", e.Name(), err)
		}
		in := Info{
			Name: e.Name(), NetNS: l.netns,
			NetNSPresent: s.netID.valid(), MountNSBound: s.mntID.valid(),
			LibvirtdPID: s.st.LibvirtdPID, LibvirtdAlive: s.libvirtdAlive,
			VirtlogdPID: s.st.VirtlogdPID, VirtlogdAlive: s.virtlogdAlive,
		}
		switch {
		case s.healthy():
			in.State = "running"
		case s.nsOK() && s.st.Ready:
			in.State = "degraded"
		default:
			in.State = "broken"
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// lock serialises Up and Down across processes with flock on StateDir.
func lock(ctx context.Context) (func(), error) {
	if err := fsperm.MkdirAll(StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	// O_RDONLY without O_CREATE: the lock is on the directory itself.
	fl := flock.New(StateDir, flock.SetFlag(os.O_RDONLY))
	if _, err := fl.TryLockContext(ctx, 100*time.Millisecond); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sandbox: waiting for another vmnet sandbox command: %w", ctx.Err())
		}
		return nil, fmt.Errorf("sandbox: lock %s: %w", StateDir, err)
	}
	return func() { _ = fl.Unlock() }, nil
}
