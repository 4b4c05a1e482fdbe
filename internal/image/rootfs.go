package image

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"vmnet/internal/debian"
	"vmnet/internal/fsperm"
	"vmnet/internal/safe"
)

// diskFile is the base disk of a kind rootfs image.
const diskFile = "disk.qcow2"

// aptArchivesDir keeps, per image, the .deb files mmdebstrap downloaded, so
// a rebuild fetches only what changed: DIR/.apt-archives/NAME/{system,app}.
const aptArchivesDir = ".apt-archives"

// initrdModules must be in a rootfs image's initrd: without them the guest
// cannot mount root=/dev/vda.
var initrdModules = []string{"virtio_pci", "virtio_blk", "ext4"}

const rootfsToolsHint = "building this image needs root and Debian's mmdebstrap, e2fsprogs and qemu-utils: " +
	"apt-get install mmdebstrap e2fsprogs qemu-utils, and run vmnet as root"

// rootfsTools runs the programs that install a Debian system and work inside
// it. hostTools is the real one; tests use a fake that writes a small tree.
type rootfsTools interface {
	// check says whether the tools can run here, with a hint when not.
	check() error
	// bootstrap runs mmdebstrap with args (see mmdebstrapArgs).
	bootstrap(ctx context.Context, b *buildLog, args []string) error
	// chroot runs a command inside root and returns its stdout.
	chroot(ctx context.Context, b *buildLog, root string, args ...string) (string, error)
}

// hostTools runs the host's mmdebstrap and chroot.
type hostTools struct{}

var _ rootfsTools = hostTools{}

func (hostTools) check() error {
	if os.Geteuid() != 0 {
		return withHint(errors.New("mmdebstrap installs packages with their owners and devices: it must run as root"), rootfsToolsHint)
	}
	for _, t := range []string{"mmdebstrap", "unshare", "chroot"} {
		if _, err := exec.LookPath(t); err != nil {
			return withHint(fmt.Errorf("%s: %w", t, err), rootfsToolsHint)
		}
	}
	return nil
}

// bootstrap runs mmdebstrap in a mount and PID namespace of its own: the
// /proc, /sys and /dev it mounts inside the new root are never seen outside,
// and when vmnet dies (or ctx ends) unshare's death kills every process of
// the namespace and so drops its mounts; a killed build never leaves a mount
// under the cache that a later removal would descend into.
func (hostTools) bootstrap(ctx context.Context, b *buildLog, args []string) error {
	watch := func(line string) {
		// mmdebstrap's own progress ("I: downloading packages with apt...");
		// hooks and skips are noise to a person watching.
		if msg, ok := strings.CutPrefix(line, "I: "); ok && !strings.HasPrefix(msg, "running ") && !strings.HasPrefix(msg, "skipping ") {
			b.show(msg)
		}
	}
	// Equals: unshare --mount --propagation private --pid --fork --kill-child --mount-proc mmdebstrap ARGS
	return b.runWatch(ctx, "", watch, "unshare", append([]string{
		"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc", "mmdebstrap"}, args...)...)
}

// chroot runs args inside root under umask 022, as mmdebstrap runs its own
// steps: what systemctl enable and passwd create in the image must not
// depend on the umask of whoever built it (the image's hash does not).
//
// Equals: chroot ROOT /bin/sh -c 'umask 022 && exec "$@"' sh ARGS...
func (hostTools) chroot(ctx context.Context, b *buildLog, root string, args ...string) (string, error) {
	return b.output(ctx, "chroot", append([]string{root, "/bin/sh", "-c", `umask 022 && exec "$@"`, "sh"}, args...)...)
}

// buildRootfs makes a kind rootfs image in dir: mmdebstrap installs the
// system and the app rootfs side by side (each spends much of its time in
// dpkg, on one core); the recipe's files, the templates' guest tree and the
// app rootfs are put in; units are enabled; the system's own kernel and
// initrd are copied out; mkfs.ext4 -d turns the tree into a disk (no loop
// mount) and qemu-img makes it the qcow2 base every VM's overlay sits on.
func (c *Cache) buildRootfs(ctx context.Context, r *recipe, pkgs []debian.Package, hash, dir string, b *buildLog) (manifest, error) {
	if err := c.checkRootfsTools(); err != nil {
		return manifest{}, err
	}
	appPkgs, err := r.appPackages()
	if err != nil && r.AppRootfs != "" {
		return manifest{}, err
	}
	rb := c.newRootfsBuild(r, hash, dir, b)
	defer rb.removeWorkAndWait()
	start := c.now()
	if err := rb.bootstrap(ctx, appPkgs); err != nil {
		return manifest{}, err
	}
	rb.phases.since("mmdebstrap", start)

	t := c.now()
	installed, appInstalled, err := rb.readInstalled(pkgs)
	if err != nil {
		return manifest{}, err
	}
	kver, err := bootKernel(rb.root)
	if err != nil {
		return manifest{}, err
	}
	if err := c.configureRootfs(ctx, r, hash, kver, installed, rb.root, rb.app, b); err != nil {
		return manifest{}, err
	}
	if err := rb.copyBoot(ctx, kver); err != nil {
		return manifest{}, err
	}
	rb.phases.since("configure", t)

	if err := rb.makeDisk(ctx); err != nil {
		return manifest{}, err
	}
	sizes, err := fileSizes(dir, kernelFile, initrdFile, diskFile)
	if err != nil {
		return manifest{}, err
	}
	b.step("disk %s (qcow2), initrd %s, kernel %s", mib(sizes[diskFile]), mib(sizes[initrdFile]), mib(sizes[kernelFile]))
	return manifest{
		Format: manifestFormat, Name: r.Name, Hash: hash,
		Kernel: kernelFile, Initrd: initrdFile, Disk: diskFile,
		Cmdline: r.Cmdline, ReadyLine: r.readyLine(), ReadyAgent: r.agentReady(),
		Packages: installed, AppPackages: appInstalled, Files: sizes, PhaseSeconds: rb.phases.seconds(),
	}, nil
}

// checkRootfsTools says whether a rootfs image can be built here: the
// bootstrap tools, and mkfs.ext4 and qemu-img for the disk.
func (c *Cache) checkRootfsTools() error {
	if err := c.tools.check(); err != nil {
		return err
	}
	for _, t := range []string{"mkfs.ext4", "qemu-img"} {
		if _, err := exec.LookPath(t); err != nil {
			return withHint(fmt.Errorf("%s: %w", t, err), rootfsToolsHint)
		}
	}
	return nil
}

// phaseTimes records how long each phase of a build took, in seconds, for
// the manifest. The two bootstraps record theirs at the same time.
type phaseTimes struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]float64
}

// since records phase name as having run from start until now.
func (p *phaseTimes) since(name string, start time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.m[name] = p.now().Sub(start).Seconds()
}

// seconds returns the phases recorded so far.
func (p *phaseTimes) seconds() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m
}

// rootfsBuild is one rootfs image build in progress: its recipe, where its
// trees are, and how long each phase took.
type rootfsBuild struct {
	c        *Cache
	r        *recipe
	b        *buildLog
	hash     string
	dir      string   // the build directory: the artefacts go here
	work     string   // dir/work, the trees; removed once they are in the disk
	root     string   // work/system, the guest's root file system
	app      string   // work/app, the app rootfs, moved into root by configureRootfs
	archives string   // the .debs kept for the next build of this image
	mirrors  []string // the recipe's mirrors: lines, pointed at the chosen mirrors
	phases   *phaseTimes

	removeWork func() // starts removing work, once
	removed    chan struct{}
}

// newRootfsBuild lays out a build of r in dir.
func (c *Cache) newRootfsBuild(r *recipe, hash, dir string, b *buildLog) *rootfsBuild {
	work := filepath.Join(dir, "work")
	rb := &rootfsBuild{c: c, r: r, b: b, hash: hash, dir: dir, work: work,
		root: filepath.Join(work, "system"), app: filepath.Join(work, "app"),
		archives: filepath.Join(c.Dir, aptArchivesDir, r.Name),
		phases:   &phaseTimes{now: c.now, m: map[string]float64{}},
		removed:  make(chan struct{})}
	// Removing a 1 GB tree takes seconds: it overlaps with the conversion
	// to qcow2 (makeDisk starts it), and the build waits for it at the end.
	rb.removeWork = sync.OnceFunc(func() {
		safe.Go(nil, "removing the build's trees", func() error {
			defer close(rb.removed)
			t := c.now()
			os.RemoveAll(work)
			b.step("removed the build's trees in %.1fs", c.now().Sub(t).Seconds())
			return nil
		}, nil)
	})
	return rb
}

// removeWorkAndWait removes the trees, if that has not started, and waits
// until they are gone.
func (rb *rootfsBuild) removeWorkAndWait() {
	rb.removeWork()
	<-rb.removed
}

// bootstrapPart is one mmdebstrap run of a build: the system or the app rootfs.
type bootstrapPart struct {
	label string
	spec  debian.BootstrapSpec
}

// parts returns the mmdebstrap runs of the build: the system with the
// kernel, and the app rootfs when the recipe has one.
func (rb *rootfsBuild) parts(appPkgs []string) []bootstrapPart {
	r := rb.r
	spec := func(target, kept string, include []string) debian.BootstrapSpec {
		return debian.BootstrapSpec{Suite: r.Suite, Target: target, Mirrors: rb.mirrors, Include: include,
			Exclude: r.ExcludePaths, Keep: r.KeepPaths, Archives: filepath.Join(rb.archives, kept)}
	}
	system := spec(rb.root, "system", append([]string{r.Kernel}, r.Include...))
	if len(r.SetupFiles) > 0 {
		system.Seed = rb.seed()
	}
	parts := []bootstrapPart{{"system", system}}
	if r.AppRootfs != "" {
		parts = append(parts, bootstrapPart{"app", spec(rb.app, "app", appPkgs)})
	}
	return parts
}

// bootstrap runs the build's mmdebstrap parts side by side; the first to
// fail stops the other.
func (rb *rootfsBuild) bootstrap(ctx context.Context, appPkgs []string) error {
	if err := os.MkdirAll(rb.work, 0o755); err != nil {
		return err
	}
	if err := rb.writeSeed(); err != nil {
		return err
	}
	mirrors, err := rb.c.mirrorLines(rb.r.Mirrors)
	if err != nil {
		return err
	}
	rb.mirrors = mirrors
	parts := rb.parts(appPkgs)
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, p := range parts {
		safe.Go(&wg, "mmdebstrap "+p.label, func() error { return rb.bootstrapPart(bctx, p) }, func(err error) {
			if err != nil {
				errs[i] = err
				cancel() // the other part's log lines would bury this failure's
			}
		})
	}
	wg.Wait()
	return firstError(errs)
}

// seed is where the recipe's setup files wait for mmdebstrap's setup hook.
func (rb *rootfsBuild) seed() string { return filepath.Join(rb.work, "seed") }

// writeSeed writes the recipe's setup files into the seed tree, each with
// its mode (directories 0755, whatever the umask).
func (rb *rootfsBuild) writeSeed() error {
	for i, f := range rb.r.SetupFiles {
		if err := fsperm.MkdirAll(rb.seed(), 0o755); err != nil {
			return err
		}
		if err := writeInRoot(rb.seed(), f.Dst, rb.r.files[f.Src], f.mode); err != nil {
			return fmt.Errorf("setup_files[%d]: %w", i, err)
		}
	}
	return nil
}

// bootstrapPart runs one mmdebstrap, logging under the part's label.
func (rb *rootfsBuild) bootstrapPart(ctx context.Context, p bootstrapPart) error {
	r, c := rb.r, rb.c
	pb := rb.b.part(p.label)
	pb.step("mmdebstrap %s: %s", r.Suite, strings.Join(p.spec.Include, " "))
	t := c.now()
	if err := c.tools.bootstrap(ctx, pb, debian.MmdebstrapArgs(p.spec)); err != nil {
		return withHint(fmt.Errorf("install the %s packages: %w", p.label, err),
			"mmdebstrap downloads from Debian's mirror (see mirrors: in images/"+r.Name+"/"+recipeFile+"); "+
				"inside a vmnet sandbox there is no network: build the image outside it first with: vmnet image build "+r.Name)
	}
	rb.phases.since("mmdebstrap "+p.label, t)
	pb.step("installed in %.0fs", c.now().Sub(t).Seconds())
	return nil
}

// readInstalled returns NAME=VERSION of the recipe's packages as dpkg
// installed them in the system and the app rootfs, and prunes the kept
// .debs to the installed ones. pkgs is the system's (kernel first), then
// the app's.
func (rb *rootfsBuild) readInstalled(pkgs []debian.Package) (installed, appInstalled []string, err error) {
	r := rb.r
	sysStatus, err := debian.ReadStatus(filepath.Join(rb.root, "var/lib/dpkg/status"))
	if err != nil {
		return nil, nil, err
	}
	installed = installedVersions(rb.b, "system", pkgs[:1+len(r.Include)], sysStatus)
	if r.AppRootfs != "" {
		appStatus, err := debian.ReadStatus(filepath.Join(rb.app, "var/lib/dpkg/status"))
		if err != nil {
			return nil, nil, err
		}
		appInstalled = installedVersions(rb.b, "app", pkgs[1+len(r.Include):], appStatus)
		debian.PruneArchives(filepath.Join(rb.archives, "app"), appStatus)
	}
	debian.PruneArchives(filepath.Join(rb.archives, "system"), sysStatus)
	return installed, appInstalled, nil
}

// copyBoot checks that the system's initrd can mount the root disk and
// copies it and the kernel out of the tree: the guest boots them directly.
func (rb *rootfsBuild) copyBoot(ctx context.Context, kver string) error {
	initrd := filepath.Join(rb.root, "boot", "initrd.img-"+kver)
	list, err := rb.c.tools.chroot(ctx, rb.b, rb.root, "lsinitramfs", "/boot/initrd.img-"+kver)
	if err != nil {
		return fmt.Errorf("list the initrd: %w", err)
	}
	if missing := missingModules(list, initrdModules); len(missing) > 0 {
		return withHint(fmt.Errorf("the initrd %s lacks %s: the guest could not mount root=/dev/vda", filepath.Base(initrd), strings.Join(missing, ", ")),
			"initramfs-tools must build it with MODULES=most (its default) or with MODULES=list and a hook that adds them (images/capstone's setup_files); MODULES=dep looks at the build host")
	}
	if err := copyFile(filepath.Join(rb.root, "boot", "vmlinuz-"+kver), filepath.Join(rb.dir, kernelFile)); err != nil {
		return fmt.Errorf("copy the kernel: %w", err)
	}
	if err := copyFile(initrd, filepath.Join(rb.dir, initrdFile)); err != nil {
		return fmt.Errorf("copy the initrd: %w", err)
	}
	rb.b.step("kernel %s; its initrd holds %s", kver, strings.Join(initrdModules, ", "))
	return nil
}

// makeDisk turns the system tree into the image's qcow2 disk: an ext4 file
// system made from the tree, then converted.
func (rb *rootfsBuild) makeDisk(ctx context.Context) error {
	raw := filepath.Join(rb.dir, "disk.raw") // outside work, which goes while the disk is converted
	defer os.Remove(raw)
	t := rb.c.now()
	if err := rb.makeExt4(ctx, raw); err != nil {
		return err
	}
	rb.phases.since("mkfs.ext4", t)
	rb.removeWork() // the trees are in the disk now; removing them overlaps with the conversion

	t = rb.c.now()
	if err := rb.convertDisk(ctx, raw); err != nil {
		return err
	}
	rb.phases.since("qemu-img convert", t)
	return nil
}

// makeExt4 makes the raw ext4 image of the system tree at raw, sized for
// the tree and the recipe's headroom.
func (rb *rootfsBuild) makeExt4(ctx context.Context, raw string) error {
	r, hash := rb.r, rb.hash
	content, files, err := treeSize(rb.root)
	if err != nil {
		return err
	}
	size := diskSize(content, r.headroom)
	inodes := files + r.headroom/inodeRatio
	rb.b.step("disk: %s in %d files + %s free → %s ext4", mib(content), files, mib(r.headroom), mib(size))
	if err := os.WriteFile(raw, nil, 0o644); err != nil {
		return err
	}
	if err := os.Truncate(raw, size); err != nil {
		return err
	}
	uuid := hash[0:8] + "-" + hash[8:12] + "-" + hash[12:16] + "-" + hash[16:20] + "-" + hash[20:32]
	// -m 0: everything in the guest runs as root, reserved blocks would only
	// hide the headroom. The UUID and hash seed come from the recipe hash.
	// The bytes mkfs has put into the (sparse) image, against the tree's; its
	// own metadata makes it reach the tree's size a little early.
	err = rb.b.count("ext4 image", content, func() int64 { return allocated(raw) }, func() error {
		return rb.b.run(ctx, "", "mkfs.ext4", "-q", "-F", "-t", "ext4", "-m", "0", "-L", r.Name,
			"-U", uuid, "-E", "hash_seed="+uuid, "-N", fmt.Sprint(inodes), "-d", rb.root, raw)
	})
	if err != nil {
		return fmt.Errorf("make the ext4 file system: %w", err)
	}
	return nil
}

// convertDisk converts the raw image to the build's qcow2 disk.
func (rb *rootfsBuild) convertDisk(ctx context.Context, raw string) error {
	// Not compressed: a compressed base is slower to read at every boot.
	qcow := filepath.Join(rb.dir, diskFile)
	// The qcow2 holds the raw image's allocated blocks, and little else.
	err := rb.b.count("qcow2 disk", allocated(raw), func() int64 { return allocated(qcow) }, func() error {
		return rb.b.run(ctx, "", "qemu-img", "convert", "-q", "-W", "-f", "raw", "-O", "qcow2", raw, qcow)
	})
	if err != nil {
		return fmt.Errorf("convert the disk to qcow2: %w", err)
	}
	// The base of every VM's overlay: QEMU, as libvirt-qemu, reads it.
	// qemu-img made it through the umask.
	return os.Chmod(qcow, 0o644)
}

// firstError returns the first error that is not just a cancellation caused
// by another's failure, else the first error.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// configureRootfs puts the recipe's files and dirs, the templates' guest
// tree and the app rootfs into root, enables and disables units and locks
// root's password.
func (c *Cache) configureRootfs(ctx context.Context, r *recipe, hash, kver string, installed []string, root, app string, b *buildLog) error {
	if err := r.placeFiles(root); err != nil {
		return err
	}
	guest := r.guestFiles()
	for _, f := range guest {
		if err := writeInRoot(root, f.Dst, f.Data, f.Mode); err != nil {
			return fmt.Errorf("templates/%s/%s/%s: %w", r.Templates, guestTreeDir, f.Dst, err)
		}
	}
	ident := fmt.Sprintf("name=%s\nhash=%s\nkernel=%s\npackages=%s\n", r.Name, hash, kver, strings.Join(installed, ", "))
	if err := writeInRoot(root, "etc/vmnet/image", []byte(ident), 0o644); err != nil {
		return err
	}
	if r.AppRootfs != "" {
		if err := placeAppRootfs(root, app, r.AppRootfs); err != nil {
			return err
		}
	}
	units, err := r.enableUnits()
	if err != nil {
		return err
	}
	if err := c.setUnits(ctx, b, root, units, r.Disable); err != nil {
		return err
	}
	if _, err := c.tools.chroot(ctx, b, root, "passwd", "--lock", "root"); err != nil {
		return fmt.Errorf("lock root's password: %w", err)
	}
	if err := c.customize(ctx, r, root, b); err != nil {
		return err
	}
	b.step("configured: %d files from images/%s, %d from templates/%s/%s; enabled %s; disabled %s",
		len(r.Files), r.Name, len(guest), r.Templates, guestTreeDir, strings.Join(units, " "), strings.Join(r.Disable, " "))
	return nil
}

// customize runs the recipe's customize commands in a chroot of root, in
// order: work done once at build time instead of at every first boot (the
// capstone's initdb). The first to fail stops the build, named by its index.
func (c *Cache) customize(ctx context.Context, r *recipe, root string, b *buildLog) error {
	for i, cmd := range r.Customize {
		t := c.now()
		if _, err := c.tools.chroot(ctx, b, root, "/bin/sh", "-c", cmd); err != nil {
			return withHint(fmt.Errorf("customize[%d] (%s): %w", i, cmd, err),
				"the command runs in a chroot of the image's tree (no /proc, no network) at build time; its output is in the build log above")
		}
		b.step("customize[%d] %s: done in %.1fs", i, cmd, c.now().Sub(t).Seconds())
	}
	return nil
}

// placeFiles writes the recipe's files, dirs and symlinks into root, each
// with the recipe's mode.
func (r *recipe) placeFiles(root string) error {
	for _, f := range r.Files {
		if err := writeInRoot(root, f.Dst, r.files[f.Src], f.mode); err != nil {
			return err
		}
	}
	for _, d := range r.Dirs {
		p, err := resolveInRoot(root, d.Path)
		if err != nil {
			return err
		}
		if err := fsperm.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	dsts := make([]string, 0, len(r.Symlinks))
	for dst := range r.Symlinks {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		if err := symlinkInRoot(root, dst, r.Symlinks[dst]); err != nil {
			return err
		}
	}
	return nil
}

// placeAppRootfs moves the app rootfs tree app to rel inside root.
func placeAppRootfs(root, app, rel string) error {
	// The build host's name and resolver are no business of the image;
	// podman gives each container its own resolv.conf and hostname.
	for f, data := range map[string]string{"etc/hostname": "app\n", "etc/resolv.conf": "# podman writes each container's resolv.conf\n"} {
		if err := writeInRoot(app, f, []byte(data), 0o644); err != nil {
			return err
		}
	}
	dst, err := resolveInRoot(root, rel)
	if err != nil {
		return err
	}
	if err := fsperm.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(app, dst); err != nil {
		return fmt.Errorf("move the app rootfs into place: %w", err)
	}
	return nil
}

// setUnits enables and disables systemd units inside root, and checks that
// each unit to enable is enabled.
func (c *Cache) setUnits(ctx context.Context, b *buildLog, root string, enable, disable []string) error {
	if len(enable) > 0 {
		if _, err := c.tools.chroot(ctx, b, root, append([]string{"systemctl", "--root=/", "enable"}, enable...)...); err != nil {
			return fmt.Errorf("enable units: %w", err)
		}
		// systemctl enable succeeds, with a warning, for a unit without an
		// [Install] section: it would silently never start.
		out, _ := c.tools.chroot(ctx, b, root, append([]string{"systemctl", "--root=/", "is-enabled"}, enable...)...)
		if err := checkEnabled(enable, out); err != nil {
			return err
		}
	}
	if len(disable) > 0 {
		if _, err := c.tools.chroot(ctx, b, root, append([]string{"systemctl", "--root=/", "disable"}, disable...)...); err != nil {
			return fmt.Errorf("disable units: %w", err)
		}
	}
	return nil
}

// checkEnabled reads systemctl is-enabled's answer, one line per unit.
func checkEnabled(units []string, out string) error {
	lines := strings.Fields(out)
	for i, u := range units {
		state := "unknown"
		if i < len(lines) {
			state = lines[i]
		}
		if state != "enabled" && state != "alias" {
			return withHint(fmt.Errorf("unit %s is %s after systemctl enable, not enabled", u, state),
				"a unit to enable needs an [Install] section (WantedBy=...) and must exist in the image")
		}
	}
	return nil
}

// bootKernel finds the version of the one kernel in root's /boot.
func bootKernel(root string) (string, error) {
	found, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(found) != 1 {
		return "", fmt.Errorf("the installed system has %d kernels in /boot (vmlinuz-*), want 1", len(found))
	}
	kver := strings.TrimPrefix(filepath.Base(found[0]), "vmlinuz-")
	if _, err := os.Stat(filepath.Join(root, "boot", "initrd.img-"+kver)); err != nil {
		return "", withHint(fmt.Errorf("kernel %s has no initrd in /boot: %w", kver, err), "the recipe must include initramfs-tools")
	}
	return kver, nil
}

// missingModules returns the modules of want that lsinitramfs's listing lacks.
func missingModules(listing string, want []string) []string {
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(listing))
	for sc.Scan() {
		base := path.Base(sc.Text())
		if i := strings.Index(base, ".ko"); i > 0 {
			have[base[:i]] = true
		}
	}
	var missing []string
	for _, m := range want {
		if !have[m] {
			missing = append(missing, m)
		}
	}
	return missing
}

// listsHint is where vmnet's Debian lists are, under the cache.
const listsHint = "$VMNET_CACHE/" + aptStateDir + "/state/lists"

// installedVersions returns NAME=VERSION of each of pkgs as installed, and
// says so when the mirror gave another version than vmnet's Debian lists.
func installedVersions(b *buildLog, label string, pkgs []debian.Package, status map[string]string) []string {
	var out []string
	for _, p := range pkgs {
		v, ok := status[p.Name]
		switch {
		case !ok:
			b.step("warning: %s: %s is not installed; the mirror has another version than vmnet's Debian lists (remove %s to refresh them now)", label, p.Name, listsHint)
			continue
		case v != p.Version:
			b.step("warning: %s: %s %s installed, vmnet's Debian lists say %s (remove %s to refresh them now, so the image hash follows the mirror)", label, p.Name, v, p.Version, listsHint)
		}
		out = append(out, p.Name+"="+v)
	}
	return out
}

// inodeOf is the inode number of a file with more than one link, else 0.
func inodeOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 && !fi.IsDir() {
		return st.Ino
	}
	return 0
}

// inodeRatio is bytes per inode for the disk's free space (mke2fs's default).
const inodeRatio = 16384

// allocated returns the bytes of disk the file at path takes (a sparse file's
// holes take none), or 0 if it cannot be read.
func allocated(path string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0
	}
	return st.Blocks * 512
}

// treeSize returns the bytes a tree takes in 4 KiB blocks, and its number of
// inodes; hard links count once.
func treeSize(root string) (bytes, inodes int64, err error) {
	seen := map[uint64]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if ino := inodeOf(fi); ino != 0 {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		inodes++
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if fi.Size() >= 60 { // shorter targets live in the inode
				bytes += 4096
			}
		default:
			bytes += (fi.Size() + 4095) &^ 4095
		}
		return nil
	})
	return bytes, inodes, err
}

// diskSize is the ext4 image size for content bytes plus headroom: 5 % and
// 256 MiB more for the journal, inode tables and block groups' metadata,
// rounded up to 64 MiB.
func diskSize(content, headroom int64) int64 {
	const round = 64 << 20
	n := content + content/20 + 256<<20 + headroom
	return (n + round - 1) / round * round
}

// resolveInRoot returns the host path of rel inside the tree root, following
// symlinks as the guest would: an absolute target starts at root, and ".."
// stops at root, as in a chroot. Writing through the guest's symlinks never
// reaches the host. The last part of rel is not followed (it is replaced).
func resolveInRoot(root, rel string) (string, error) {
	if !validDst(rel) {
		return "", fmt.Errorf("%q is not a clean relative path", rel)
	}
	parts := strings.Split(rel, "/")
	cur := root
	for hops := 0; len(parts) > 0; {
		name := parts[0]
		parts = parts[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if cur != root {
				cur = filepath.Dir(cur)
			}
			continue
		}
		next := filepath.Join(cur, name)
		fi, err := os.Lstat(next)
		if len(parts) == 0 || err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("/%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = root
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return cur, nil
}

// writeInRoot writes a file into the tree root with exactly mode (umask
// aside), replacing what was there, a symlink included.
func writeInRoot(root, rel string, data []byte, mode fs.FileMode) error {
	p, err := resolveInRoot(root, rel)
	if err != nil {
		return err
	}
	if err := fsperm.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}

// symlinkInRoot makes rel inside root a symlink to target, replacing what was there.
func symlinkInRoot(root, rel, target string) error {
	p, err := resolveInRoot(root, rel)
	if err != nil {
		return err
	}
	if err := fsperm.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Symlink(target, p)
}
