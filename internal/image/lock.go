package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"vmnet/internal/fsperm"
)

// locksDir holds the lock files, apart from the images so that removing an
// image never removes a lock someone is waiting on.
const locksDir = ".locks"

// debsLock guards the shared .deb directory; it cannot clash with an image
// name, which never starts with a dot.
const debsLock = ".debs"

// lockPoll is how often a waiting process tries the lock again.
const lockPoll = 200 * time.Millisecond

// lock takes the exclusive flock(2) on DIR/.locks/KEY.lock, waiting as long as
// ctx allows and saying once on p (when not nil) that the holder is busy with
// what. The lock ends with the process, so a killed build leaves none behind.
func (c *Cache) lock(ctx context.Context, key, what string, p *progress) (unlock func(), err error) {
	dir := filepath.Join(c.Dir, locksDir)
	// The first thing a cache use makes: the cache directory itself too,
	// which QEMU (as libvirt-qemu) must traverse, whatever the umask.
	if err := fsperm.MkdirAll(dir, 0o755); err != nil {
		return nil, c.dirError(err)
	}
	file := filepath.Join(dir, key+".lock")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, c.dirError(err)
	}
	said := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", file, err)
		}
		if !said && p != nil {
			holder := "another vmnet"
			if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) != "" {
				holder += " (pid " + strings.TrimSpace(string(b)) + ")"
			}
			p.line("waiting for " + holder + ", which is " + what)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", file, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	// For the message above, in whoever waits next.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		f.Truncate(0)
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
