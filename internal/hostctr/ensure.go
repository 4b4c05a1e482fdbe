package hostctr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"vmnet/internal/errs"
	"vmnet/internal/fsperm"
)

// RootfsPackages is the Debian packages of the host containers' rootfs:
// python3 for the HTTP server on listen, ping and ip for a person with
// podman exec. mmdebstrap's essential variant brings the rest (sh, sleep).
var RootfsPackages = []string{"python3", "iputils-ping", "iproute2"}

// RootfsDir is where the ctr image's exploded rootfs is, in the image
// cache dir: one directory per package list, so a new list builds anew.
func RootfsDir(cacheDir string) string {
	h := sha256.Sum256([]byte(strings.Join(RootfsPackages, "\n")))
	return filepath.Join(cacheDir, "ctr", hex.EncodeToString(h[:8]), "rootfs")
}

// ErrNoRootfs is matched when the ctr rootfs is not built.
var ErrNoRootfs = errors.New("the host containers' rootfs is not built")

// FindRootfs is the built rootfs, or ErrNoRootfs with the command that
// builds it.
func FindRootfs(cacheDir string) (string, error) {
	dir := RootfsDir(cacheDir)
	if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "python3")); err != nil {
		return "", errs.WithHint(fmt.Errorf("%w (%s): its container nodes run from it", ErrNoRootfs, dir),
			"build it outside the sandbox first (a sandbox has no way out to Debian's mirror): vmnet image build ctr (or vmnet image build --lab FILE for every image a lab needs)")
	}
	return dir, nil
}

// BuildRootfs builds the rootfs from Debian's packages with mmdebstrap
// (bookworm, essential variant plus RootfsPackages) into a temporary
// directory that becomes RootfsDir once complete. A built one is kept.
func BuildRootfs(ctx context.Context, cacheDir string, progress io.Writer) (string, error) {
	if dir, err := FindRootfs(cacheDir); err == nil {
		return dir, nil
	}
	dir := RootfsDir(cacheDir)
	if err := fsperm.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp := dir + ".build"
	os.RemoveAll(tmp)
	defer os.RemoveAll(tmp)
	if progress != nil {
		fmt.Fprintf(progress, "image ctr: mmdebstrap bookworm with %s\n", strings.Join(RootfsPackages, ", "))
	}
	args := []string{"--variant=essential", "--include=" + strings.Join(RootfsPackages, ","),
		"--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
		"--dpkgopt=path-exclude=/usr/share/locale/*", "bookworm", tmp, "deb http://deb.debian.org/debian bookworm main"}
	out, err := exec.CommandContext(ctx, "mmdebstrap", args...).CombinedOutput()
	if err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return "", errs.WithHint(fmt.Errorf("build image ctr: mmdebstrap: %w: %s", err, lines[len(lines)-1]), "install mmdebstrap (scripts/deps.sh) and check that deb.debian.org answers")
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Ensure makes every spec's container: one that runs with the same hash is
// kept (its interface converged), one that differs or does not run is
// removed and made again; attach gives each its interface (Attach with
// the bridges' namespace). It returns what changed.
func Ensure(ctx context.Context, rt Runtime, attach func(Spec, int) error, specs []Spec) ([]string, error) {
	have, err := rt.List(ctx)
	if err != nil {
		return nil, err
	}
	byNode := map[string]Info{}
	for _, in := range have {
		byNode[in.Node] = in
	}
	var changes []string
	for _, s := range specs {
		in, ok := byNode[s.Node]
		pid := in.Pid
		if !ok || in.Hash != s.Hash() || in.State != "running" {
			if ok {
				if err := rt.Remove(ctx, s.Node); err != nil {
					return changes, err
				}
			}
			if pid, err = rt.Start(ctx, s); err != nil {
				return changes, err
			}
			changes = append(changes, map[bool]string{true: "recreate ", false: "create "}[ok]+s.String())
		}
		if err := attach(s, pid); err != nil {
			return changes, err
		}
	}
	return changes, nil
}

// Down removes every container of the lab, found by its label, then the
// host-side links an up killed while attaching it may have left (dropLinks
// with the container's name: the links' names follow from it), and the
// lab's podman storage. It returns what it removed.
func Down(ctx context.Context, rt Runtime, stateDir, name string, dropLinks func(node string) error) ([]string, error) {
	have, err := rt.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, in := range have {
		if err := rt.Remove(ctx, in.Node); err != nil {
			return out, err
		}
		out = append(out, "remove container "+in.Node)
		if err := dropLinks(in.Node); err != nil {
			return out, err
		}
	}
	// conmon runs 'podman container cleanup' with the lab's storage flags
	// after its container goes: removed before that, the storage would be
	// made again.
	waitUnused(StorageDir(stateDir, name), 15*time.Second)
	if err := removeStorage(StorageDir(stateDir, name)); err != nil {
		return out, fmt.Errorf("remove lab %s's podman storage: %w", name, err)
	}
	return out, nil
}

// waitUnused waits, at most timeout, until no process names dir on its
// command line (conmon, and the podman cleanup it starts, run with the
// lab's --root); it only looks at /proc, and stops nothing.
func waitUnused(dir string, timeout time.Duration) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !inUse(dir) {
			return
		}
	}
}

// inUse reports whether a process's command line contains dir.
func inUse(dir string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), dir+"/") {
			return true
		}
	}
	return false
}

// removeStorage removes the lab's podman storage; when a mount of podman's
// (its overlay home) is left inside, it is unmounted first (umount -l,
// deepest first) and the removal tried again.
func removeStorage(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = unix.Unmount(mounts[i], unix.MNT_DETACH)
	}
	return os.RemoveAll(dir)
}
