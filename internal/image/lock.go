package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"

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
	// 0644: whoever waits next reads the holder's pid from it.
	fl := flock.New(file, flock.SetPermissions(0o644))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, lockError(c, file, err)
	}
	if !ok {
		if p != nil {
			holder := "another vmnet"
			if b, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(b)) != "" {
				holder += " (pid " + strings.TrimSpace(string(b)) + ")"
			}
			p.line("waiting for " + holder + ", which is " + what)
		}
		if _, err := fl.TryLockContext(ctx, lockPoll); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for lock %s: %w", file, ctx.Err())
			}
			return nil, lockError(c, file, err)
		}
	}
	// For the message above, in whoever waits next. The lock is on the
	// inode, so writing through another descriptor is fine.
	fsperm.WriteFile(file, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	return func() {
		os.Truncate(file, 0)
		fl.Unlock()
	}, nil
}

// lockError is a failure to open or lock file: opening is the cache
// directory's problem (permissions, read-only), anything else the lock's.
func lockError(c *Cache, file string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Op == "open" {
		return c.dirError(err)
	}
	return fmt.Errorf("lock %s: %w", file, err)
}
