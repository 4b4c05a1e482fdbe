// Package image builds vmnet's guest images from the recipes embedded in the
// binary (package vmnet/images) and keeps them in a cache, built once and
// shared by every VM (each VM puts its own qcow2 overlay over a disk image).
//
// An image is identified by its recipe hash: sha256 over a builder version,
// the image name, every file of the recipe directory, and every Debian
// package the recipe resolves to (name, version, architecture and the .deb's
// sha256), as apt-cache sees them in vmnet's own Debian bookworm lists
// (the cache's .apt/: sources, lists and settings of its own, from the mirror
// debian.HostMirrors chooses; the host's apt sources are never read, so the
// host may be Debian or Ubuntu). Editing a
// recipe file, a new Debian kernel in the lists, or a new vmnet that builds
// differently each give a new hash and a rebuild; nothing else does.
// Resolving reads those lists only (no network); when they know no version of
// a package (the first build: there are none yet), or a download fails, vmnet
// runs apt-get update on them once and retries, and a build (not Planned)
// refreshes them first when they are older than a day.
//
// Recipes come in two kinds. An initramfs recipe (tiny) takes single files
// out of the .debs it names and packs them into a cpio initramfs. A rootfs
// recipe (capstone) installs a whole Debian system with mmdebstrap, puts it
// on an ext4 disk (mkfs.ext4 -d: no loop mount, no partition table; the guest
// boots with root=/dev/vda) converted to a qcow2 base, and boots it directly
// with the system's own /boot/vmlinuz-* and /boot/initrd.img-*. Its recipe
// may name a tree of vmnet/templates whose guest/ is copied into the root,
// whose enable.txt lists units to enable, and whose container-packages.txt
// is installed by a second mmdebstrap, run at the same time as the first,
// into the app rootfs inside the disk (capstone's /var/lib/vmnet/app-rootfs).
// For a rootfs recipe the hash covers the recipe directory, the whole
// templates tree and the candidate versions of the top-level packages (the
// kernel, include:, container-packages.txt) in vmnet's lists, not
// every dependency: a security update of a library alone does not rebuild
// the image until one of those changes (vmnet image build --force does). The
// build warns when the mirror installed another version than the lists name.
// A rootfs image is ready when its QEMU guest agent answers (Image.ReadyAgent).
//
// Cache layout (DefaultDir, or $VMNET_CACHE):
//
//	NAME/HASH16/            one finished build, HASH16 = first 16 hex digits of the hash:
//	    manifest.json       written last: a directory without it is not a build
//	    vmlinuz initrd.img  the artefacts (and disk.qcow2 for a rootfs image)
//	    build.log           what the build did, every command's output included
//	NAME/.build-*           a build in progress (one left by a killed build is removed by the next)
//	NAME/failed-build.log   the log of the last failed build; its tail is shown on failure
//	.debs/                  the .deb files builds were made from, kept for rebuilds,
//	                        pruned to those a build in the cache still names
//	.apt-archives/NAME/     a rootfs image's .debs as mmdebstrap fetched them (system/, app/),
//	                        hard-linked in and out of each build, pruned to the last one's
//	.locks/NAME.lock        flock: one build or removal of NAME at a time, across processes
//	.apt/                   vmnet's apt state: apt.conf (APT_CONFIG), etc/sources.list, state/lists, cache
//	.apt-candidates.json    apt-cache's answers, valid while vmnet's lists, sources and settings are unchanged
//
// A build happens in NAME/.build-*, ends with manifest.json, and is published
// by renaming the directory to NAME/HASH16; the builds of NAME it replaces are
// then removed.
//
// # The guests' kernel command line
//
// Image.Cmdline holds the base (tiny: console=ttyS0 quiet; capstone:
// root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet); vmnet appends the
// arguments below. Both guests take vmnet.hostname and vmnet.ip.N; capstone's vmnet-net.service
// turns them into systemd-networkd files in /run before networkd starts, and
// every NIC without vmnet.ip.N uses DHCP. The rest of this section is tiny's:
//
//	vmnet.hostname=NAME                        the guest's hostname (default tiny)
//	vmnet.ip.N=ADDR/PREFIX[,gw=GW][,dns=DNS]   static IPv4 address of ethN (N counts NICs in PCI
//	                                           order from 0); a NIC without one uses DHCP
//	vmnet.dhcp_timeout=SECONDS                 how long the ready line waits for leases (default 20)
//
// On the serial console the guest prints, each as one whole line:
//
//	VMNET-NIC eth0 mac=52:54:00:00:00:0a via=static addr=192.0.2.10/24
//	VMNET-NIC eth1 mac=52:54:00:00:00:0b via=dhcp addr=- error=no-dhcp-lease
//	VMNET-READY hostname=NAME eth0=192.0.2.10/24 eth1=failed:no-dhcp-lease
//
// READY (Image.ReadyLine) comes once every NIC is configured or has failed.
// A lease that arrives after READY
// is announced as "VMNET-LEASE ethN addr=ADDR/PREFIX".
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vmnet/images"
	"vmnet/internal/debian"
	"vmnet/internal/errs"
	"vmnet/templates"
)

// EnvCache names the environment variable that overrides DefaultDir.
const EnvCache = "VMNET_CACHE"

// DefaultCacheDir is where images are kept unless $VMNET_CACHE says otherwise.
const DefaultCacheDir = "/var/cache/vmnet/images"

// debsDir holds downloaded .deb files inside the cache.
const debsDir = ".debs"

// aptMemoFile remembers apt-cache's answers while apt's state is unchanged.
const aptMemoFile = ".apt-candidates.json"

// aptStateDir holds vmnet's own apt state: sources, lists, settings.
const aptStateDir = ".apt"

// Image is a finished build in the cache.
type Image struct {
	Name      string `json:"name"`
	Hash      string `json:"hash"` // the recipe hash, 64 hex digits
	Dir       string `json:"dir"`  // the build's directory
	Kernel    string `json:"kernel"`
	Initrd    string `json:"initrd"`
	Disk      string `json:"disk,omitempty"` // a base disk image for overlays; "" for tiny
	Cmdline   string `json:"cmdline"`        // base kernel command line; append GuestArgs
	ReadyLine string `json:"ready_line"`     // the guest prints a line starting with this when it is up ("" for none)
	// ReadyAgent says the guest is up when its QEMU guest agent answers
	// guest-ping (channel org.qemu.guest_agent.0); ReadyLine is "" then.
	ReadyAgent bool      `json:"ready_agent,omitempty"`
	Built      time.Time `json:"built"`
	Size       int64     `json:"size_bytes"` // bytes in Dir
	Packages   []string  `json:"packages"`   // Debian packages it was built from, NAME=VERSION
	// AppPackages are the packages of the container rootfs inside the disk
	// (capstone's /var/lib/vmnet/app-rootfs), NAME=VERSION.
	AppPackages []string `json:"app_packages,omitempty"`
}

// Cache is a directory of built images.
type Cache struct {
	// Dir is the cache's root directory.
	Dir string

	recipes fs.FS         // one directory per recipe (vmnet/images)
	tmpl    fs.FS         // the trees recipes name in templates: (vmnet/templates)
	src     debian.Source // resolves and fetches Debian packages
	tools   rootfsTools   // installs kind rootfs images
	// mirrors chooses Debian's mirrors for mmdebstrap, the same the source
	// resolves from; nil leaves the recipes' mirrors: lines as they are.
	mirrors func() (debian.Mirrors, error)
	now     func() time.Time
}

// New returns the cache in dir, building from the embedded recipes and
// templates with the host's apt tools on vmnet's own apt state (dir/.apt:
// Debian bookworm from debian.HostMirrors, whatever the host's distribution)
// and mmdebstrap pointed at the same mirrors.
func New(dir string) *Cache {
	src := debian.Apt{State: filepath.Join(dir, aptStateDir), Mirrors: debian.HostMirrors, Memo: filepath.Join(dir, aptMemoFile)}
	return &Cache{Dir: dir, recipes: images.FS, tmpl: templates.Capstone,
		src: src, tools: hostTools{}, mirrors: debian.HostMirrors, now: time.Now}
}

// mirrorLines are the recipe's mirrors: lines pointed at the chosen mirrors.
func (c *Cache) mirrorLines(lines []string) ([]string, error) {
	if c.mirrors == nil {
		return lines, nil
	}
	m, err := c.mirrors()
	if err != nil {
		return nil, err
	}
	return m.Rewrite(lines), nil
}

// recipe reads and checks the recipe of image name with its templates.
func (c *Cache) recipe(name string) (*recipe, error) {
	r, err := loadRecipe(c.recipes, name)
	if err != nil {
		return nil, err
	}
	return r, r.loadTemplates(c.tmpl)
}

// DefaultDir is $VMNET_CACHE if set, else DefaultCacheDir.
func DefaultDir() string {
	if d := os.Getenv(EnvCache); d != "" {
		return d
	}
	return DefaultCacheDir
}

// Default returns the cache in DefaultDir.
func Default() *Cache { return New(DefaultDir()) }

// Names lists the images this vmnet has recipes for.
func Names() []string {
	names, _ := recipeNames(images.FS)
	return names
}

// Ensure returns image name from the default cache, building it first when it
// is missing or its recipe changed; built says whether it did.
func Ensure(ctx context.Context, name string, progress io.Writer) (img Image, built bool, err error) {
	return Default().Ensure(ctx, name, progress)
}

// Planned returns where image name is, or would be once built, in the default
// cache, without building it (Built is zero when it is not built yet).
func Planned(name string) (Image, error) { return Default().Planned(context.Background(), name) }

// List returns the images in the default cache.
func List() ([]Image, error) { return Default().List() }

// Remove deletes every build of image name from the default cache; existed is
// false when there was none (which is not an error).
func Remove(ctx context.Context, name string) (existed bool, err error) {
	return Default().Remove(ctx, name)
}

// Ensure returns image name, building it first when the cache has no valid
// build of its current recipe hash. Progress goes to progress (nil: none):
// live on a terminal, timestamped lines otherwise. Two processes that ensure
// the same image at once build it once: the second waits and reuses it.
func (c *Cache) Ensure(ctx context.Context, name string, progress io.Writer) (img Image, built bool, err error) {
	return c.ensure(ctx, name, progress, false)
}

// Rebuild builds image name even when the cache has it.
func (c *Cache) Rebuild(ctx context.Context, name string, progress io.Writer) (Image, error) {
	img, _, err := c.ensure(ctx, name, progress, true)
	return img, err
}

// Planned returns the build of image name that Ensure would return, without
// building or downloading anything: the cached build if it is valid, else
// the paths it will have (Built zero, Size 0). It reads apt's package lists
// and never updates them.
func (c *Cache) Planned(ctx context.Context, name string) (Image, error) {
	r, err := c.recipe(name)
	if err != nil {
		return Image{}, err
	}
	pkgs, hash, err := c.resolveOnce(ctx, r)
	if errors.Is(err, debian.ErrNoCandidate) {
		err = withHint(fmt.Errorf("image %q: %w", name, err), "build the image first (that fetches vmnet's Debian package lists): vmnet image build "+name)
	}
	if err != nil {
		return Image{}, err
	}
	if img, err := c.lookup(name, hash); err == nil {
		return img, nil
	}
	dir := c.buildDir(name, hash)
	img := Image{
		Name: name, Hash: hash, Dir: dir,
		Kernel: filepath.Join(dir, kernelFile), Initrd: filepath.Join(dir, initrdFile),
		Cmdline: r.Cmdline, ReadyLine: r.readyLine(), ReadyAgent: r.agentReady(), Packages: pkgStrings(pkgs),
	}
	if r.Kind == kindRootfs {
		img.Disk = filepath.Join(dir, diskFile)
	}
	return img, nil
}

func (c *Cache) ensure(ctx context.Context, name string, w io.Writer, force bool) (Image, bool, error) {
	r, err := c.recipe(name)
	if err != nil {
		return Image{}, false, err
	}
	p := newProgress(w, name, c.now)
	defer p.finish()
	// Until a build starts there is no log file; steps are only shown.
	b := &buildLog{p: p, log: io.Discard, now: c.now}
	pkgs, hash, err := c.resolve(ctx, r, b)
	if err != nil {
		return Image{}, false, err
	}
	if !force {
		if img, err := c.lookup(name, hash); err == nil {
			return img, false, nil
		}
	}
	unlock, err := c.lock(ctx, name, "building or removing image "+name, p)
	if err != nil {
		return Image{}, false, err
	}
	defer unlock()
	if !force {
		// Another process may have built it while this one waited for the lock.
		if img, err := c.lookup(name, hash); err == nil {
			p.line("built meanwhile by another vmnet; using it")
			return img, false, nil
		}
	}
	img, err := c.build(ctx, r, pkgs, hash, p)
	var fe *fetchError
	if errors.As(err, &fe) && ctx.Err() == nil {
		// The lists may name a version the mirror no longer has: refresh them
		// once, and build again if that changes what the recipe resolves to.
		if c.src.Refresh(ctx, b) == nil {
			if pkgs2, hash2, err2 := c.resolveOnce(ctx, r); err2 == nil && hash2 != hash {
				img, err = c.build(ctx, r, pkgs2, hash2, p)
			}
		}
	}
	if err != nil {
		return Image{}, false, err
	}
	return img, true, nil
}

// resolve finds the Debian packages of r and its hash, running apt-get update
// first when the lists are older than listsMaxAge, and once more when they
// know no version of one of them.
func (c *Cache) resolve(ctx context.Context, r *recipe, b *buildLog) ([]debian.Package, string, error) {
	c.refreshStale(ctx, b)
	pkgs, hash, err := c.resolveOnce(ctx, r)
	if errors.Is(err, debian.ErrNoCandidate) {
		if rerr := c.src.Refresh(ctx, b); rerr != nil {
			return nil, "", errors.Join(err, rerr)
		}
		pkgs, hash, err = c.resolveOnce(ctx, r)
	}
	if errors.Is(err, debian.ErrNoCandidate) {
		err = withHint(fmt.Errorf("image %q: %w", r.Name, err),
			"vmnet's Debian lists ("+filepath.Join(c.Dir, aptStateDir)+") have no such package in "+debian.Suite+" main: check the recipe's package names, and that $"+debian.EnvMirror+" (if set) is a Debian mirror")
	}
	return pkgs, hash, err
}

// listsMaxAge is how old vmnet's Debian lists may be before a build
// refreshes them, as a Debian host's daily apt update would: a new kernel
// or package version then changes the recipe hash.
const listsMaxAge = 24 * time.Hour

// updatedSource is a Source that knows when its lists were last refreshed.
type updatedSource interface{ Updated() time.Time }

// refreshStale refreshes the source's lists when they are older than
// listsMaxAge. A failure (no network: inside a sandbox) is only a warning:
// the lists there are still good for a build from the kept .debs.
func (c *Cache) refreshStale(ctx context.Context, b *buildLog) {
	u, ok := c.src.(updatedSource)
	if !ok {
		return
	}
	t := u.Updated()
	if t.IsZero() || c.now().Sub(t) < listsMaxAge {
		return
	}
	if err := c.src.Refresh(ctx, b); err != nil {
		b.step("warning: vmnet's Debian lists are from %s and could not be refreshed, using them: %v",
			t.UTC().Format(time.DateOnly), err)
	}
}

// resolveOnce returns the candidates of the recipe's packages, the kernel
// first (then, for kind rootfs, the system's and the app rootfs's top-level
// packages in their lists' order), and the recipe hash over them.
func (c *Cache) resolveOnce(ctx context.Context, r *recipe) ([]debian.Package, string, error) {
	k, err := debian.ResolveKernel(ctx, c.src, r.Kernel)
	if err != nil {
		return nil, "", err
	}
	var specs []string
	for _, rp := range r.Packages {
		specs = append(specs, rp.Name)
	}
	specs = append(specs, r.Include...)
	if r.AppRootfs != "" {
		app, err := r.appPackages()
		if err != nil {
			return nil, "", err
		}
		specs = append(specs, app...)
	}
	more, err := c.src.Candidates(ctx, specs)
	if err != nil {
		return nil, "", err
	}
	pkgs := append([]debian.Package{k}, more...)
	return pkgs, recipeHash(r, pkgs), nil
}

// buildDir is where the build of name with hash is published.
func (c *Cache) buildDir(name, hash string) string {
	return filepath.Join(c.Dir, name, hash[:16])
}

// lookup returns the valid build of name with hash, or an error.
func (c *Cache) lookup(name, hash string) (Image, error) {
	dir := c.buildDir(name, hash)
	m, err := readManifest(dir)
	if err != nil {
		return Image{}, err
	}
	if err := m.check(dir, name, hash); err != nil {
		return Image{}, err
	}
	return m.image(dir), nil
}

// List returns every valid build in the cache, by name, newest first. A cache
// directory that does not exist holds no images.
func (c *Cache) List() ([]Image, error) {
	names, err := os.ReadDir(c.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, c.dirError(err)
	}
	var imgs []Image
	for _, n := range names {
		if !n.IsDir() || ValidateName(n.Name()) != nil {
			continue
		}
		builds, err := os.ReadDir(filepath.Join(c.Dir, n.Name()))
		if err != nil {
			return nil, c.dirError(err)
		}
		for _, b := range builds {
			if !b.IsDir() || strings.HasPrefix(b.Name(), ".") {
				continue
			}
			dir := filepath.Join(c.Dir, n.Name(), b.Name())
			m, err := readManifest(dir)
			if err != nil || m.check(dir, n.Name(), "") != nil || !strings.HasPrefix(m.Hash, b.Name()) {
				continue
			}
			imgs = append(imgs, m.image(dir))
		}
	}
	sortImages(imgs)
	return imgs, nil
}

// Remove deletes every build of image name, waiting for a build of it in
// progress to end first. existed is false when there was nothing to delete.
func (c *Cache) Remove(ctx context.Context, name string) (existed bool, err error) {
	if err := ValidateName(name); err != nil {
		return false, err
	}
	dir := filepath.Join(c.Dir, name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	unlock, err := c.lock(ctx, name, "building image "+name, nil)
	if err != nil {
		return false, err
	}
	defer unlock()
	_, err = os.Lstat(dir)
	existed = err == nil
	if err := os.RemoveAll(dir); err != nil {
		return existed, fmt.Errorf("remove image %q: %w", name, err)
	}
	// The .deb files kept to make its next build faster.
	if err := os.RemoveAll(filepath.Join(c.Dir, aptArchivesDir, name)); err != nil {
		return existed, fmt.Errorf("remove image %q: %w", name, err)
	}
	return existed, c.pruneDebs(ctx)
}

// dirError adds advice to a failure to use the cache directory.
func (c *Cache) dirError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return withHint(fmt.Errorf("image cache: %w", err),
			fmt.Sprintf("run vmnet as root, or point $%s at a directory you can write", EnvCache))
	}
	return fmt.Errorf("image cache: %w", err)
}

// withHint is errs.WithHint; kept short for the many callers in this package.
func withHint(err error, hint string) error { return errs.WithHint(err, hint) }
