package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"vmnet/internal/debian"
	"vmnet/internal/valid"
	"vmnet/internal/vmspec"
)

// builderVersion is part of every recipe hash. Bump it when the way a recipe
// is turned into files changes (initramfs layout, module order, cpio format),
// so that images built by an older vmnet are rebuilt.
const builderVersion = 1

// recipeFile is the name of the file that describes an image in its recipe directory.
const recipeFile = "recipe.yaml"

// The kinds of recipe.
const (
	// kindInitramfs is a kernel and an initramfs made from files of Debian
	// packages, without a disk (tiny). The default.
	kindInitramfs = "initramfs"
	// kindRootfs is a Debian system installed by mmdebstrap on an ext4 disk,
	// booted with its own kernel and initrd (capstone).
	kindRootfs = "rootfs"
)

// readyAgent is the recipe's ready value for a guest that is up when the
// QEMU guest agent answers; any other value is a console line.
const readyAgent = "agent"

// recipe is one image's recipe: recipe.yaml plus every file in its directory.
type recipe struct {
	Name        string            `yaml:"-"`
	Description string            `yaml:"description"`
	Kind        string            `yaml:"kind"`
	Kernel      string            `yaml:"kernel"`
	Modules     []string          `yaml:"modules"`
	Packages    []recipePackage   `yaml:"packages"`
	Files       []recipeCopy      `yaml:"files"`
	Symlinks    map[string]string `yaml:"symlinks"`
	Cmdline     string            `yaml:"cmdline"`
	Ready       string            `yaml:"ready"`

	// Only for kind rootfs.
	Suite        string      `yaml:"suite"`         // Debian suite for mmdebstrap, e.g. bookworm
	Mirrors      []string    `yaml:"mirrors"`       // sources.list lines
	Include      []string    `yaml:"include"`       // the system's packages, besides Kernel
	ExcludePaths []string    `yaml:"exclude_paths"` // dpkg path-exclude globs, in both root file systems
	KeepPaths    []string    `yaml:"keep_paths"`    // dpkg path-include globs: exceptions to ExcludePaths
	Templates    string      `yaml:"templates"`     // a tree in vmnet/templates: guest/, enable.txt, container-packages.txt
	AppRootfs    string      `yaml:"app_rootfs"`    // where the container rootfs goes in the guest
	Dirs         []recipeDir `yaml:"dirs"`
	Enable       []string    `yaml:"enable"`    // systemd units to enable, besides the templates' enable.txt
	Disable      []string    `yaml:"disable"`   // systemd units to disable (the packages enabled them)
	Customize    []string    `yaml:"customize"` // shell commands run in a chroot of the finished tree, in order
	// SetupFiles go into the system tree before any package is installed
	// (mmdebstrap's setup hook): configuration packages read as they
	// install, such as initramfs-tools' conf.d and hooks.
	SetupFiles   []recipeCopy `yaml:"setup_files"`
	DiskHeadroom string       `yaml:"disk_headroom"`

	// files is every file of the recipe directory by its path inside it; the
	// hash covers all of them, recipe.yaml included.
	files map[string][]byte
	// tmpl is every file of the templates tree by its path inside it (kind
	// rootfs with templates); the hash covers them too.
	tmpl map[string][]byte
	// headroom is DiskHeadroom in bytes.
	headroom int64
}

// recipeDir is a directory made in the image with a given mode.
type recipeDir struct {
	Path string `yaml:"path"`
	Mode string `yaml:"mode"`
	mode fs.FileMode
}

// agentReady reports whether the image is ready when its guest agent answers.
func (r *recipe) agentReady() bool { return r.Ready == readyAgent }

// readyLine is the console line the image is ready at ("" for the agent).
func (r *recipe) readyLine() string {
	if r.agentReady() {
		return ""
	}
	return r.Ready
}

// recipePackage is a Debian package and the files taken from it.
type recipePackage struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
}

// recipeCopy puts a file of the recipe directory into the initramfs.
type recipeCopy struct {
	Src  string `yaml:"src"`
	Dst  string `yaml:"dst"`
	Mode string `yaml:"mode"`
	mode fs.FileMode
}

// RecipeError is a mistake in an image recipe: which image, which field, what is wrong.
type RecipeError struct {
	Image   string
	Field   string
	Problem string
}

func (e *RecipeError) Error() string {
	return fmt.Sprintf("image recipe %q: %s: %s", e.Image, e.Field, e.Problem)
}

// Hint says where recipes live.
func (e *RecipeError) Hint() string {
	return fmt.Sprintf("fix images/%s/%s in the vmnet source tree and rebuild vmnet", e.Image, recipeFile)
}

// UnknownImageError is returned for an image name that has no recipe.
type UnknownImageError struct {
	Name  string
	Known []string
}

func (e *UnknownImageError) Error() string { return fmt.Sprintf("image %q: no such recipe", e.Name) }

// Hint lists the images this vmnet can build.
func (e *UnknownImageError) Hint() string {
	return "images this vmnet can build: " + strings.Join(e.Known, ", ")
}

// ValidateName checks an image name; valid.ImageName holds the rule (1 to
// 32 lower-case letters, digits and '-', starting with a letter or digit:
// it becomes a directory name).
func ValidateName(name string) error { return valid.ImageName(name) }

// recipeNames lists the recipe directories in fsys.
func recipeNames(fsys fs.FS) ([]string, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read image recipes: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := fs.Stat(fsys, path.Join(e.Name(), recipeFile)); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

// loadRecipe reads and checks the recipe of image name from fsys.
func loadRecipe(fsys fs.FS, name string) (*recipe, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if _, err := fs.Stat(fsys, path.Join(name, recipeFile)); err != nil {
		known, _ := recipeNames(fsys)
		return nil, &UnknownImageError{Name: name, Known: known}
	}
	r := &recipe{Name: name, files: map[string][]byte{}}
	sub, err := fs.Sub(fsys, name)
	if err != nil {
		return nil, err
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		r.files[p] = data
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read image recipe %q: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(r.files[recipeFile]))
	dec.KnownFields(true) // a misspelt key is an error, not a silently missing feature
	if err := dec.Decode(r); err != nil {
		return nil, &RecipeError{Image: name, Field: recipeFile, Problem: err.Error()}
	}
	return r, r.validate()
}

// validate checks the recipe, fills in its defaults (kind) and parses its
// modes; the first problem found is returned as a RecipeError.
func (r *recipe) validate() error {
	if r.Kind == "" {
		r.Kind = kindInitramfs
	}
	if err := r.validateBoot(); err != nil {
		return err
	}
	claim := r.claimer()
	if err := r.validateContents(claim); err != nil {
		return err
	}
	if r.Kind == kindRootfs {
		return r.validateRootfs(r.bad, claim)
	}
	return r.validateInitramfs()
}

// bad is the RecipeError for a problem with field.
func (r *recipe) bad(field, problem string) error {
	return &RecipeError{Image: r.Name, Field: field, Problem: problem}
}

// validateBoot checks what every image needs to boot and be seen up: its
// kind, kernel, ready line, console and module names.
func (r *recipe) validateBoot() error {
	if r.Kind != kindInitramfs && r.Kind != kindRootfs {
		return r.bad("kind", fmt.Sprintf("%q is not a kind of image; use %s (the default) or %s", r.Kind, kindInitramfs, kindRootfs))
	}
	if r.Kernel == "" {
		return r.bad("kernel", "is empty; name a Debian kernel package such as linux-image-amd64")
	}
	if r.Ready == "" {
		return r.bad("ready", "is empty; name the line the guest prints when it is up, such as VMNET-READY, or agent")
	}
	if !strings.Contains(r.Cmdline, "console=") {
		return r.bad("cmdline", "has no console=; the ready line is read from the serial console (console=ttyS0)")
	}
	for i, m := range r.Modules {
		if m == "" || strings.ContainsAny(m, "/ ") {
			return r.bad(fmt.Sprintf("modules[%d]", i), fmt.Sprintf("%q is not a module name", m))
		}
	}
	return nil
}

// validateCopies checks the recipe's copies at field (files or
// setup_files): each src is a file of the recipe, each dst a path claim
// accepts, each mode octal (parsed into the copy).
func (r *recipe) validateCopies(field string, copies []recipeCopy, claim func(field, dst string) error) error {
	for i := range copies {
		f := &copies[i]
		at := fmt.Sprintf("%s[%d]", field, i)
		if _, ok := r.files[f.Src]; !ok {
			return r.bad(at+".src", fmt.Sprintf("%q is not a file in images/%s", f.Src, r.Name))
		}
		if err := claim(at+".dst", f.Dst); err != nil {
			return err
		}
		m, err := parseMode(f.Mode)
		if err != nil {
			return r.bad(at+".mode", err.Error())
		}
		f.mode = m
	}
	return nil
}

// claimer returns the check of a path the recipe puts into the image at
// field: a clean relative path, and not one put there already.
func (r *recipe) claimer() func(field, dst string) error {
	dsts := map[string]bool{}
	return func(field, dst string) error {
		if !validDst(dst) {
			return r.bad(field, fmt.Sprintf("%q is not a clean relative path inside the image", dst))
		}
		if dsts[dst] {
			return r.bad(field, fmt.Sprintf("%q is put into the image twice", dst))
		}
		dsts[dst] = true
		return nil
	}
}

// validateContents checks what the recipe puts into the image: files from
// packages, its own files (parsing their modes) and symlinks.
func (r *recipe) validateContents(claim func(field, dst string) error) error {
	for i, p := range r.Packages {
		if p.Name == "" {
			return r.bad(fmt.Sprintf("packages[%d].name", i), "is empty")
		}
		for j, f := range p.Files {
			if err := claim(fmt.Sprintf("packages[%d].files[%d]", i, j), f); err != nil {
				return err
			}
		}
	}
	if err := r.validateCopies("files", r.Files, claim); err != nil {
		return err
	}
	// Setup files are paths of their own: the packages may replace them.
	if err := r.validateCopies("setup_files", r.SetupFiles, r.claimer()); err != nil {
		return err
	}
	for dst, target := range r.Symlinks {
		if err := claim("symlinks", dst); err != nil {
			return err
		}
		if target == "" {
			return r.bad("symlinks", fmt.Sprintf("%q points nowhere", dst))
		}
	}
	return nil
}

// validateInitramfs refuses, in a kind initramfs recipe, the fields only a
// rootfs image has.
func (r *recipe) validateInitramfs() error {
	if r.agentReady() {
		return r.bad("ready", "agent needs kind rootfs: an initramfs image has no guest agent; name a console line")
	}
	for field, set := range map[string]bool{
		"suite": r.Suite != "", "mirrors": len(r.Mirrors) > 0, "include": len(r.Include) > 0,
		"exclude_paths": len(r.ExcludePaths) > 0, "keep_paths": len(r.KeepPaths) > 0, "templates": r.Templates != "",
		"app_rootfs": r.AppRootfs != "", "dirs": len(r.Dirs) > 0, "enable": len(r.Enable) > 0, "disable": len(r.Disable) > 0, "disk_headroom": r.DiskHeadroom != "",
		"customize": len(r.Customize) > 0, "setup_files": len(r.SetupFiles) > 0,
	} {
		if set {
			return r.bad(field, "is only for kind rootfs; an initramfs image takes files from packages (packages[].files)")
		}
	}
	return nil
}

// unitRE matches a systemd unit name that systemctl enable takes.
var unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|automount|swap)$`)

// validateRootfs checks the fields of a kind rootfs recipe.
func (r *recipe) validateRootfs(bad func(field, problem string) error, claim func(field, dst string) error) error {
	if len(r.Packages) > 0 {
		return bad("packages", "is only for kind initramfs; list a rootfs image's packages under include")
	}
	if len(r.Modules) > 0 {
		return bad("modules", "is only for kind initramfs; initramfs-tools picks a rootfs image's initrd modules")
	}
	if r.Suite == "" || strings.ContainsAny(r.Suite, " /") {
		return bad("suite", fmt.Sprintf("%q is not a Debian suite; name one such as bookworm", r.Suite))
	}
	if len(r.Mirrors) == 0 {
		return bad("mirrors", "is empty; give sources.list lines such as \"deb http://deb.debian.org/debian bookworm main\"")
	}
	for i, m := range r.Mirrors {
		if f := strings.Fields(m); len(f) < 4 || f[0] != "deb" || !strings.Contains(f[1], "://") {
			return bad(fmt.Sprintf("mirrors[%d]", i), fmt.Sprintf("%q is not a sources.list line \"deb URI SUITE COMPONENT...\"", m))
		}
	}
	if len(r.Include) == 0 {
		return bad("include", "is empty; list the system's Debian packages (systemd, ...)")
	}
	for i, p := range r.Include {
		if !valid.IsDebPackage(p) {
			return bad(fmt.Sprintf("include[%d]", i), fmt.Sprintf("%q is not a Debian package name", p))
		}
	}
	for i, p := range append(append([]string(nil), r.ExcludePaths...), r.KeepPaths...) {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \n") {
			return bad(fmt.Sprintf("exclude_paths/keep_paths[%d]", i), fmt.Sprintf("%q is not an absolute dpkg path glob", p))
		}
	}
	if r.Templates != "" && (!fs.ValidPath(r.Templates) || r.Templates == ".") {
		return bad("templates", fmt.Sprintf("%q is not a directory name in vmnet/templates", r.Templates))
	}
	if r.AppRootfs != "" {
		if r.Templates == "" {
			return bad("app_rootfs", "needs templates: its package list is the templates' "+containerPackagesFile)
		}
		if err := claim("app_rootfs", r.AppRootfs); err != nil {
			return err
		}
	}
	for i := range r.Dirs {
		d := &r.Dirs[i]
		field := fmt.Sprintf("dirs[%d]", i)
		if err := claim(field+".path", d.Path); err != nil {
			return err
		}
		m, err := parseMode(d.Mode)
		if err != nil {
			return bad(field+".mode", err.Error())
		}
		d.mode = m
	}
	for field, units := range map[string][]string{"enable": r.Enable, "disable": r.Disable} {
		for i, u := range units {
			if !unitRE.MatchString(u) {
				return bad(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("%q is not a systemd unit name such as vmnet-net.service", u))
			}
		}
	}
	for i, c := range r.Customize {
		if strings.TrimSpace(c) == "" {
			return bad(fmt.Sprintf("customize[%d]", i), "is empty; give a shell command run in a chroot of the finished tree, such as /usr/local/sbin/vmnet-app-db-prepare")
		}
	}
	size, err := vmspec.ParseSize(r.DiskHeadroom)
	if err != nil || size == 0 {
		return bad("disk_headroom", fmt.Sprintf("%q is not a size such as 1536MiB (the disk's free space beyond its content)", r.DiskHeadroom))
	}
	r.headroom = int64(size)
	return nil
}

// parseMode reads an octal file mode such as "0755".
func parseMode(s string) (fs.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("%q is not an octal file mode such as \"0755\"", s)
	}
	return fs.FileMode(m), nil
}

// validDst reports whether p is a clean, relative path that stays inside the image.
func validDst(p string) bool {
	return p != "" && p != "." && !path.IsAbs(p) && path.Clean(p) == p && !strings.HasPrefix(p, "../")
}

// recipeHash is the identity of a build: sha256 over the builder version, the
// image name, every file of the recipe directory (path, length, bytes), every
// file of its templates tree, and every resolved Debian package (name,
// version, architecture and the .deb's sha256 from the archive). Any change
// to any of them gives another hash.
func recipeHash(r *recipe, pkgs []debian.Package) string {
	h := sha256.New()
	fmt.Fprintf(h, "vmnet-image\x00%d\x00%s\x00", builderVersion, r.Name)
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "file\x00%s\x00%d\x00", n, len(r.files[n]))
		h.Write(r.files[n])
	}
	// The templates tree (kind rootfs); an image without one hashes as before.
	tnames := make([]string, 0, len(r.tmpl))
	for n := range r.tmpl {
		tnames = append(tnames, n)
	}
	sort.Strings(tnames)
	for _, n := range tnames {
		fmt.Fprintf(h, "template\x00%s\x00%d\x00", n, len(r.tmpl[n]))
		h.Write(r.tmpl[n])
	}
	sorted := append([]debian.Package(nil), pkgs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, p := range sorted {
		fmt.Fprintf(h, "deb\x00%s\x00%s\x00%s\x00%s\x00", p.Name, p.Version, p.Arch, p.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}
