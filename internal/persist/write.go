package persist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"vmnet/internal/fsperm"
)

// ErrForeignFile is returned (wrapped) when a file vmnet would overwrite was
// not written by vmnet for the same bridge.
var ErrForeignFile = errors.New("vmnet does not overwrite files it did not write")

// dirMode is for directories Write creates. Set explicitly, not left to the
// umask, because networkd (user systemd-network) must be able to enter them.
const dirMode = 0o755

// target is a File checked against what is on disk.
type target struct {
	File
	full    string      // root joined with Path
	exists  bool        // a file of vmnet's for the same bridge is there
	content []byte      // its content
	mode    fs.FileMode // its permission bits
}

// Check reports, without writing anything, whether Write(root, files) would
// succeed for bridge: every file is vmnet's for that bridge, lies in a
// backend's directory, and replaces nothing vmnet did not write. Callers run it
// before changing the live network, so a refusal comes before any change.
func Check(root, bridge string, files []File) error {
	_, err := prepare(root, bridge, files)
	return err
}

// Write puts files in place under root and returns the paths whose content or
// mode changed; writing the same files again changes nothing. Each file is
// replaced atomically (a temporary file in the same directory, renamed over
// the old one, both synced), gets File.Mode whatever the umask, and missing
// directories are created with mode 0755. Before writing anything, Write
// refuses with ErrForeignFile if any existing file lacks vmnet's header for
// the same bridge.
func Write(root string, files []File) (changed []string, err error) {
	targets, err := prepare(root, "", files)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		did, err := t.write()
		if err != nil {
			return changed, err
		}
		if did {
			changed = append(changed, t.Path)
		}
	}
	return changed, nil
}

// Sync makes vmnet's files for bridge exactly files: it writes them as Write
// does and then removes vmnet's other files for the bridge, such as those of
// another backend or of an uplink the bridge no longer has. Files that are not
// vmnet's are never touched.
func Sync(root, bridge string, files []File) (changed, removed []string, err error) {
	if _, err := prepare(root, bridge, files); err != nil {
		return nil, nil, err
	}
	changed, err = Write(root, files)
	if err != nil {
		return changed, nil, err
	}
	keep := make(map[string]bool, len(files))
	for _, f := range files {
		keep[f.Path] = true
	}
	removed, err = remove(root, bridge, func(p string) bool { return !keep[p] })
	return changed, removed, err
}

// Remove deletes the files carrying vmnet's header for bridge from every
// backend's directory under root and returns their paths. Files without the
// header, or with another bridge's, stay; nothing to remove is no error.
func Remove(root, bridge string) (removed []string, err error) {
	return remove(root, bridge, func(string) bool { return true })
}

// Find lists vmnet's files for bridge under root, in a fixed order.
func Find(root, bridge string) ([]Found, error) {
	paths, err := scan(root, bridge)
	if err != nil {
		return nil, err
	}
	var out []Found
	for _, p := range paths {
		if strings.HasPrefix(path.Base(p), ".") {
			continue // a temporary file left by an interrupted Write
		}
		b, _ := backendOfDir(path.Dir(p))
		out = append(out, Found{Backend: b, Path: p})
	}
	return out, nil
}

func remove(root, bridge string, want func(string) bool) ([]string, error) {
	paths, err := scan(root, bridge)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, p := range paths {
		if !want(p) {
			continue
		}
		full := filepath.Join(root, p)
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove %q: %w", full, err)
		}
		if err := syncDir(filepath.Dir(full)); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

// scan returns the regular files in the backends' directories whose header
// names bridge, as paths on the target system. Symlinks are not followed, so
// a link planted in one of these directories cannot lead Remove elsewhere.
func scan(root, bridge string) ([]string, error) {
	if err := checkIfName(bridge); err != nil {
		return nil, fmt.Errorf("bridge name: %w", err)
	}
	var out []string
	for _, dir := range managedDirs() {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", filepath.Join(root, dir), err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			owner, mine, err := readOwner(filepath.Join(root, dir, e.Name()))
			if err != nil {
				return nil, err
			}
			if mine && owner == bridge {
				out = append(out, path.Join(dir, e.Name()))
			}
		}
	}
	return out, nil
}

// readOwner reads only the start of a file, enough for the header line: the
// directories scanned hold other people's files, NetworkManager's with
// secrets, and vmnet has no business reading more of them.
func readOwner(full string) (bridge string, mine bool, err error) {
	f, err := os.Open(full)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read header of %q: %w", full, err)
	}
	defer f.Close()
	buf := make([]byte, 256) // the header is at most ~120 bytes
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", false, fmt.Errorf("read header of %q: %w", full, err)
	}
	bridge, mine = parseHeader(buf[:n])
	return bridge, mine, nil
}

// prepare validates files and compares them with what is on disk. When
// bridge is not empty every file must belong to it.
func prepare(root, bridge string, files []File) ([]target, error) {
	seen := map[string]bool{}
	var out []target
	for _, f := range files {
		owner, ok := parseHeader(f.Content)
		switch {
		case !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path:
			return nil, fmt.Errorf("file path %q: not an absolute, clean path", f.Path)
		case !isManagedDir(path.Dir(f.Path)) || strings.HasPrefix(path.Base(f.Path), "."):
			return nil, fmt.Errorf("file path %q: vmnet writes only visible files in %s",
				f.Path, strings.Join(managedDirs(), ", "))
		case seen[f.Path]:
			return nil, fmt.Errorf("file path %q: given twice", f.Path)
		case !ok:
			return nil, fmt.Errorf("file %q: content lacks vmnet's header line", f.Path)
		case bridge != "" && owner != bridge:
			return nil, fmt.Errorf("file %q: belongs to bridge %q, not %q", f.Path, owner, bridge)
		case f.Mode&^0o777 != 0:
			return nil, fmt.Errorf("file %q: mode %#o has bits other than permissions", f.Path, f.Mode)
		}
		seen[f.Path] = true
		t := target{File: f, full: filepath.Join(root, f.Path)}
		fi, err := os.Lstat(t.full)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			out = append(out, t)
			continue
		case err != nil:
			return nil, fmt.Errorf("inspect %q: %w", t.full, err)
		case !fi.Mode().IsRegular():
			return nil, fmt.Errorf("%q exists and is not a regular file: %w", t.full, ErrForeignFile)
		}
		content, err := os.ReadFile(t.full)
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", t.full, err)
		}
		if cur, mine := parseHeader(content); !mine {
			return nil, fmt.Errorf("%q exists without vmnet's header: %w; move it away or pick another backend with --persist",
				t.full, ErrForeignFile)
		} else if cur != owner {
			return nil, fmt.Errorf("%q belongs to vmnet's bridge %q, not %q: %w", t.full, cur, owner, ErrForeignFile)
		}
		t.exists, t.content, t.mode = true, content, fi.Mode().Perm()
		out = append(out, t)
	}
	return out, nil
}

func isManagedDir(dir string) bool { return slices.Contains(managedDirs(), dir) }

// write puts one file in place and reports whether anything changed.
func (t target) write() (bool, error) {
	want := fs.FileMode(t.Mode)
	if t.exists && bytes.Equal(t.content, t.Content) {
		if t.mode == want {
			return false, nil
		}
		if err := os.Chmod(t.full, want); err != nil {
			return false, fmt.Errorf("set mode of %q: %w", t.full, err)
		}
		return true, nil
	}
	dir := filepath.Dir(t.full)
	if err := mkdirAll(dir); err != nil {
		return false, err
	}
	// The temporary file's leading dot and digit suffix keep every
	// consumer from reading it half-written: networkd and netplan match by
	// suffix, NetworkManager and ifupdown's "source dir/*" skip hidden files.
	if err := fsperm.WriteFileAtomic(t.full, t.Content, want); err != nil {
		return false, fmt.Errorf("write %q: %w", t.full, err)
	}
	return true, nil
}

// mkdirAll is os.MkdirAll with dirMode applied regardless of the umask, to
// the directories it creates only: existing ones keep their mode.
func mkdirAll(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("create directory %q: a file of that name exists", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	if err := mkdirAll(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirMode); errors.Is(err, fs.ErrExist) {
		return nil // made meanwhile by someone else, whose mode it keeps
	} else if err != nil {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("create directory %q: %w", dir, err)
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir makes a rename, create or remove in dir survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
