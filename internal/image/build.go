package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"vmnet/internal/debian"
	"vmnet/internal/fsperm"
	"vmnet/internal/initramfs"
)

// Artefact file names inside a build directory.
const (
	kernelFile = "vmlinuz"
	initrdFile = "initrd.img"
	logFile    = "build.log"
	failedLog  = "failed-build.log"
)

// tailLines is how much of a failed build's log is shown.
const tailLines = 15

// BuildError is a failed build. Its log is kept in the cache.
type BuildError struct {
	Image string
	Log   string   // the build's log, kept as NAME/failed-build.log
	Tail  []string // the log's last lines
	Err   error
}

func (e *BuildError) Error() string { return fmt.Sprintf("build image %q: %v", e.Image, e.Err) }

func (e *BuildError) Unwrap() error { return e.Err }

// Hint gives the cause's advice, if any, and where the log is.
func (e *BuildError) Hint() string {
	var h interface{ Hint() string }
	if errors.As(e.Err, &h) && h.Hint() != "" {
		return h.Hint() + "; the build log is " + e.Log
	}
	return "the build log is " + e.Log + " (its last lines are shown above)"
}

// fetchError is a failure to download a package: stale package lists are a
// likely cause, which Ensure tries to fix once.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// build makes image r from pkgs (the kernel first) in a fresh directory and
// publishes it. The caller holds the image's lock.
func (c *Cache) build(ctx context.Context, r *recipe, pkgs []debian.Package, hash string, p *progress) (Image, error) {
	nameDir := filepath.Join(c.Dir, r.Name)
	if err := fsperm.MkdirAll(nameDir, 0o755); err != nil {
		return Image{}, c.dirError(err)
	}
	removeLeftovers(nameDir, "")
	tmp, err := os.MkdirTemp(nameDir, ".build-")
	if err != nil {
		return Image{}, c.dirError(err)
	}
	defer os.RemoveAll(tmp) // gone after a failure; renamed away after success
	// Readable by whoever runs the guests (libvirt's qemu user, for one).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Image{}, err
	}
	logf, err := fsperm.Create(filepath.Join(tmp, logFile), 0o644)
	if err != nil {
		return Image{}, err
	}
	defer logf.Close()
	b := &buildLog{p: p, log: logf, now: c.now}
	start := c.now()
	b.step("building (recipe hash %s) from %s", hash[:16], pkgList(pkgs))

	var m manifest
	if r.Kind == kindRootfs {
		m, err = c.buildRootfs(ctx, r, pkgs, hash, tmp, b)
	} else {
		m, err = c.buildInitramfs(ctx, r, pkgs, hash, tmp, b)
	}
	if err == nil {
		m.Built = c.now()
		m.BuildSeconds = m.Built.Sub(start).Seconds()
		b.step("built in %.1fs", m.BuildSeconds)
		err = logf.Sync()
	}
	if err == nil {
		// The manifest last: without it the directory is not a build.
		err = writeManifest(tmp, m)
	}
	if err != nil {
		p.finish()
		b.step("build failed: %v", err)
		logf.Close()
		return Image{}, c.failed(r.Name, tmp, p, err)
	}
	final := c.buildDir(r.Name, hash)
	if err := publish(tmp, final); err != nil {
		return Image{}, fmt.Errorf("publish image %q: %w", r.Name, err)
	}
	// The builds this one replaces, and the log of an earlier failure.
	removeLeftovers(nameDir, filepath.Base(final))
	if err := c.pruneDebs(ctx); err != nil {
		b.p.line(fmt.Sprintf("warning: %v", err))
	}
	return m.image(final), nil
}

// failed keeps the log of a failed build as NAME/failed-build.log, shows its
// tail and returns the BuildError.
func (c *Cache) failed(name, tmp string, p *progress, cause error) error {
	log := filepath.Join(c.Dir, name, failedLog)
	if err := os.Rename(filepath.Join(tmp, logFile), log); err != nil {
		log = "(lost: " + err.Error() + ")"
	}
	tail := lastLines(log, tailLines)
	if len(tail) > 0 {
		p.line("last lines of " + log + ":")
		for _, l := range tail {
			p.line("  | " + l)
		}
	}
	return &BuildError{Image: name, Log: log, Tail: tail, Err: cause}
}

// publish renames the finished build directory to its place, replacing a
// build that is already there (a forced rebuild).
func publish(tmp, final string) error {
	var old string
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(filepath.Dir(final), ".old-"+filepath.Base(tmp))
		if err := os.Rename(final, old); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			os.Rename(old, final)
		}
		return err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return syncDir(filepath.Dir(final))
}

// removeLeftovers removes from an image's directory everything but the build
// named keep: other builds, unfinished ones and the last failure's log (when
// keep is ""; only unfinished builds).
func removeLeftovers(nameDir, keep string) {
	entries, _ := os.ReadDir(nameDir)
	for _, e := range entries {
		n := e.Name()
		unfinished := strings.HasPrefix(n, ".build-") || strings.HasPrefix(n, ".old-")
		if unfinished || (keep != "" && n != keep) {
			os.RemoveAll(filepath.Join(nameDir, n))
		}
	}
}

// buildInitramfs makes a kernel + initramfs image in dir: the recipe's kernel
// package's vmlinuz, and a gzipped cpio with busybox, the recipe's files and
// the modules it names with their dependencies.
func (c *Cache) buildInitramfs(ctx context.Context, r *recipe, pkgs []debian.Package, hash, dir string, b *buildLog) (manifest, error) {
	work := filepath.Join(dir, "work")
	defer os.RemoveAll(work)
	roots, debs, err := c.unpackAll(ctx, pkgs, work, b)
	if err != nil {
		return manifest{}, err
	}
	kroot := roots[0]
	kver, err := initramfs.KernelVersion(kroot)
	if err != nil {
		return manifest{}, err
	}
	vmlinuz := filepath.Join(kroot, "boot", "vmlinuz-"+kver)
	modRoot := filepath.Join(kroot, "lib", "modules", kver)
	order, err := initramfs.LoadOrder(modRoot, r.Modules)
	if err != nil {
		return manifest{}, err
	}
	b.step("kernel %s; %d modules in load order: %s", kver, len(order), strings.Join(initramfs.Names(order), " "))

	fsys, err := initramfsSkeleton()
	if err != nil {
		return manifest{}, err
	}
	if err := addModules(fsys, modRoot, kver, order); err != nil {
		return manifest{}, err
	}
	if err := r.addToInitramfs(fsys, roots[1:]); err != nil {
		return manifest{}, err
	}
	// Which build this is, for a person at the guest's console.
	ident := fmt.Sprintf("name=%s\nhash=%s\nkernel=%s\npackages=%s\n", r.Name, hash, kver, pkgList(pkgs))
	if err := fsys.File("etc/vmnet/image", 0o644, []byte(ident)); err != nil {
		return manifest{}, err
	}
	if err := writeGzip(filepath.Join(dir, initrdFile), fsys); err != nil {
		return manifest{}, fmt.Errorf("write initramfs: %w", err)
	}
	if err := copyFile(vmlinuz, filepath.Join(dir, kernelFile)); err != nil {
		return manifest{}, fmt.Errorf("kernel package %s has no usable vmlinuz: %w", pkgs[0], err)
	}
	files, err := fileSizes(dir, kernelFile, initrdFile)
	if err != nil {
		return manifest{}, err
	}
	b.step("initramfs %s, kernel %s", mib(files[initrdFile]), mib(files[kernelFile]))
	return manifest{
		Format: manifestFormat, Name: r.Name, Hash: hash,
		Kernel: kernelFile, Initrd: initrdFile,
		Cmdline: r.Cmdline, ReadyLine: r.readyLine(),
		Packages: pkgStrings(pkgs), Debs: debs, Modules: initramfs.Names(order), Files: files,
	}, nil
}

// initramfsSkeleton returns an initramfs with the directories and device
// nodes every one has.
func initramfsSkeleton() (*initramfs.Archive, error) {
	fsys := initramfs.New()
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "etc/vmnet"} {
		if err := fsys.Dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	fsys.Dir("tmp", 0o1777)
	fsys.Dir("root", 0o700)
	// The kernel opens /dev/console for init before anything mounts devtmpfs.
	fsys.CharDev("dev/console", 0o600, 5, 1)
	fsys.CharDev("dev/null", 0o666, 1, 3)
	return fsys, nil
}

// addModules puts the kernel modules of order into fsys, from the tree
// modRoot (/lib/modules/KVER), and their list in load order as
// etc/vmnet/modules, which the init script loads one by one.
func addModules(fsys *initramfs.Archive, modRoot, kver string, order []initramfs.Module) error {
	var list strings.Builder
	for _, m := range order {
		data, err := os.ReadFile(filepath.Join(modRoot, m.Path))
		if err != nil {
			return err
		}
		dst := "lib/modules/" + kver + "/" + m.Path
		if err := fsys.File(dst, 0o644, data); err != nil {
			return err
		}
		fmt.Fprintf(&list, "/%s\n", dst)
	}
	return fsys.File("etc/vmnet/modules", 0o644, []byte(list.String()))
}

// addToInitramfs puts the recipe's files into fsys: those it takes from its
// packages (unpacked at roots, one per r.Packages entry), its own files and
// its symlinks.
func (r *recipe) addToInitramfs(fsys *initramfs.Archive, roots []string) error {
	for i, rp := range r.Packages {
		for _, f := range rp.Files {
			if err := addFromPackage(fsys, roots[i], f, rp.Name); err != nil {
				return err
			}
		}
	}
	for _, f := range r.Files {
		if err := fsys.File(f.Dst, uint32(f.mode), r.files[f.Src]); err != nil {
			return err
		}
	}
	for dst, target := range r.Symlinks {
		if err := fsys.Symlink(dst, target); err != nil {
			return err
		}
	}
	return nil
}

// unpackAll gets each package's .deb (from the cache, or downloaded) and
// unpacks it into its own directory under work; roots[i] is pkgs[i]'s.
func (c *Cache) unpackAll(ctx context.Context, pkgs []debian.Package, work string, b *buildLog) (roots, debs []string, err error) {
	// Held while .debs is used, so a prune by another build cannot remove a .deb
	// between its download and its unpacking.
	unlock, err := c.lock(ctx, debsLock, "using the cache of .deb files", b.p)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	for i, p := range pkgs {
		deb, err := c.deb(ctx, p, b)
		if err != nil {
			return nil, nil, err
		}
		root := filepath.Join(work, fmt.Sprintf("%d-%s", i, p.Name))
		b.step("unpacking %s", p)
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, nil, err
		}
		if err := c.src.Unpack(ctx, deb, root, b); err != nil {
			return nil, nil, err
		}
		roots = append(roots, root)
		debs = append(debs, filepath.Base(deb))
	}
	return roots, debs, nil
}

// deb returns the path of p's .deb in the cache, downloading it unless a copy
// with the archive's sha256 is there.
func (c *Cache) deb(ctx context.Context, p debian.Package, b *buildLog) (string, error) {
	dir := filepath.Join(c.Dir, debsDir)
	if err := fsperm.MkdirAll(dir, 0o755); err != nil {
		return "", c.dirError(err)
	}
	dst := filepath.Join(dir, p.DebName())
	if sum, err := fileSHA256(dst); err == nil && sum == p.SHA256 {
		b.step("%s: cached .deb", p)
		return dst, nil
	}
	tmp, err := os.MkdirTemp(dir, ".download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	b.step("downloading %s (%s)", p, mib(p.Size))
	got, err := c.src.Download(ctx, p, tmp, b)
	b.p.finish()
	if err != nil {
		return "", &fetchError{err}
	}
	sum, err := fileSHA256(got)
	if err != nil {
		return "", err
	}
	if sum != p.SHA256 {
		return "", &fetchError{fmt.Errorf("download %s: the .deb's sha256 is %s, apt's lists say %s", p, sum, p.SHA256)}
	}
	if err := os.Rename(got, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// pruneDebs removes the .deb files no build in the cache names.
func (c *Cache) pruneDebs(ctx context.Context) error {
	dir := filepath.Join(c.Dir, debsDir)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := c.lock(ctx, debsLock, "", nil)
	if err != nil {
		return err
	}
	defer unlock()
	imgs, err := c.List()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, img := range imgs {
		if m, err := readManifest(img.Dir); err == nil {
			for _, d := range m.Debs {
				keep[d] = true
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("prune cached .deb files: %w", err)
			}
		}
	}
	return nil
}

// addFromPackage copies file f (a path inside the .deb) from an unpacked
// package into the initramfs, keeping its mode, or its target for a symlink.
func addFromPackage(fsys *initramfs.Archive, root, f, pkg string) error {
	src := filepath.Join(root, f)
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("package %s has no %s: %w", pkg, f, err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return fsys.Symlink(f, target)
	case fi.Mode().IsRegular():
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		return fsys.File(f, uint32(fi.Mode().Perm()), data)
	}
	return fmt.Errorf("package %s: %s is neither a file nor a symlink", pkg, f)
}

func writeGzip(file string, fsys *initramfs.Archive) error {
	f, err := fsperm.Create(file, 0o644) // QEMU, as libvirt-qemu, reads it
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	if err := fsys.Write(zw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fsperm.Create(dst, 0o644) // a kernel or initrd: QEMU, as libvirt-qemu, reads it
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return out.Close()
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lastLines returns up to n last lines of a file.
func lastLines(file string, n int) []string {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines
}

func pkgStrings(pkgs []debian.Package) []string {
	s := make([]string, len(pkgs))
	for i, p := range pkgs {
		s[i] = p.String()
	}
	return s
}

func pkgList(pkgs []debian.Package) string { return strings.Join(pkgStrings(pkgs), ", ") }
