package accel

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"vmnet/internal/fsperm"
)

// DefaultCache is where Probe keeps the test guest's answer: beside the
// image cache, which the host and every vmnet sandbox share (a sandbox has
// its own /run, and an answer kept there made the first up in each new
// sandbox probe again). The key carries the boot id, so the answer is per
// boot all the same.
const DefaultCache = "/var/cache/vmnet/accel.json"

// cacheFormat changes when the meaning of a cached answer does. (Answers
// cached before the libvirt check also hold the device check's step:
// probeGuest drops it rather than invalidate every host's cache.)
const cacheFormat = 1

// CacheKey is everything the test guest's answer depends on: when any part
// differs from the cached one, the guest runs again.
type CacheKey struct {
	Format  int    `json:"format"`
	Kernel  string `json:"kernel"`  // uname -r
	BootID  string `json:"boot_id"` // /proc/sys/kernel/random/boot_id
	QEMU    string `json:"qemu"`    // the emulator's path, size and mtime
	Device  string `json:"device"`  // /dev/kvm's path, dev, inode, mode, uid, gid and rdev
	Timeout string `json:"timeout"` // how long the guest was allowed
}

// cacheFile is the cache's content.
type cacheFile struct {
	Key      CacheKey  `json:"key"`
	Choice   Choice    `json:"choice"`
	ProbedAt time.Time `json:"probed_at"`
}

// Key computes the cache key for this Prober on this host. An error means
// a part cannot be read (no QEMU, no boot id): then nothing is cached.
func (p Prober) Key() (CacheKey, error) {
	k := CacheKey{Format: cacheFormat, Timeout: p.timeout().String()}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return k, fmt.Errorf("uname: %w", err)
	}
	k.Kernel = unix.ByteSliceToString(u.Release[:])
	b, err := os.ReadFile(filepath.Join(p.proc(), "sys/kernel/random/boot_id"))
	if err != nil {
		return k, fmt.Errorf("boot id: %w", err)
	}
	k.BootID = strings.TrimSpace(string(b))
	if k.QEMU, err = fileIdentity(p.qemu(), true); err != nil {
		return k, err
	}
	if k.Device, err = fileIdentity(p.devKVM(), false); err != nil {
		return k, err
	}
	return k, nil
}

// fileIdentity names a file by what changes when it is replaced: for a
// program (found in $PATH) its size and mtime, for a device node its
// inode, mode, owner and device number.
func fileIdentity(name string, program bool) (string, error) {
	if program {
		path, err := exec.LookPath(name)
		if err != nil {
			return "", err
		}
		if name, err = filepath.EvalSymlinks(path); err != nil {
			return "", err
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(name, &st); err != nil {
		return "", &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if program {
		return fmt.Sprintf("%s size=%d mtime=%d.%09d", name, st.Size, st.Mtim.Sec, st.Mtim.Nsec), nil
	}
	return fmt.Sprintf("%s dev=%d ino=%d mode=%o uid=%d gid=%d rdev=%d",
		name, st.Dev, st.Ino, st.Mode, st.Uid, st.Gid, st.Rdev), nil
}

// cached returns the cached choice for key, if there is one.
func (p Prober) cached(key CacheKey) (Choice, bool) {
	b, err := os.ReadFile(p.Cache)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			slog.Debug("accel: cache unreadable", "file", p.Cache, "err", err)
		}
		return Choice{}, false
	}
	var f cacheFile
	if err := json.Unmarshal(b, &f); err != nil || f.Key != key || f.Choice.Type == "" {
		slog.Debug("accel: cache stale or corrupt, probing again", "file", p.Cache, "err", err)
		return Choice{}, false
	}
	f.Choice.Cached = true
	f.Choice.Reason += fmt.Sprintf(" (the test guest's answer at %s, cached in %s: delete it to probe again)",
		f.ProbedAt.Format(time.RFC3339), p.Cache)
	return f.Choice, true
}

// store writes the choice for key, readable by everyone (0644, also under
// umask 077) and atomically, so a concurrent reader sees the old file or
// the new one. A failure only costs the next caller a probe.
func (p Prober) store(key CacheKey, c Choice) {
	b, err := json.MarshalIndent(cacheFile{Key: key, Choice: c, ProbedAt: time.Now().UTC()}, "", "  ")
	if err == nil {
		err = fsperm.MkdirAll(filepath.Dir(p.Cache), 0o755)
	}
	if err == nil {
		err = fsperm.WriteFileAtomic(p.Cache, append(b, '\n'), 0o644)
	}
	if err != nil {
		slog.Debug("accel: cannot write the cache", "file", p.Cache, "err", err)
	}
}
