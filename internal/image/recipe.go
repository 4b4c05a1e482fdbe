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
)

// builderVersion is part of every recipe hash. Bump it when the way a recipe
// is turned into files changes (initramfs layout, module order, cpio format),
// so that images built by an older vmnet are rebuilt.
const builderVersion = 1

// recipeFile is the name of the file that describes an image in its recipe directory.
const recipeFile = "recipe.yaml"

// recipe is one image's recipe: recipe.yaml plus every file in its directory.
type recipe struct {
	Name        string            `yaml:"-"`
	Description string            `yaml:"description"`
	Kernel      string            `yaml:"kernel"`
	Modules     []string          `yaml:"modules"`
	Packages    []recipePackage   `yaml:"packages"`
	Files       []recipeCopy      `yaml:"files"`
	Symlinks    map[string]string `yaml:"symlinks"`
	Cmdline     string            `yaml:"cmdline"`
	Ready       string            `yaml:"ready"`

	// files is every file of the recipe directory by its path inside it; the
	// hash covers all of them, recipe.yaml included.
	files map[string][]byte
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

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidateName checks an image name: lower-case letters, digits and '-', at
// most 32, starting with a letter or digit (it becomes a directory name).
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("image name %q: use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit, for example tiny", name)
	}
	return nil
}

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

func (r *recipe) validate() error {
	bad := func(field, problem string) error { return &RecipeError{Image: r.Name, Field: field, Problem: problem} }
	if r.Kernel == "" {
		return bad("kernel", "is empty; name a Debian kernel package such as linux-image-amd64")
	}
	if r.Ready == "" {
		return bad("ready", "is empty; name the line the guest prints when it is up, such as VMNET-READY")
	}
	if !strings.Contains(r.Cmdline, "console=") {
		return bad("cmdline", "has no console=; the ready line is read from the serial console (console=ttyS0)")
	}
	for i, m := range r.Modules {
		if m == "" || strings.ContainsAny(m, "/ ") {
			return bad(fmt.Sprintf("modules[%d]", i), fmt.Sprintf("%q is not a module name", m))
		}
	}
	dsts := map[string]bool{}
	claim := func(field, dst string) error {
		if !validDst(dst) {
			return bad(field, fmt.Sprintf("%q is not a clean relative path inside the image", dst))
		}
		if dsts[dst] {
			return bad(field, fmt.Sprintf("%q is put into the image twice", dst))
		}
		dsts[dst] = true
		return nil
	}
	for i, p := range r.Packages {
		if p.Name == "" {
			return bad(fmt.Sprintf("packages[%d].name", i), "is empty")
		}
		for j, f := range p.Files {
			if err := claim(fmt.Sprintf("packages[%d].files[%d]", i, j), f); err != nil {
				return err
			}
		}
	}
	for i := range r.Files {
		f := &r.Files[i]
		field := fmt.Sprintf("files[%d]", i)
		if _, ok := r.files[f.Src]; !ok {
			return bad(field+".src", fmt.Sprintf("%q is not a file in images/%s", f.Src, r.Name))
		}
		if err := claim(field+".dst", f.Dst); err != nil {
			return err
		}
		m, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return bad(field+".mode", fmt.Sprintf("%q is not an octal file mode such as \"0755\"", f.Mode))
		}
		f.mode = fs.FileMode(m)
	}
	for dst, target := range r.Symlinks {
		if err := claim("symlinks", dst); err != nil {
			return err
		}
		if target == "" {
			return bad("symlinks", fmt.Sprintf("%q points nowhere", dst))
		}
	}
	return nil
}

// validDst reports whether p is a clean, relative path that stays inside the image.
func validDst(p string) bool {
	return p != "" && p != "." && !path.IsAbs(p) && path.Clean(p) == p && !strings.HasPrefix(p, "../")
}

// recipeHash is the identity of a build: sha256 over the builder version, the
// image name, every file of the recipe directory (path, length, bytes) and
// every resolved Debian package (name, version, architecture and the .deb's
// sha256 from the archive). Any change to any of them gives another hash.
func recipeHash(r *recipe, pkgs []debPackage) string {
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
	sorted := append([]debPackage(nil), pkgs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, p := range sorted {
		fmt.Fprintf(h, "deb\x00%s\x00%s\x00%s\x00%s\x00", p.Name, p.Version, p.Arch, p.SHA256)
	}
	return hex.EncodeToString(h.Sum(nil))
}
