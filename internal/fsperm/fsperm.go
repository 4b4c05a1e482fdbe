// Package fsperm creates files and directories with exactly the mode asked
// for, whatever the process's umask.
//
// The os functions pass their mode through the umask: under umask 077 (CIS
// hardened hosts, many CI images) os.MkdirAll(dir, 0o755) makes a 0700
// directory, and QEMU (running as libvirt-qemu), virtlogd or dnsmasq can then
// not reach the kernel, disk or seed vmnet handed them. Every path one of
// them must read is made through this package; secrets are made 0600/0700
// here too, so their modes are stated rather than left to the umask.
package fsperm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// MkdirAll is os.MkdirAll (mkdir -p) with mode set on each directory it
// creates, whatever the umask. Directories that exist keep their mode: they
// are someone else's decision.
func MkdirAll(dir string, mode fs.FileMode) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: errors.New("a file of that name exists")}
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, mode); err != nil {
			return err
		}
	}
	return Mkdir(dir, mode)
}

// Mkdir makes one directory with exactly mode; one that already exists
// (made meanwhile by another process) is left as it is.
func Mkdir(dir string, mode fs.FileMode) error {
	if err := os.Mkdir(dir, mode); errors.Is(err, fs.ErrExist) {
		return nil
	} else if err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// Create is os.Create with exactly mode: it opens name for writing,
// creating or truncating it, and sets mode on it (also on a file that was
// there).
func Create(name string, mode fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return nil, fmt.Errorf("chmod %s: %w", name, err)
	}
	return f, nil
}

// WriteFile is os.WriteFile with exactly mode, also for a file that was there.
func WriteFile(name string, data []byte, mode fs.FileMode) error {
	f, err := Create(name, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteFileAtomic replaces name with data so that a reader sees either the
// old file or the whole new one, never half of it, and a crash leaves one
// of the two on disk. The data goes to a hidden temporary file in name's
// directory (".NAME" plus random digits, so no consumer that matches by
// suffix or skips dot files picks it up), which gets exactly mode whatever
// the umask and whatever mode the old file had, is fsynced, and is renamed
// over name; then the directory is fsynced so that the rename lasts too.
// On failure name is left as it was and the temporary file is removed.
func WriteFileAtomic(name string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(name)
	// WithTempDir: without it renameio probes os.TempDir() and, when a
	// rename from there works, writes the temporary file in /tmp.
	f, err := renameio.NewPendingFile(name, renameio.WithTempDir(dir),
		renameio.WithPermissions(mode), renameio.WithStaticPermissions(mode))
	if err != nil {
		return err
	}
	defer f.Cleanup() // a no-op once renamed
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.CloseAtomicallyReplace(); err != nil { // fsync, close, rename
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory, making a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &fs.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}
