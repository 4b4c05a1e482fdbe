// Package initramfs writes the cpio archive ("newc" format) a Linux kernel
// unpacks into its first root file system, and finds the kernel modules an
// unpacked Debian kernel package must load, in load order.
//
// The records are written by u-root's pkg/cpio, which takes a device's
// rdev major and minor (/dev/console is 5,1) and every header field as
// given; this package adds what the kernel and a reproducible image need
// around it: checked relative names, parent directories, one sorted order,
// owner root, time zero and inodes counted from 1.
package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// File type bits of a cpio mode, as in stat(2).
const (
	modeDir  = 0o040000
	modeReg  = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

// cpioEntry is one file of an archive.
type cpioEntry struct {
	mode      uint32 // type bits | permissions
	data      []byte // file contents, or a symlink's target
	rdevMajor uint32
	rdevMinor uint32
}

// Archive collects files and writes them as the cpio archive ("newc"
// format) the kernel unpacks into its root file system. The output depends
// only on the entries: names sorted, owner root, times zero, inodes counted.
type Archive struct {
	entries map[string]cpioEntry
}

// New returns an empty archive.
func New() *Archive { return &Archive{entries: map[string]cpioEntry{}} }

// add records an entry and makes its parent directories (0755) if needed.
func (f *Archive) add(name string, e cpioEntry) error {
	if !cleanRelative(name) {
		return fmt.Errorf("initramfs: %q is not a clean relative path", name)
	}
	if old, ok := f.entries[name]; ok && !(old.mode&modeDir != 0 && e.mode&modeDir != 0) {
		return fmt.Errorf("initramfs: %s is added twice", name)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		old, ok := f.entries[dir]
		if ok && old.mode&0o170000 != modeDir {
			return fmt.Errorf("initramfs: %s needs directory %s, which is a file", name, dir)
		}
		if !ok {
			f.entries[dir] = cpioEntry{mode: modeDir | 0o755}
		}
	}
	f.entries[name] = e
	return nil
}

// Dir adds directory name (a clean relative path) with permissions perm.
func (f *Archive) Dir(name string, perm uint32) error {
	return f.add(name, cpioEntry{mode: modeDir | perm&0o7777})
}

// File adds regular file name with permissions perm and contents data.
func (f *Archive) File(name string, perm uint32, data []byte) error {
	return f.add(name, cpioEntry{mode: modeReg | perm&0o7777, data: data})
}

// Symlink adds a symbolic link name pointing at target.
func (f *Archive) Symlink(name, target string) error {
	return f.add(name, cpioEntry{mode: modeLink | 0o777, data: []byte(target)})
}

// CharDev adds character device node name (major, minor) with permissions perm.
func (f *Archive) CharDev(name string, perm, major, minor uint32) error {
	return f.add(name, cpioEntry{mode: modeChr | perm&0o7777, rdevMajor: major, rdevMinor: minor})
}

// Write writes the archive to w, parents before children, ending with the
// trailer. Every record has owner root, time zero and an inode counted from
// 1, so the bytes depend on the entries alone.
func (f *Archive) Write(w io.Writer) error {
	names := make([]string, 0, len(f.entries))
	for n := range f.entries {
		names = append(names, n)
	}
	// A parent is a prefix of its children, so it sorts first.
	sort.Strings(names)
	bw := bufio.NewWriter(w)
	rw := cpio.Newc.Writer(bw)
	for i, n := range names {
		e := f.entries[n]
		nlink := uint64(1)
		if e.mode&0o170000 == modeDir {
			nlink = 2
		}
		rec := cpio.StaticRecord(e.data, cpio.Info{
			Ino: uint64(i + 1), Mode: uint64(e.mode), NLink: nlink, Name: n,
			Rmajor: uint64(e.rdevMajor), Rminor: uint64(e.rdevMinor),
		})
		if err := rw.WriteRecord(rec); err != nil {
			return err
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return err
	}
	return bw.Flush()
}

// cleanRelative reports whether p is a clean, relative path that stays
// inside the archive's root.
func cleanRelative(p string) bool {
	return p != "" && p != "." && !path.IsAbs(p) && path.Clean(p) == p && !strings.HasPrefix(p, "../")
}
