package hostctr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// Runtime is what up and down need of podman for one lab's storage.
type Runtime interface {
	// List is every container labelled with the lab (podman ps -a
	// --filter label=vmnet.lab=LAB).
	List(ctx context.Context) ([]Info, error)
	// Start creates and starts s's container (podman run -d ...) and returns
	// its init process's pid.
	Start(ctx context.Context, s Spec) (int, error)
	// Remove stops and removes the container; nil when it is gone already.
	Remove(ctx context.Context, node string) error
}

// Info is one host container as podman reports it.
type Info struct {
	Node  string // its name, the node's
	Lab   string
	Hash  string
	State string // running, exited, created, ...
	Pid   int    // its init process, 0 when it does not run
}

// Podman is the real Runtime: the podman binary with one lab's storage.
type Podman struct {
	StateDir string // vmnet's state directory ("" for the default)
	Lab      string
	Bin      string // "" for podman on PATH
}

var _ Runtime = Podman{}

// ErrNoPodman is matched when podman is not installed.
var ErrNoPodman = errors.New("podman is not installed")

// global is podman's flags for the lab's own storage: no systemd, no
// journald, nothing shared with another lab or the host's podman.
func (p Podman) global() []string {
	dir := StorageDir(p.StateDir, p.Lab)
	return []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--log-level", "error"}
}

// run runs podman with the lab's storage and returns its stdout.
func (p Podman) run(ctx context.Context, args ...string) (string, error) {
	bin := p.Bin
	if bin == "" {
		bin = "podman"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return "", errs.WithHint(fmt.Errorf("%w (%v)", ErrNoPodman, err), "install it: apt-get install podman crun conmon catatonit (scripts/deps.sh does)")
	}
	if err := fsperm.MkdirAll(StorageDir(p.StateDir, p.Lab), 0o700); err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(p.global(), args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// List is the lab's containers (podman ps -a --format json). A lab whose
// storage does not exist has none, and no podman is asked.
func (p Podman) List(ctx context.Context) ([]Info, error) {
	if _, err := os.Stat(StorageDir(p.StateDir, p.Lab)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	out, err := p.run(ctx, "ps", "-a", "--filter", "label="+LabelLab+"="+p.Lab, "--format", "json")
	if err != nil {
		return nil, err
	}
	return parsePS([]byte(out))
}

// psEntry is what List reads of one entry of podman ps --format json.
type psEntry struct {
	Names  []string
	State  string
	Pid    int
	Labels map[string]string
}

// parsePS reads podman ps --format json.
func parsePS(data []byte) ([]Info, error) {
	var entries []psEntry
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("read podman ps: %w", err)
		}
	}
	out := make([]Info, 0, len(entries))
	for _, e := range entries {
		in := Info{Lab: e.Labels[LabelLab], Hash: e.Labels[LabelHash], State: e.State, Pid: e.Pid, Node: e.Labels[LabelNode]}
		if in.Node == "" && len(e.Names) > 0 {
			in.Node = e.Names[0]
		}
		if in.State != "running" {
			in.Pid = 0
		}
		out = append(out, in)
	}
	return out, nil
}

// RunArgs is podman run's arguments for s (after the global flags).
func RunArgs(s Spec) []string {
	// --cgroups=disabled: a sandbox has no cgroup hierarchy in sight (and
	// the container needs no limits); explicit ulimits: podman's defaults are
	// above the hard limits here, and vmnet lacks CAP_SYS_RESOURCE to raise them.
	args := []string{"run", "-d", "--name", s.Node, "--hostname", s.Node, "--network", "none",
		"--cgroups=disabled", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
		"--label", LabelLab + "=" + s.Lab, "--label", LabelNode + "=" + s.Node, "--label", LabelHash + "=" + s.Hash(),
		"--rootfs", s.Rootfs + ":O"}
	return append(args, s.Argv...)
}

// Start runs s's container and reads its pid (podman inspect .State.Pid).
func (p Podman) Start(ctx context.Context, s Spec) (int, error) {
	if _, err := p.run(ctx, RunArgs(s)...); err != nil {
		return 0, fmt.Errorf("start %s: %w", s, err)
	}
	out, err := p.run(ctx, "inspect", "--format", "{{.State.Pid}}", s.Node)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(out), &pid); err != nil || pid <= 0 {
		return 0, fmt.Errorf("container %s has no process (podman inspect: %q)", s.Node, strings.TrimSpace(out))
	}
	return pid, nil
}

// Remove removes the container at once (podman rm -f -t 0); nil when it
// does not exist.
func (p Podman) Remove(ctx context.Context, node string) error {
	_, err := p.run(ctx, "rm", "-f", "-t", "0", "--ignore", node)
	return err
}
