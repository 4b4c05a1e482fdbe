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
